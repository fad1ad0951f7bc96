//! A fake daemon for the CLI's unit tests: canned Ollama replies on an ephemeral loopback port,
//! with a log of the requests it received. Models `m` and `other` exist; anything else is 404.
//! Chat behaviour is picked by model name: `m`/`other` echo the request back, `slow` sends one
//! chunk and then stalls, `broken` fails mid-stream. `/api/create` logs its request and succeeds.

use crate::api::{ChatRequest, GenerateRequest};
use crate::client::Client;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub type Log = Arc<Mutex<Vec<String>>>;

const KNOWN: &[&str] = &["m", "other"];
const DIGEST: &str = "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e";

/// Starts the fake daemon; returns a client for it and its request log.
pub async fn daemon() -> (Client, Log) {
    let log = Log::default();
    let app = Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/show", post(show))
        .route("/api/generate", post(generate))
        .route("/api/chat", post(chat))
        .route("/api/delete", delete(remove))
        .route("/api/create", post(create))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Client::new(format!("http://{addr}")), log)
}

fn not_found(model: &str) -> Response {
    let body = json!({"error": format!("model '{model}' not found")});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn ndjson(lines: Vec<Value>) -> Response {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn tags() -> Json<Value> {
    Json(json!({"models": [{
        "name": "m:latest", "model": "m:latest", "modified_at": "2020-01-01T00:00:00Z",
        "size": 2_019_393_189u64, "digest": DIGEST,
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": null,
                    "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
    }]}))
}

async fn ps() -> Json<Value> {
    Json(json!({"models": [{
        "name": "m:latest", "model": "m:latest", "size": 100, "size_vram": 100, "digest": DIGEST,
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": null,
                    "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
        "expires_at": "2318-01-01T00:00:00Z", "context_length": 4096
    }]}))
}

async fn show(State(log): State<Log>, Json(req): Json<Value>) -> Response {
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    log.lock().unwrap().push(format!("show {model}"));
    if !KNOWN.contains(&model.as_str()) {
        return not_found(&model);
    }
    Json(json!({
        "modelfile": "# Modelfile", "parameters": "", "template": "{{ .Prompt }}",
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": null,
                    "parameter_size": "", "quantization_level": "Q4_K_M"},
        "model_info": {"general.architecture": "llama", "general.parameter_count": 1_050_000},
        "capabilities": ["completion"], "modified_at": "2020-01-01T00:00:00Z"
    }))
    .into_response()
}

async fn generate(State(log): State<Log>, Json(req): Json<GenerateRequest>) -> Response {
    let keep_alive = req.keep_alive.map(|v| v.to_string()).unwrap_or_default();
    log.lock()
        .unwrap()
        .push(format!("generate {} keep_alive={keep_alive}", req.model));
    if !KNOWN.contains(&req.model.as_str()) {
        return not_found(&req.model);
    }
    let reason = if keep_alive == "0" { "unload" } else { "load" };
    ndjson(vec![
        json!({"model": req.model, "created_at": "t", "response": "", "done": true,
                       "done_reason": reason}),
    ])
}

/// Logs the request as JSON; a name ending in `/` is refused as Ollama refuses it.
async fn create(State(log): State<Log>, Json(req): Json<Value>) -> Response {
    log.lock().unwrap().push(format!("create {req}"));
    if req["model"].as_str().unwrap_or_default().ends_with('/') {
        let body = json!({"error": "invalid model name"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    ndjson(vec![
        json!({"status": "writing manifest"}),
        json!({"status": "success"}),
    ])
}

async fn remove(State(log): State<Log>, Json(req): Json<Value>) -> Response {
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    log.lock().unwrap().push(format!("delete {model}"));
    if !KNOWN.contains(&model.as_str()) {
        return not_found(&model);
    }
    StatusCode::OK.into_response()
}

fn chunk(content: &str) -> Value {
    json!({"model": "m", "created_at": "t", "message": {"role": "assistant", "content": content},
           "done": false})
}

async fn chat(State(log): State<Log>, Json(req): Json<ChatRequest>) -> Response {
    let messages = req.messages.clone().unwrap_or_default();
    log.lock()
        .unwrap()
        .push(format!("chat {} messages={}", req.model, messages.len()));
    match req.model.as_str() {
        "slow" => {
            let first = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(format!(
                "{}\n",
                chunk("partial")
            ))]);
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        "broken" => ndjson(vec![chunk("par"), json!({"error": "boom"})]),
        model if KNOWN.contains(&model) => {
            let last = messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let options = req
                .options
                .map(|o| Value::Object(o).to_string())
                .unwrap_or("-".into());
            let answer = format!("{}|{last}|{options}", messages.len());
            let (a, b) = answer.split_at(answer.len() / 2);
            let done = json!({"model": model, "created_at": "t",
                              "message": {"role": "assistant", "content": ""},
                              "done": true, "done_reason": "stop",
                              "eval_count": 2, "eval_duration": 1_000_000_000u64});
            ndjson(vec![chunk(a), chunk(b), done])
        }
        other => not_found(other),
    }
}
