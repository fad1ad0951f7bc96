//! `truncate` and `shift` (Ollama 0.33, both default true) on both runners, through the daemon:
//! an over-long prompt is cut to fit `num_ctx` (the first `num_keep` tokens and the end) or
//! refused with Ollama's texts, and generation that fills `num_ctx` shifts the context and goes
//! on unless `shift: false`.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;

const GGUF: &str = "tiny-gguf";
const NO_SHIFT: &str = "the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length";

fn tiny_gguf(fx: &Path, store: &Path) {
    ollama_model(store, GGUF, &fx.join("gguf/tiny-llama-f32.gguf"), &[]);
}

fn generate(s: &TestServer, body: Value) -> (u16, Value) {
    let mut body = body;
    body["stream"] = json!(false);
    let (status, text) = post_text(s, "/api/generate", body);
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!({"text": text})),
    )
}

#[test]
fn over_long_prompts_are_cut_or_refused_as_ollama_does_on_both_runners() {
    let Some((s, _fx, _dir)) = server_with_store(tiny_gguf) else {
        return;
    };
    let long = (0..300).map(|i| format!("word{i} ")).collect::<String>();
    for model in [TINY, GGUF] {
        let opts = json!({"num_ctx": 64, "num_predict": 2, "temperature": 0});
        let (st, e) = generate(
            &s,
            json!({"model": model, "prompt": long, "raw": true, "options": opts, "truncate": false}),
        );
        assert_eq!(st, 400, "{model}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(msg.starts_with("request ("), "{model}: {msg}");
        assert!(
            msg.ends_with(
                " tokens) exceeds the available context size (64 tokens), try increasing it"
            ),
            "{model}: {msg}"
        );
        let (st, e) = generate(
            &s,
            json!({"model": model, "prompt": long, "raw": true, "options": opts, "shift": false}),
        );
        assert_eq!((st, e), (400, json!({"error": NO_SHIFT})), "{model}");
        // The default: cut to the first num_keep (4) tokens, plus a BOS where the tokenizer
        // adds one, and the end, leaving half of the rest of the context free.
        let (st, v) = generate(
            &s,
            json!({"model": model, "prompt": long, "raw": true, "options": opts}),
        );
        assert_eq!(st, 200, "{model}: {v}");
        let n = v["prompt_eval_count"].as_u64().unwrap();
        assert!(
            n == 64 - 30 || n == 64 - 29,
            "{model}: {n} prompt tokens: {v}"
        );
        assert_eq!(v["eval_count"], 2, "{model}: {v}");
        // A chat: the oldest messages go first; with truncate off it is refused.
        let mut messages: Vec<Value> = (0..12)
            .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("message {i} is long enough to count for something")}))
            .collect();
        messages.push(json!({"role": "user", "content": "and now?"}));
        let body = json!({"model": model, "messages": messages, "stream": false, "options": opts});
        let (st, text) = post_text(&s, "/api/chat", body.clone());
        assert_eq!(st, 200, "{model}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["prompt_eval_count"].as_u64().unwrap() < 64,
            "{model}: {v}"
        );
        let mut refused = body;
        refused["truncate"] = json!(false);
        let (st, text) = post_text(&s, "/api/chat", refused);
        assert_eq!(st, 400, "{model}: {text}");
        assert!(
            text.contains("exceeds the available context size (64 tokens)"),
            "{model}: {text}"
        );
    }
}

#[test]
fn generation_that_fills_num_ctx_shifts_and_goes_on_unless_shift_is_off() {
    let Some((s, _fx, _dir)) = server_with_store(tiny_gguf) else {
        return;
    };
    for model in [TINY, GGUF] {
        let opts = json!({"num_ctx": 32, "num_predict": 90, "temperature": 0});
        let (st, v) = generate(
            &s,
            json!({"model": model, "prompt": "Once upon a time", "raw": true, "options": opts}),
        );
        assert_eq!(st, 200, "{model}: {v}");
        // Three times num_ctx: only a shifting context gets there.
        assert_eq!(v["eval_count"], 90, "{model}: {v}");
        assert_eq!(v["done_reason"], "length", "{model}: {v}");
        let (st, v) = generate(
            &s,
            json!({"model": model, "prompt": "Once upon a time", "raw": true, "options": opts, "shift": false}),
        );
        assert_eq!(st, 200, "{model}: {v}");
        assert_eq!(v["done_reason"], "length", "{model}: {v}");
        assert_eq!(
            v["prompt_eval_count"].as_u64().unwrap() + v["eval_count"].as_u64().unwrap(),
            32,
            "{model}: {v}"
        );
    }
}
