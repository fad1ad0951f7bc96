//! Handler tests: the real router and scheduler with fake runners, driven without a socket.
//! They pin Ollama's exact status codes, bodies and NDJSON framing.

use super::*;
use crate::config::ServeArgs;
use crate::runner::fake::FakeFactory;
use crate::store::hf::tests::make_repo;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const MODEL: &str = "ollmlx-test/tiny";

struct Harness {
    app: Router,
    factory: Arc<FakeFactory>,
    _dir: tempfile::TempDir,
}

fn harness_with(factory: FakeFactory, tweak: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    make_repo(
        &hub,
        MODEL,
        "0123abcd",
        &[
            (
                "config.json",
                br#"{"model_type":"llama","max_position_embeddings":2048,"hidden_size":128}"#,
            ),
            ("model.safetensors", b"x"),
            (
                "tokenizer_config.json",
                br#"{"chat_template":"{% for m in messages %}{{m.content}}{% endfor %}"}"#,
            ),
            ("LICENSE", b"MIT"),
        ],
    );
    let args = ServeArgs {
        host: "127.0.0.1:0".into(),
        keep_alive: "5m".into(),
        load_timeout: "5m".into(),
        mlx_backend: "auto".into(),
        num_parallel: Some(1),
        max_queue: 512,
        hf_hub_cache: Some(hub),
        ollmlx_home: Some(dir.path().join("home")),
        models: Some(dir.path().join("models")),
        ..Default::default()
    };
    let mut config = Config::resolve(&args, None).unwrap();
    tweak(&mut config);
    let factory = Arc::new(factory);
    let state = state_with(config, factory.clone(), CancellationToken::new());
    Harness {
        app: router(state),
        factory,
        _dir: dir,
    }
}

fn harness() -> Harness {
    harness_with(FakeFactory::new(&["Hello", ",", " world"]), |_| {})
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> Response<Body> {
    let req = Request::builder().method(method).uri(path);
    let req = match body {
        Some(b) => req.body(Body::from(b.to_string())).unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    app.clone().oneshot(req).await.unwrap()
}

async fn text(r: Response<Body>) -> String {
    String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

async fn json_of(r: Response<Body>) -> Value {
    serde_json::from_str(&text(r).await).unwrap()
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn root_version_and_unknown_routes() {
    let h = harness();
    let r = call(&h.app, "GET", "/", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(text(r).await, "Ollama is running");
    assert_eq!(call(&h.app, "HEAD", "/", None).await.status(), 200);
    assert_eq!(
        call(&h.app, "HEAD", "/api/version", None).await.status(),
        200
    );
    assert_eq!(
        json_of(call(&h.app, "GET", "/api/version", None).await).await,
        json!({"version": "0.33.0"})
    );
    let r = call(&h.app, "GET", "/nope", None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(text(r).await, "404 page not found");
    let r = call(&h.app, "GET", "/api/generate", None).await;
    assert_eq!(r.status(), 405);
    assert_eq!(text(r).await, "405 method not allowed");
}

#[tokio::test]
async fn bad_bodies_get_ollama_errors() {
    let h = harness();
    let r = call(&h.app, "POST", "/api/generate", None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await, json!({"error": "missing request body"}));
    let r = h
        .app
        .clone()
        .oneshot(
            Request::post("/api/chat")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(json_of(r).await["error"].is_string());
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": 5})),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn unknown_models_are_404_with_ollamas_text() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": "nope/missing", "prompt": "hi"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        json_of(r).await,
        json!({"error": "model 'nope/missing' not found"})
    );
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": "", "prompt": "hi"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await, json!({"error": "model '' not found"}));
    let r = call(
        &h.app,
        "POST",
        "/api/chat",
        Some(json!({"model": "", "messages": []})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await, json!({"error": "model is required"}));
    let r = call(
        &h.app,
        "POST",
        "/api/show",
        Some(json!({"model": "nope/missing"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        json_of(r).await,
        json!({"error": "model 'nope/missing' not found"})
    );
    let r = call(
        &h.app,
        "DELETE",
        "/api/delete",
        Some(json!({"model": "nope/missing"})),
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn generate_streams_ndjson_with_a_final_done_line() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "hi"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = text(r).await;
    let ls = lines(&body);
    assert_eq!(ls.len(), 4, "{body}");
    let words: String = ls.iter().map(|l| l["response"].as_str().unwrap()).collect();
    assert_eq!(words, "Hello, world");
    for l in &ls[..3] {
        assert_eq!(l["model"], MODEL, "the model is echoed as sent");
        assert_eq!(l["done"], false);
        assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(l.get("done_reason").is_none());
    }
    let last = &ls[3];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["response"], "");
    assert_eq!(last["context"], json!([1, 2, 3]));
    assert_eq!(last["eval_count"], 3);
    assert!(last["total_duration"].as_u64().unwrap() > 0);
    // The runner got the prompt as a templated user message with Ollama's defaults.
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let o = &reqs[0].options;
    assert_eq!(
        (o.temperature, o.top_k, o.top_p, o.num_predict),
        (0.8, 40, 0.9, -1)
    );
    assert_eq!(
        o.num_ctx, 2048,
        "the 4096 default is capped at the model's 2048"
    );
    assert!(reqs[0].return_context);
}

#[tokio::test]
async fn generate_without_streaming_is_one_object() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(
            json!({"model": MODEL, "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v = json_of(r).await;
    assert_eq!(v["response"], "Hello,");
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "length");
}

#[tokio::test]
async fn chat_streams_messages() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/chat",
        Some(json!({"model": MODEL, "messages": [{"role": "USER", "content": "hi"}], "stream": false})),
    )
    .await;
    let v = json_of(r).await;
    assert_eq!(
        v["message"],
        json!({"role": "assistant", "content": "Hello, world"})
    );
    assert_eq!(v["done_reason"], "stop");
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    match &reqs[0].input {
        crate::runner::PromptInput::Messages(m) => assert_eq!(m[0].role, "user"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn load_and_unload() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL})),
    )
    .await;
    let v = json_of(r).await;
    assert_eq!(
        (v["done"].clone(), v["done_reason"].clone()),
        (json!(true), json!("load"))
    );
    assert_eq!(
        json_of(call(&h.app, "GET", "/api/ps", None).await).await["models"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = call(
        &h.app,
        "POST",
        "/api/chat",
        Some(json!({"model": MODEL, "keep_alive": 0})),
    )
    .await;
    let v = json_of(r).await;
    assert_eq!(v["done_reason"], "unload");
    assert_eq!(v["message"], json!({"role": "assistant", "content": ""}));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        json_of(call(&h.app, "GET", "/api/ps", None).await).await["models"],
        json!([])
    );
}

#[tokio::test]
async fn request_validation() {
    let h = harness();
    let cases = [
        (
            json!({"model": MODEL, "prompt": "x", "options": {"temperature": "hot"}}),
            "option \"temperature\" must be of type float",
        ),
        (
            json!({"model": MODEL, "prompt": "x", "raw": true, "system": "s"}),
            "raw mode does not support template, system, or context",
        ),
        (
            json!({"model": MODEL, "prompt": "x", "top_logprobs": 21}),
            "top_logprobs must be between 0 and 20",
        ),
        (
            json!({"model": MODEL, "prompt": "x", "keep_alive": "-1"}),
            "time: invalid duration \"-1\"",
        ),
        (
            json!({"model": MODEL, "prompt": "x", "think": "loud"}),
            "invalid think value: \"loud\"",
        ),
        (
            json!({"model": MODEL, "prompt": "x", "think": true}),
            "\"ollmlx-test/tiny\" does not support thinking",
        ),
    ];
    for (body, msg) in cases {
        let r = call(&h.app, "POST", "/api/generate", Some(body.clone())).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(json_of(r).await["error"], msg, "{body}");
    }
    // unknown options are ignored
    let r = call(&h.app, "POST", "/api/generate", Some(json!({"model": MODEL, "prompt": "x", "stream": false, "options": {"bogus": 1, "mirostat": 2}}))).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn runner_errors_before_and_after_the_first_token() {
    let f = FakeFactory {
        reject: Some("the input length exceeds the context length".into()),
        ..FakeFactory::new(&["a"])
    };
    let h = harness_with(f, |_| {});
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "x"})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(r).await["error"],
        "the input length exceeds the context length"
    );

    let h = harness_with(
        FakeFactory {
            fail_after: Some(1),
            ..FakeFactory::new(&["a", "b"])
        },
        |_| {},
    );
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "x"})),
    )
    .await;
    assert_eq!(r.status(), 200, "the stream had begun");
    let ls = lines(&text(r).await);
    assert_eq!(ls[0]["response"], "a");
    let last = ls.last().unwrap();
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("model runner has unexpectedly stopped"),
        "{last}"
    );
    assert!(
        last["error"].as_str().unwrap().ends_with(": boom"),
        "the runner's last words: {last}"
    );

    let r = call(&h.app, "POST", "/api/chat", Some(json!({"model": MODEL, "stream": false, "messages": [{"role": "user", "content": "x"}]}))).await;
    assert_eq!(r.status(), 500);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("unexpectedly stopped"));
}

#[tokio::test]
async fn queue_full_is_503() {
    let f = FakeFactory {
        load_delay: std::time::Duration::from_millis(500),
        ..FakeFactory::new(&["a"])
    };
    let h = harness_with(f, |c| c.max_queue = 1);
    let app = h.app.clone();
    let first = tokio::spawn(async move {
        call(&app, "POST", "/api/generate", Some(json!({"model": MODEL})))
            .await
            .status()
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "x"})),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        json_of(r).await["error"],
        "server busy, please try again.  maximum pending requests exceeded"
    );
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test]
async fn tags_show_ps_delete() {
    let h = harness();
    let v = json_of(call(&h.app, "GET", "/api/tags", None).await).await;
    let m = &v["models"][0];
    assert_eq!(m["name"], "ollmlx-test/tiny:latest");
    assert_eq!(m["model"], "ollmlx-test/tiny:latest");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    for k in [
        "parent_model",
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    ] {
        assert!(m["details"].get(k).is_some(), "details.{k} must be present");
    }
    assert_eq!(m["details"]["format"], "safetensors");
    assert_eq!(m["details"]["family"], "llama");

    // every name tags shows is accepted back, and so is the bare repo id
    for name in [
        "ollmlx-test/tiny:latest",
        "ollmlx-test/tiny",
        "hf.co/ollmlx-test/tiny",
    ] {
        let r = call(&h.app, "POST", "/api/show", Some(json!({"name": name}))).await;
        assert_eq!(r.status(), 200, "{name}");
    }
    let s = json_of(call(&h.app, "POST", "/api/show", Some(json!({"model": MODEL}))).await).await;
    assert_eq!(s["model_info"]["general.architecture"], "llama");
    assert_eq!(s["model_info"]["llama.context_length"], 2048);
    assert_eq!(s["capabilities"], json!(["completion"]));
    assert_eq!(s["license"], "MIT");
    assert!(s["template"].as_str().unwrap().contains("messages"));
    assert!(s["modelfile"]
        .as_str()
        .unwrap()
        .starts_with("# Modelfile generated by \"ollama show\""));
    let r = call(&h.app, "POST", "/api/show", Some(json!({}))).await;
    assert_eq!(r.status(), 400);

    let _ = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL})),
    )
    .await;
    let ps = json_of(call(&h.app, "GET", "/api/ps", None).await).await;
    let p = &ps["models"][0];
    assert_eq!(p["name"], "ollmlx-test/tiny:latest");
    assert_eq!(p["size_vram"], 0, "the fake runner reports the cpu backend");
    assert_eq!(p["context_length"], 2048);
    assert!(p["expires_at"].is_string());

    let r = call(
        &h.app,
        "DELETE",
        "/api/delete",
        Some(json!({"model": MODEL})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(text(r).await, "");
    assert!(
        h.factory
            .last()
            .closed
            .load(std::sync::atomic::Ordering::SeqCst),
        "unloaded before deleting"
    );
    assert_eq!(
        json_of(call(&h.app, "GET", "/api/tags", None).await).await["models"],
        json!([])
    );
    let r = call(
        &h.app,
        "DELETE",
        "/api/delete",
        Some(json!({"model": MODEL})),
    )
    .await;
    assert_eq!(r.status(), 404);
}

/// A copy is the source manifest's bytes, as Ollama's `CopyModel` does, so both names list with
/// the same ID; a manifest ollmlx writes is what Go's `json.Encoder` writes (trailing newline).
#[tokio::test]
async fn a_copy_keeps_the_manifest_bytes_and_the_id() {
    use crate::store::ollama::OllamaStore;
    let h = harness();
    let models = h._dir.path().join("models");
    let reference = json!({"repo_id": MODEL, "revision": "0123abcd"});
    crate::store::tests::hf_reference_model(&models, "orig", &reference);
    let store = OllamaStore::new(models.clone());
    let path = |n: &str| store.manifest_path(&crate::store::name::ModelName::parse(n).unwrap());
    let written = std::fs::read(path("orig")).unwrap();
    assert_eq!(written.last(), Some(&b'\n'), "Go's encoder ends the line");
    // As another Ollama might have written it: the same manifest, other bytes.
    let v: Value = serde_json::from_slice(&written).unwrap();
    let theirs = serde_json::to_string_pretty(&v).unwrap() + "\n";
    std::fs::write(path("orig"), &theirs).unwrap();

    let r = call(
        &h.app,
        "POST",
        "/api/copy",
        Some(json!({"source": "orig", "destination": "dup"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(std::fs::read_to_string(path("dup")).unwrap(), theirs);
    let tags = json_of(call(&h.app, "GET", "/api/tags", None).await).await;
    let id = |name: &str| {
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["digest"].clone())
            .unwrap_or_else(|| panic!("{name} not in {tags}"))
    };
    assert_eq!(id("orig:latest"), id("dup:latest"));
    assert_eq!(
        id("dup:latest"),
        json!(
            crate::store::ollama::BlobDigest::of_bytes(theirs.as_bytes())
                .as_str()
                .trim_start_matches("sha256:")
        )
    );
}

/// `/api/create` streams while it builds: the lines before a late failure have gone out (the
/// status was already 200), and the failure is the last line. Unstreamed, it is the status.
#[tokio::test]
async fn create_streams_its_progress_before_it_finishes() {
    let h = harness();
    // The name's manifest folder is a file: everything works until the manifest is written.
    let library = h
        ._dir
        .path()
        .join("models/manifests/registry.ollama.ai/library");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::write(library.join("blocked"), "not a folder").unwrap();
    let body = json!({"model": "blocked", "from": MODEL, "system": "Be brief."});
    let r = call(&h.app, "POST", "/api/create", Some(body.clone())).await;
    assert_eq!(r.status(), 200);
    let got = lines(&text(r).await);
    let statuses: Vec<&str> = got.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses.len(), 3, "{got:?}");
    assert!(
        statuses[0].starts_with("creating new layer sha256:"),
        "{got:?}"
    );
    assert!(
        statuses[1].starts_with("creating new layer sha256:"),
        "{got:?}"
    );
    assert_eq!(statuses[2], "writing manifest");
    assert!(got.last().unwrap()["error"].is_string(), "{got:?}");

    let mut unstreamed = body;
    unstreamed["stream"] = json!(false);
    let r = call(&h.app, "POST", "/api/create", Some(unstreamed)).await;
    assert_eq!(r.status(), 500);
    assert!(json_of(r).await["error"].is_string());

    // Refused before any work: a status, not a stream.
    let r = call(
        &h.app,
        "POST",
        "/api/create",
        Some(json!({"model": "x", "from": "nobody/nothing"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    // And a good one ends with success.
    let r = call(
        &h.app,
        "POST",
        "/api/create",
        Some(json!({"model": "fine", "from": MODEL})),
    )
    .await;
    let got = lines(&text(r).await);
    assert_eq!(got.last().unwrap()["status"], "success", "{got:?}");
}

#[tokio::test]
async fn cors_like_ollama() {
    let h = harness();
    let req = |origin: &str, method: &str| {
        Request::builder()
            .method(method)
            .uri("/api/version")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    let r = h
        .app
        .clone()
        .oneshot(req("https://evil.example", "GET"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(text(r).await, "");
    let r = h
        .app
        .clone()
        .oneshot(req("http://localhost:3000", "GET"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let r = h
        .app
        .clone()
        .oneshot(req("http://localhost:3000", "OPTIONS"))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

fn sse(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn openai_chat_completions() {
    let h = harness();
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 2});
    let r = call(&h.app, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello,"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    );
    let o = h.factory.last().requests.lock().unwrap()[0].options.clone();
    assert_eq!(
        (o.temperature, o.top_p, o.num_predict),
        (1.0, 1.0, 2),
        "OpenAI's defaults; max_completion_tokens honoured"
    );

    let body = json!({"model": MODEL, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
    let r = call(&h.app, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse(&text(r).await);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello, world");
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(
        (
            fin["choices"][0]["delta"].clone(),
            fin["choices"][0]["finish_reason"].clone()
        ),
        (json!({}), json!("stop"))
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn openai_errors_and_models() {
    let h = harness();
    let r = call(
        &h.app,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "nobody/nothing", "messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v = json_of(r).await;
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not found"));
    let r = call(
        &h.app,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": MODEL, "messages": []})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["error"]["type"], "invalid_request_error");

    let v = json_of(call(&h.app, "GET", "/v1/models", None).await).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "ollmlx-test/tiny:latest");
    let v = json_of(call(&h.app, "GET", "/v1/models/ollmlx-test/tiny", None).await).await;
    assert_eq!(
        v["id"], "ollmlx-test/tiny",
        "names with a slash are reachable"
    );
    let r = call(&h.app, "GET", "/v1/models/nobody/nothing", None).await;
    assert_eq!(r.status(), 404);

    // An error after the stream began is an SSE error event, then [DONE].
    let h = harness_with(
        FakeFactory {
            fail_after: Some(1),
            ..FakeFactory::new(&["a", "b"])
        },
        |_| {},
    );
    let body =
        json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let events = sse(&text(call(&h.app, "POST", "/v1/chat/completions", Some(body)).await).await);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unexpectedly stopped"),
        "{err}"
    );
}

#[tokio::test]
async fn openai_models_empty_is_a_list() {
    let h = harness();
    // Delete the only model: the list is [] (Ollama sends null).
    let _ = call(
        &h.app,
        "DELETE",
        "/api/delete",
        Some(json!({"model": MODEL})),
    )
    .await;
    let v = json_of(call(&h.app, "GET", "/v1/models", None).await).await;
    assert_eq!(v["data"], json!([]));
}

#[tokio::test]
async fn openai_legacy_completions() {
    let h = harness();
    let v = json_of(
        call(
            &h.app,
            "POST",
            "/v1/completions",
            Some(json!({"model": MODEL, "prompt": "hi", "max_tokens": 2})),
        )
        .await,
    )
    .await;
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Hello,");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    let body = json!({"model": MODEL, "prompt": "hi", "stream": true});
    let events = sse(&text(call(&h.app, "POST", "/v1/completions", Some(body)).await).await);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello, world");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let r = call(
        &h.app,
        "POST",
        "/v1/completions",
        Some(json!({"model": MODEL, "prompt": ["a"]})),
    )
    .await;
    assert_eq!(r.status(), 400);
}

mod anthropic;
mod hardening;
mod metrics;
mod responses;
mod ui;

/// A model whose template thinks (`<think>`) and calls tools (`<tool_call>`), served next to
/// `MODEL`.
const AGENT: &str = "ollmlx-test/agent";

/// A harness whose fake runners answer `words`, with the `AGENT` model added.
fn agent_harness(words: &[&str]) -> Harness {
    agent_harness_with(FakeFactory::new(words))
}

fn agent_harness_with(factory: FakeFactory) -> Harness {
    let h = harness_with(factory, |_| {});
    let template = br#"{"chat_template":"{% for m in messages %}{{m.content}}{% endfor %}{% if tools %}<tool_call>{% endif %}<think></think>"}"#;
    make_repo(
        &h._dir.path().join("hub"),
        AGENT,
        "4567cdef",
        &[
            (
                "config.json",
                br#"{"model_type":"qwen3","max_position_embeddings":2048,"hidden_size":128}"#,
            ),
            ("model.safetensors", b"y"),
            ("tokenizer_config.json", template),
        ],
    );
    h
}

/// A reply that thinks, then calls `get_weather` for Paris.
const THINK_THEN_CALL: &[&str] = &[
    "<think>",
    "Let me check.",
    "</think>",
    "<tool_call>",
    r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
    "</tool_call>",
];

/// A reply that thinks, then answers.
const THINK_THEN_TEXT: &[&str] = &["<think>", "Hmm", ".", "</think>", "Hello", " there"];

/// Named server-sent events as (event, data), checking that each `data.type` is its event name.
fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (event, data) = e.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event.as_str(), "{e}");
            (event, data)
        })
        .collect()
}

/// The messages the fake runner was last asked to complete.
fn last_messages(h: &Harness) -> Vec<crate::api::Message> {
    let reqs = h.factory.last().requests.lock().unwrap().clone();
    match &reqs.last().unwrap().input {
        crate::runner::PromptInput::Messages(m) => m.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_model_that_cannot_fit_in_memory_is_a_500_in_ollamas_words() {
    let h = harness_with(FakeFactory::new(&["Hello"]), |c| c.max_memory = Some(16));
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "hi", "stream": false})),
    )
    .await;
    assert_eq!(r.status(), 500);
    let err = json_of(r).await["error"].as_str().unwrap().to_owned();
    assert!(
        err.starts_with("model requires more system memory (")
            && err.ends_with(") than is available (0.0 GiB)"),
        "{err}"
    );
    assert_eq!(
        h.factory.starts.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn load_options_are_clamped_to_the_machine_and_the_context() {
    let h = harness_with(
        FakeFactory {
            fixed_options: true,
            ..FakeFactory::new(&["Hello"])
        },
        |_| {},
    );
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "hi", "stream": false,
                    "options": {"num_thread": 300, "num_batch": 1_000_000_000i64, "num_ctx": 512}})),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", text(r).await);
    let load = h.factory.last().info.load.clone().unwrap();
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(load.num_thread, Some(cores.min(300)));
    assert_eq!(load.num_batch, Some(512), "never more than num_ctx");
    assert_eq!(load.num_ctx, 512);
}
