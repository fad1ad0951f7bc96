//! Hostile or careless input against the real daemon and llama-server: a huge prompt for a GGUF
//! model stays within a bounded multiple of its size, and a daemon killed with SIGKILL takes its
//! llama-server with it (or the next daemon stops it).

use crate::support::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

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
            json!({"model": "tiny-gguf", "prompt": prompt, "raw": raw, "stream": false, "truncate": false}),
        );
        assert_eq!(st, 400, "{body}");
        assert!(
            body.contains("exceeds the available context size"),
            "{body}"
        );
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

#[test]
fn sigkill_of_the_daemon_takes_llama_server_with_it() {
    let Some((mut s, _fx, _dir)) = server_with_store(tiny_gguf) else {
        return;
    };
    let (st, body) = post_text(
        &s,
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "hi", "stream": false, "options": {"num_predict": 1}}),
    );
    assert_eq!(st, 200, "{body}");
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    s.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    let gone = wait_gone(runners[0], Duration::from_secs(15));
    if !gone {
        // Do not leave it running past the test.
        unsafe {
            libc::kill(runners[0] as i32, libc::SIGKILL);
        }
    }
    assert!(gone, "llama-server outlived the daemon");
}

/// The start time of a process (field 22 of its stat), as the daemon records runners.
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().to_owned()
}

#[test]
fn a_new_daemon_stops_runners_a_dead_one_left_behind() {
    use std::os::unix::process::CommandExt;
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let home = tempfile::tempdir().unwrap();
    // A "runner" whose daemon is gone (no process started at time 0), and one whose pid now
    // belongs to another process (another start time): only the first may be stopped.
    let spawn = || {
        std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let (mut orphan, mut stranger) = (spawn(), spawn());
    let runs = home.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    for (child, start) in [
        (&orphan, start_time(orphan.id())),
        (&stranger, "1".to_owned()),
    ] {
        let record = json!({"pid": child.id(), "start": start, "daemon_pid": std::process::id(),
                            "daemon_start": "0", "label": "leftover"});
        std::fs::write(
            runs.join(format!("{}.json", child.id())),
            record.to_string(),
        )
        .unwrap();
    }
    let _s = TestServer::start(Options {
        hub: fx.join("hub"),
        python,
        env: vec![("OLLMLX_HOME".into(), home.path().display().to_string())],
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while orphan.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let orphan_gone = orphan.try_wait().unwrap().is_some();
    let stranger_alive = stranger.try_wait().unwrap().is_none();
    for c in [&mut orphan, &mut stranger] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(orphan_gone, "the leftover runner is stopped");
    assert!(stranger_alive, "a recycled pid is never killed");
    assert_eq!(
        std::fs::read_dir(&runs).unwrap().count(),
        0,
        "records cleared"
    );
}
