//! Images through the real daemon and llama-server: a GGUF with a vision projector reads them
//! (native `images` on chat and generate, OpenAI `image_url` data URIs), everything else refuses
//! them, and `/api/show` lists `vision` for exactly the models that accept them.
//!
//! The projector is tests/fixtures/make_models.py's `tiny-mmproj-f32.gguf`: a random LLaVA-style
//! ViT whose 32x32 images cost exactly 4 prompt tokens. Its weights are random, so "the image
//! reached the model" is shown by the prompt growing by those 4 tokens and by two different
//! images giving two different greedy answers.
//!
//! MLX vision models are served with mlx-vlm: `tiny-vlm` is a random LLaVA (CLIP tower) whose
//! 32x32 images cost 4 prompt tokens as well.

use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

/// Prompt tokens one fixture image costs (tests/fixtures/tinymodels/vision.py, IMAGE_TOKENS).
const IMAGE_TOKENS: u64 = 4;

/// ChatML as a Go template: renders exactly what the GGUF's own Jinja template renders.
const CHATML_GO: &str = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";

struct Vision {
    server: TestServer,
    red: String,
    gradient: String,
    _dir: tempfile::TempDir,
}

/// A daemon with `vision` (tiny-llama f32 + the projector), `vision-go` (the same with a Go
/// TEMPLATE layer), `text-gguf` (no projector) and the MLX fixtures.
fn vision_server() -> Option<Vision> {
    let (server, fx, dir) = server_with_store(|fx, store| {
        let gguf = fx.join("gguf/tiny-llama-f32.gguf");
        let projector = std::fs::read(fx.join("gguf/tiny-mmproj-f32.gguf")).unwrap();
        ollama_model_with(store, "vision", &gguf, &[("projector", &projector)]);
        ollama_model_with(
            store,
            "vision-go",
            &gguf,
            &[
                ("projector", &projector),
                ("template", CHATML_GO.as_bytes()),
            ],
        );
        ollama_model(store, "text-gguf", &gguf, &[]);
    })?;
    let image = |name: &str| STANDARD.encode(std::fs::read(fx.join("images").join(name)).unwrap());
    Some(Vision {
        server,
        red: image("red.png"),
        gradient: image("gradient.png"),
        _dir: dir,
    })
}

fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = s.post(path, body);
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

/// Greedy, 8 tokens.
fn greedy() -> Value {
    json!({"temperature": 0, "num_predict": 8})
}

/// A non-streamed chat with one user message: (answer, prompt_eval_count).
fn chat(s: &TestServer, model: &str, images: &[&str]) -> (String, u64) {
    let (status, v) = post(
        s,
        "/api/chat",
        json!({"model": model, "stream": false, "options": greedy(),
               "messages": [{"role": "user", "content": "What is this?", "images": images}]}),
    );
    assert_eq!(status, 200, "{model}: {v}");
    (
        v["message"]["content"].as_str().unwrap().to_owned(),
        v["prompt_eval_count"].as_u64().unwrap(),
    )
}

#[test]
fn images_reach_gguf_vision_models_on_chat_and_generate() {
    let Some(v) = vision_server() else { return };
    let s = &v.server;
    let mut answers = Vec::new();
    for model in ["vision", "vision-go"] {
        let (text, n_text) = chat(s, model, &[]);
        let (red, n_red) = chat(s, model, &[&v.red]);
        let (gradient, n_gradient) = chat(s, model, &[&v.gradient]);
        // Each image adds its tokens to the prompt, and what it shows changes the answer.
        assert_eq!(n_red, n_text + IMAGE_TOKENS, "{model}");
        assert_eq!(n_gradient, n_red, "{model}");
        assert_ne!(red, gradient, "{model}");
        assert_ne!(red, text, "{model}");
        let (two, n_two) = chat(s, model, &[&v.red, &v.gradient]);
        assert_eq!(n_two, n_text + 2 * IMAGE_TOKENS, "{model}");
        answers.push((red.clone(), gradient, two, n_red));

        // Generate puts the prompt and its images in a user message: the same prompt.
        let (status, g) = post(
            s,
            "/api/generate",
            json!({"model": model, "prompt": "What is this?", "images": [v.red],
                   "stream": false, "options": greedy()}),
        );
        assert_eq!(status, 200, "{g}");
        assert_eq!(g["response"], red.as_str(), "{model}");
        assert_eq!(g["prompt_eval_count"], n_red, "{model}");
    }
    // Ollama's [img-N] markers (Go template) land where llama-server's Jinja puts its own.
    assert_eq!(answers[0], answers[1]);

    // A raw prompt names its images with [img-N].
    let (status, g) = post(
        s,
        "/api/generate",
        json!({"model": "vision", "raw": true, "images": [v.gradient, v.red], "stream": false,
               "options": greedy(),
               "prompt": "<|im_start|>user\n[img-1]What is this?<|im_end|>\n<|im_start|>assistant\n"}),
    );
    assert_eq!(status, 200, "{g}");
    // The gradient is not mentioned, so it goes first: a different prompt, 8 image tokens.
    assert_eq!(g["prompt_eval_count"], answers[0].3 + IMAGE_TOKENS);
    let (status, g) = post(
        s,
        "/api/generate",
        json!({"model": "vision", "raw": true, "images": [v.red], "stream": false,
               "options": greedy(),
               "prompt": "<|im_start|>user\n[img-0]What is this?<|im_end|>\n<|im_start|>assistant\n"}),
    );
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["response"], answers[0].0.as_str());

    // Streaming works the same way.
    let r = s.post(
        "/api/chat",
        json!({"model": "vision", "options": greedy(),
               "messages": [{"role": "user", "content": "What is this?", "images": [v.red]}]}),
    );
    assert_eq!(r.status().as_u16(), 200);
    let lines = ndjson(&r.text().unwrap());
    let streamed: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, answers[0].0);

    // A raw prompt cannot end with an image (llama-server needs text to start from).
    let (status, e) = post(
        s,
        "/api/generate",
        json!({"model": "vision", "raw": true, "images": [v.red], "prompt": "look: [img-0]",
               "stream": false}),
    );
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("end with an image"),
        "{e}"
    );
}

#[test]
fn openai_image_url_parts_reach_the_model() {
    let Some(v) = vision_server() else { return };
    let s = &v.server;
    let ask = |url: Value| {
        post(
            s,
            "/v1/chat/completions",
            json!({"model": "vision", "temperature": 0, "max_tokens": 8,
                   "messages": [{"role": "user", "content": [
                       {"type": "text", "text": "What is this?"},
                       {"type": "image_url", "image_url": url}]}]}),
        )
    };
    let (status, red) = ask(json!({"url": format!("data:image/png;base64,{}", v.red)}));
    assert_eq!(status, 200, "{red}");
    let (status, gradient) = ask(json!(format!("data:image/png;base64,{}", v.gradient)));
    assert_eq!(status, 200, "{gradient}");
    let answer = |r: &Value| {
        r["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(answer(&red), answer(&gradient));
    assert_eq!(
        red["usage"]["prompt_tokens"],
        gradient["usage"]["prompt_tokens"]
    );
    // Each part is a message of its own: the image's is the text-only chat's plus its tokens.
    let (status, text) = post(
        s,
        "/v1/chat/completions",
        json!({"model": "vision", "temperature": 0, "max_tokens": 8,
               "messages": [{"role": "user", "content": [
                   {"type": "text", "text": "What is this?"},
                   {"type": "text", "text": ""}]}]}),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        red["usage"]["prompt_tokens"].as_u64().unwrap(),
        text["usage"]["prompt_tokens"].as_u64().unwrap() + IMAGE_TOKENS
    );

    // Web URLs and malformed data are refused as Ollama refuses them.
    let (status, e) = ask(json!({"url": "https://example.com/cat.png"}));
    assert_eq!(status, 400, "{e}");
    assert_eq!(
        e["error"]["message"],
        "image URLs are not currently supported, please use base64 encoded data instead"
    );
    let (status, e) = ask(json!("data:image/png;base64,not base64!"));
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["message"], "invalid image input");
}

#[test]
fn images_are_refused_without_a_projector_and_vision_is_shown_exactly() {
    let Some(v) = vision_server() else { return };
    let s = &v.server;
    for (model, vision) in [
        ("vision", true),
        ("vision-go", true),
        ("text-gguf", false),
        (TINY, false),
    ] {
        let (status, show) = post(s, "/api/show", json!({"model": model}));
        assert_eq!(status, 200, "{show}");
        let caps: Vec<&str> = show["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(caps.contains(&"vision"), vision, "{model}: {caps:?}");
        if vision {
            continue;
        }
        let msgs = json!([{"role": "user", "content": "What is this?", "images": [v.red]}]);
        let (status, e) = post(s, "/api/chat", json!({"model": model, "messages": msgs}));
        assert_eq!(status, 400, "{model}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(msg.ends_with(" does not support vision"), "{model}: {msg}");
        let (status, e) = post(
            s,
            "/api/generate",
            json!({"model": model, "prompt": "What is this?", "images": [v.red]}),
        );
        assert_eq!(status, 400, "{model}: {e}");
        assert_eq!(e["error"], msg, "{model}");
        let part = json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", v.red)}});
        let (status, e) = post(
            s,
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": [part]}]}),
        );
        assert_eq!(status, 400, "{model}: {e}");
        assert_eq!(e["error"]["message"], msg, "{model}");
    }
    // Images must be base64, as Ollama checks when it reads the request.
    let msgs = json!([{"role": "user", "content": "hi", "images": ["not base64!"]}]);
    let (status, e) = post(s, "/api/chat", json!({"model": "vision", "messages": msgs}));
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "illegal base64 data at input byte 3");
    let (status, e) = post(
        s,
        "/api/generate",
        json!({"model": "vision", "prompt": "hi", "images": ["aGk"]}),
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "illegal base64 data at input byte 3");
}

#[test]
fn anthropic_and_responses_images_reach_the_model() {
    let Some(v) = vision_server() else { return };
    let s = &v.server;
    let anthropic = |image: &str| {
        let (status, r) = post(
            s,
            "/v1/messages",
            json!({"model": "vision", "max_tokens": 8, "temperature": 0,
                   "messages": [{"role": "user", "content": [
                       {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
                       {"type": "text", "text": "What is this?"}]}]}),
        );
        assert_eq!(status, 200, "{r}");
        (
            r["content"][0]["text"].as_str().unwrap().to_owned(),
            r["usage"]["input_tokens"].as_u64().unwrap(),
        )
    };
    let (red, n_red) = anthropic(&v.red);
    let (gradient, n_gradient) = anthropic(&v.gradient);
    assert_ne!(red, gradient, "different images, different answers");
    assert_eq!(n_red, n_gradient);
    let (_, n_text) = chat(s, "vision", &[]);
    assert_eq!(n_red, n_text + IMAGE_TOKENS, "the image's tokens were read");

    let responses = |image: &str| {
        let (status, r) = post(
            s,
            "/v1/responses",
            json!({"model": "vision", "max_output_tokens": 8, "temperature": 0,
                   "input": [{"role": "user", "content": [
                       {"type": "input_image", "image_url": format!("data:image/png;base64,{image}")},
                       {"type": "input_text", "text": "What is this?"}]}]}),
        );
        assert_eq!(status, 200, "{r}");
        r["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(responses(&v.red), responses(&v.gradient));

    // Models without a projector refuse them in both layers.
    let (status, e) = post(
        s,
        "/v1/messages",
        json!({"model": "text-gguf", "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": v.red}}]}]}),
    );
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("does not support vision"),
        "{e}"
    );
}

/// The MLX vision fixture (make_models.py's `tiny-vlm`, served with mlx-vlm).
const TINY_VLM: &str = "ollmlx-test/tiny-vlm";

#[test]
fn images_reach_mlx_vision_models_through_mlx_vlm() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let s = &TestServer::start(Options {
        hub: fx.join("hub"),
        python,
        env: vec![],
    });
    let image = |name: &str| STANDARD.encode(std::fs::read(fx.join("images").join(name)).unwrap());
    let (red, gradient) = (image("red.png"), image("gradient.png"));

    // /api/show lists vision for the VLM only.
    for (model, vision) in [(TINY_VLM, true), (TINY, false)] {
        let (status, show) = post(s, "/api/show", json!({"model": model}));
        assert_eq!(status, 200, "{show}");
        let caps = show["capabilities"].as_array().unwrap();
        assert_eq!(caps.contains(&json!("vision")), vision, "{model}: {caps:?}");
    }

    // /api/chat: text-only works; each image adds its tokens and changes the greedy answer.
    let (text, text_tokens) = chat(s, TINY_VLM, &[]);
    let (a, red_tokens) = chat(s, TINY_VLM, &[&red]);
    let (b, gradient_tokens) = chat(s, TINY_VLM, &[&gradient]);
    assert_eq!(
        red_tokens,
        text_tokens + IMAGE_TOKENS,
        "{text:?} {a:?} {b:?}"
    );
    assert_eq!(gradient_tokens, red_tokens);
    assert!(!text.is_empty() && !a.is_empty() && !b.is_empty());
    assert_ne!(a, b);
    assert_ne!(a, text);
    assert_eq!(chat(s, TINY_VLM, &[&red]).0, a, "greedy is deterministic");

    // /v1/chat/completions image_url parts reach it as well: the answer is /api/chat's (the part
    // is a message of its own there, so only the image's answer is compared with itself).
    let ask = |img: &str| {
        let (status, v) = post(
            s,
            "/v1/chat/completions",
            json!({"model": TINY_VLM, "temperature": 0, "max_tokens": 8,
                   "messages": [{"role": "user", "content": [
                       {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{img}")}}]}]}),
        );
        assert_eq!(status, 200, "{v}");
        (
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned(),
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
        )
    };
    let (oa_red, oa_red_tokens) = ask(&red);
    let (oa_gradient, _) = ask(&gradient);
    assert_ne!(oa_red, oa_gradient);
    let (status, empty) = post(
        s,
        "/v1/chat/completions",
        json!({"model": TINY_VLM, "temperature": 0, "max_tokens": 8,
               "messages": [{"role": "user", "content": ""}]}),
    );
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        oa_red_tokens,
        empty["usage"]["prompt_tokens"].as_u64().unwrap() + IMAGE_TOKENS
    );

    // The text MLX model still refuses images at the gate.
    let msgs = json!([{"role": "user", "content": "What is this?", "images": [red]}]);
    let (status, e) = post(s, "/api/chat", json!({"model": TINY, "messages": msgs}));
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]
        .as_str()
        .unwrap()
        .ends_with(" does not support vision"));
}

#[test]
fn mlx_raw_prompts_with_images_are_refused_not_dropped() {
    let Some(v) = vision_server() else { return };
    let (status, e) = post(
        &v.server,
        "/api/generate",
        json!({"model": "ollmlx-test/tiny-vlm", "prompt": "[img-0] what?", "raw": true,
               "images": [v.red], "stream": false}),
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(
        e["error"],
        "raw prompts cannot carry images on MLX models: send the prompt without raw"
    );
}

#[test]
fn ollmlx_run_sends_image_files_named_in_the_prompt() {
    let Some(v) = vision_server() else { return };
    let image = fixtures(&python().unwrap()).join("images/red.png");
    let run = |prompt: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .args(["run", "--verbose", "vision", prompt])
            .env("OLLAMA_HOST", v.server.url.trim_start_matches("http://"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let count = stderr
            .lines()
            .find_map(|l| l.strip_prefix("prompt eval count:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no stats: {stderr}"));
        (count, stderr)
    };
    let (with, stderr) = run(&format!("What is this? {}", image.display()));
    assert!(
        stderr.contains(&format!("Added image '{}'", image.display())),
        "{stderr}"
    );
    let (without, _) = run("What is this?");
    assert_eq!(
        with,
        without + IMAGE_TOKENS,
        "the image's tokens were read, the path was not"
    );
}
