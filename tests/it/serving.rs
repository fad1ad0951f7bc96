//! Serving through the real MLX runner on the tiny models: streaming, exact lengths, seeds, stop
//! strings, context, chat templates, and Ollama's response shapes.

use crate::support::*;
use serde_json::{json, Value};

fn generate(s: &TestServer, body: Value) -> Vec<Value> {
    let r = s.post("/api/generate", body);
    assert_eq!(r.status(), 200);
    ndjson(&r.text().unwrap())
}

fn text_of(lines: &[Value], field: &str) -> String {
    lines.iter().filter_map(|l| l[field].as_str()).collect()
}

#[test]
fn streams_exactly_num_predict_tokens_with_ollama_metrics() {
    let Some(s) = server(&[]) else { return };
    let lines = generate(
        &s,
        json!({"model": TINY, "prompt": "Hello there", "options": {"num_predict": 7, "temperature": 0}}),
    );
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 7, "num_predict is exact");
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[k].as_u64().unwrap_or(0) > 0, "{k} missing in {last}");
    }
    assert!(lines.len() >= 2, "streamed in pieces");
    assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false));
    assert!(last["created_at"].as_str().unwrap().ends_with('Z'));
    // context: the prompt tokens plus the 7 generated
    let ctx = last["context"].as_array().unwrap();
    assert_eq!(
        ctx.len() as u64,
        last["prompt_eval_count"].as_u64().unwrap() + 7
    );

    // Greedy is deterministic, and stream:false returns the same text in one object.
    let streamed = text_of(&lines, "response");
    let one: Value = s
        .post("/api/generate", json!({"model": TINY, "prompt": "Hello there", "stream": false, "options": {"num_predict": 7, "temperature": 0}}))
        .json()
        .unwrap();
    assert_eq!(one["response"], streamed);
    assert_eq!(one["eval_count"], 7);

    // Feeding the context back continues the conversation: the prompt now counts the old tokens.
    let next = generate(
        &s,
        json!({"model": TINY, "prompt": "More", "context": ctx, "options": {"num_predict": 3, "temperature": 0}}),
    );
    let n = next.last().unwrap()["prompt_eval_count"].as_u64().unwrap();
    assert!(
        n > ctx.len() as u64,
        "{n} prompt tokens should include the {} context tokens",
        ctx.len()
    );
}

#[test]
fn seeds_make_sampling_reproducible() {
    let Some(s) = server(&[]) else { return };
    let run = |seed: i64| {
        let v: Value = s
            .post("/api/generate", json!({"model": TINY, "prompt": "Once upon a time", "stream": false,
                "options": {"num_predict": 24, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": seed}}))
            .json()
            .unwrap();
        v["response"].as_str().unwrap().to_owned()
    };
    let a = run(42);
    assert_eq!(a, run(42), "same seed, same text");
    let others: Vec<String> = (43..46).map(run).collect();
    assert!(
        others.iter().any(|o| *o != a),
        "different seeds should sample differently"
    );
}

#[test]
fn stop_strings_end_generation_and_are_never_emitted() {
    let Some(s) = server(&[]) else { return };
    let body = |stop: Option<&str>| {
        let mut o = json!({"num_predict": 40, "temperature": 0});
        if let Some(st) = stop {
            o["stop"] = json!([st]);
        }
        json!({"model": TINY, "prompt": "The quick brown fox", "stream": false, "options": o})
    };
    let full: Value = s.post("/api/generate", body(None)).json().unwrap();
    let full = full["response"].as_str().unwrap().to_owned();
    let chars: Vec<char> = full.chars().collect();
    assert!(chars.len() > 12, "need some output to cut: {full:?}");
    // A stop string from the middle of the greedy output, likely spanning a token boundary.
    let stop: String = chars[6..10].iter().collect();
    let cut = full.find(&stop).unwrap();
    let v: Value = s.post("/api/generate", body(Some(&stop))).json().unwrap();
    assert_eq!(v["response"].as_str().unwrap(), &full[..cut]);
    assert_eq!(v["done_reason"], "stop");
}

#[test]
fn chat_uses_the_models_template_and_eos_ends_with_stop() {
    let Some(s) = server(&[]) else { return };
    let v: Value = s
        .post("/api/chat", json!({"model": TINY_EOS, "stream": false,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
            "options": {"temperature": 0, "num_predict": 64}}))
        .json()
        .unwrap();
    assert_eq!(v["done_reason"], "stop", "{v}");
    assert!(v["eval_count"].as_u64().unwrap() < 64);
    assert_eq!(v["message"]["role"], "assistant");
    // The 4-bit conversion keeps its template in chat_template.jinja: chat still works.
    let v: Value = s
        .post(
            "/api/chat",
            json!({"model": TINY_4BIT, "stream": false,
            "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 3}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["eval_count"], 3, "{v}");
}

#[test]
fn context_limit_stops_with_length_and_overlong_prompts_are_400() {
    let Some(s) = server(&[]) else { return };
    let v: Value = s
        .post(
            "/api/generate",
            json!({"model": TINY, "prompt": "hi", "raw": true, "stream": false, "shift": false,
            "options": {"num_ctx": 24, "num_predict": 100, "temperature": 0}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["done_reason"], "length");
    assert_eq!(
        v["prompt_eval_count"].as_u64().unwrap() + v["eval_count"].as_u64().unwrap(),
        24
    );
    let long = "word ".repeat(200);
    let r = s.post(
        "/api/generate",
        json!({"model": TINY, "prompt": long, "raw": true, "truncate": false, "options": {"num_ctx": 64}}),
    );
    assert_eq!(r.status(), 400);
    let e: Value = r.json().unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the available context size (64 tokens)"),
        "{e}"
    );
}

#[test]
fn tags_show_and_ps_describe_real_models() {
    let Some(s) = server(&[]) else { return };
    let tags = s.get("/api/tags");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for n in [
        "ollmlx-test/tiny-llama:latest",
        "ollmlx-test/tiny-llama-4bit:latest",
        "ollmlx-test/tiny-llama-eos:latest",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let q4 = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ollmlx-test/tiny-llama-4bit:latest")
        .unwrap();
    assert_eq!(q4["details"]["quantization_level"], "Q4");
    assert_eq!(q4["details"]["family"], "llama");
    let show: Value = s
        .post("/api/show", json!({"model": TINY_4BIT}))
        .json()
        .unwrap();
    assert!(
        show["template"].as_str().unwrap().contains("im_start"),
        "template from chat_template.jinja"
    );
    assert_eq!(show["model_info"]["llama.context_length"], 2048);
    assert_eq!(show["model_info"]["llama.embedding_length"], 128);
    let pc = show["model_info"]["general.parameter_count"]
        .as_u64()
        .unwrap();
    assert!(
        (900_000..1_300_000).contains(&pc),
        "about 1M parameters, got {pc}"
    );

    assert_eq!(s.get("/api/ps")["models"], json!([]));
    let _ = s.post("/api/generate", json!({"model": TINY}));
    let ps = s.get("/api/ps");
    let m = &ps["models"][0];
    assert_eq!(m["name"], "ollmlx-test/tiny-llama:latest");
    assert_eq!(m["size_vram"], 0, "the CPU backend keeps nothing in VRAM");
    assert_eq!(m["context_length"], 2048);
    // The size is what the runner measures (its allocator's bytes), not the files' size.
    let tags = s.get("/api/tags");
    let on_disk = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ollmlx-test/tiny-llama:latest")
        .unwrap()["size"]
        .as_u64()
        .unwrap();
    let size = m["size"].as_u64().unwrap();
    assert_ne!(size, on_disk);
    assert!(size >= 2_099_456, "at least the f16 weights: {size}");
}
