//! Hostile or careless input against the real daemon and llama-server: a huge prompt for a GGUF
//! model stays within a bounded multiple of its size.

use crate::support::*;
use serde_json::json;
use std::path::Path;

fn tiny_gguf(fx: &Path, store: &Path) {
    ollama_model(
        store,
        "tiny-gguf",
        &fx.join("gguf/tiny-llama-f32.gguf"),
        &[],
    );
}

/// The daemon's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// `n` bytes of made-up lower-case words: many tokens a byte, the costly case.
fn gibberish(n: usize) -> String {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            match (x >> 16) % 7 {
                0 => ' ',
                _ => (b'a' + ((x >> 20) % 26) as u8) as char,
            }
        })
        .collect()
}

#[test]
fn a_huge_gguf_prompt_costs_the_daemon_a_bounded_multiple_of_its_size() {
    const SIZE: usize = 8 << 20;
    let prompt = gibberish(SIZE);
    // Raw, the prompt is tokenized as it is; otherwise it is rendered by the GGUF's template first.
    for raw in [true, false] {
        // A daemon each: the peak only ever grows.
        let Some((s, _fx, _dir)) = server_with_store(tiny_gguf) else {
            return;
        };
        // Load the model first: its start-up is not the prompt's cost.
        let (st, body) = post_text(
            &s,
            "/api/generate",
            json!({"model": "tiny-gguf", "prompt": "hi", "stream": false, "options": {"num_predict": 1}}),
        );
        assert_eq!(st, 200, "{body}");
        let before = peak_rss(s.pid());
        let (st, body) = post_text(
            &s,
            "/api/generate",
            json!({"model": "tiny-gguf", "prompt": prompt, "raw": raw, "stream": false}),
        );
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("exceeds the context length"), "{body}");
        let grew = peak_rss(s.pid()).saturating_sub(before);
        let report = format!(
            "raw={raw}: peak RSS grew {} MiB for a {} MiB prompt ({body})",
            grew >> 20,
            SIZE >> 20
        );
        eprintln!("{report}");
        // It was ~105x; what is left is the body, its parse, the rendered prompt, the ids and
        // llama-server's replies.
        assert!(grew < 25 * SIZE as u64, "{report}");
    }
}
