//! The OpenAI-compatible `/v1` layer: requests are translated onto the native services
//! (`infer::run`, `infer::embed`, the store) and answers into OpenAI's shapes. Errors use
//! OpenAI's error object; an error after a stream began is sent as an SSE `error` event before the
//! stream ends (Ollama cuts the stream silently there).

use super::common;
use crate::api::openai::{
    ChatCompletionRequest, EmbeddingsRequest, ErrorDetail, ErrorResponse, Usage,
};
use crate::api::{Message, Options};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::infer::{self, Job, Piece};
use crate::server::state::AppState;
use crate::store::StoreError;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A `ServerError` in OpenAI's error shape, with the same status code.
pub struct OpenAiError(pub ServerError);

impl From<ServerError> for OpenAiError {
    fn from(e: ServerError) -> Self {
        OpenAiError(e)
    }
}

impl From<StoreError> for OpenAiError {
    fn from(e: StoreError) -> Self {
        OpenAiError(e.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        (status, Json(error_body(&self.0))).into_response()
    }
}

fn error_body(e: &ServerError) -> ErrorResponse {
    let kind = match e.status().as_u16() {
        400 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    ErrorResponse {
        error: ErrorDetail {
            message: e.to_string(),
            kind: kind.into(),
            param: None,
            code: None,
        },
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ServerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ServerError::MissingBody);
    }
    serde_json::from_slice(body).map_err(|e| ServerError::BadRequest(e.to_string()))
}

/// `stop` as a string or a list of strings.
fn stop_list(stop: &Option<Value>) -> Result<Option<Vec<String>>, ServerError> {
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| ServerError::BadRequest("invalid stop: expected strings".into())),
        Some(other) => Err(ServerError::BadRequest(format!("invalid stop: {other}"))),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Content as text: a string, or the text parts of a list (images are not supported yet).
fn text_of(content: &Value) -> Result<Vec<String>, ServerError> {
    match content {
        Value::Null => Ok(vec![String::new()]),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(p["text"].as_str().unwrap_or_default().to_owned()),
                Some("image_url") => Err(ServerError::BadRequest(
                    "image content is not supported yet".into(),
                )),
                _ => Err(ServerError::BadRequest(format!(
                    "unsupported content part: {p}"
                ))),
            })
            .collect(),
        other => Err(ServerError::BadRequest(format!(
            "invalid message content: {other}"
        ))),
    }
}

pub async fn chat_completions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: ChatCompletionRequest = parse(&body)?;
    if req.messages.is_empty() {
        return Err(ServerError::BadRequest("[] is too short - 'messages'".into()).into());
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ServerError::BadRequest("tools are not supported yet".into()).into());
    }
    let format = match req
        .response_format
        .as_ref()
        .and_then(|f| f["type"].as_str())
    {
        None | Some("text") => None,
        Some("json_object") => Some(json!("json")),
        Some("json_schema") => {
            Some(req.response_format.as_ref().unwrap()["json_schema"]["schema"].clone())
        }
        Some(other) => {
            return Err(
                ServerError::BadRequest(format!("invalid response_format type {other:?}")).into(),
            )
        }
    };
    common::format(&format)?;
    // Each content part becomes a message of its own, as Ollama translates them.
    let mut messages = Vec::new();
    for m in &req.messages {
        for text in text_of(&m.content)? {
            let mut msg = Message::new(&m.role.to_lowercase(), text);
            msg.tool_name = m.name.clone().unwrap_or_default();
            msg.tool_call_id = m.tool_call_id.clone().unwrap_or_default();
            messages.push(msg);
        }
    }
    let stop = stop_list(&req.stop)?;
    // Ollama sends 1.0 for a missing temperature or top_p: OpenAI's defaults.
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.unwrap_or(1.0)),
        num_predict: req.max_completion_tokens.or(req.max_tokens),
        seed: req.seed,
        stop,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        ..Options::default()
    };
    let model = state.store.find(&req.model).map_err(|e| match e {
        StoreError::InvalidName => StoreError::NotFound(req.model.clone()),
        e => e,
    })?;
    let job = Job {
        model,
        input: PromptInput::Messages(messages),
        context: None,
        options,
        keep_alive: None,
        truncate: true,
        return_context: false,
        started,
    };
    let pieces = infer::run(&state, job).await?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    reply(pieces, req.model, req.stream, include_usage, Kind::Chat).await
}

/// Which OpenAI endpoint a reply is for: they differ only in names and where the text goes.
#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Text,
}

impl Kind {
    fn object(self, chunk: bool) -> &'static str {
        match (self, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn choice(self, text: &str, finish: Value) -> Value {
        match self {
            Kind::Chat => {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
            }
            Kind::Text => json!({"index": 0, "text": text, "finish_reason": finish}),
        }
    }

    /// A streamed choice: chat sends deltas (the role on the first), text sends the text.
    fn chunk_choice(self, text: Option<&str>, first: bool, finish: Value) -> Value {
        match (self, text) {
            (Kind::Chat, Some(t)) if first => {
                json!({"index": 0, "delta": {"role": "assistant", "content": t}, "finish_reason": finish})
            }
            (Kind::Chat, Some(t)) => {
                json!({"index": 0, "delta": {"content": t}, "finish_reason": finish})
            }
            (Kind::Chat, None) => json!({"index": 0, "delta": {}, "finish_reason": finish}),
            (Kind::Text, t) => {
                json!({"index": 0, "text": t.unwrap_or(""), "finish_reason": finish})
            }
        }
    }
}

/// Turns a completion's pieces into an OpenAI reply: one object, or SSE chunks ending with a
/// finish chunk, the usage chunk when asked, and `[DONE]`.
async fn reply(
    mut pieces: infer::PieceStream,
    model_name: String,
    stream: bool,
    include_usage: bool,
    kind: Kind,
) -> Result<Response, OpenAiError> {
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Text => "cmpl",
    };
    let id = format!("{prefix}-{}", rand::random::<u32>() % 999);
    let created = now();
    let finish = |reason: &str| json!(if reason == "length" { "length" } else { "stop" });
    let usage = |d: &infer::DoneInfo| Usage {
        prompt_tokens: d.metrics.prompt_eval_count,
        completion_tokens: d.metrics.eval_count,
        total_tokens: d.metrics.prompt_eval_count + d.metrics.eval_count,
    };

    if !stream {
        let mut text = String::new();
        while let Some(p) = pieces.next().await {
            match p? {
                Piece::Text(t) => text.push_str(&t),
                Piece::Done(d) => return Ok(Json(json!({
                    "id": id, "object": kind.object(false), "created": created, "model": model_name,
                    "system_fingerprint": "fp_ollama",
                    "choices": [kind.choice(&text, finish(&d.done_reason))],
                    "usage": usage(&d),
                }))
                .into_response()),
            }
        }
        return Err(ServerError::Internal("the model stopped without finishing".into()).into());
    }

    let chunk = move |choice: Value| {
        json!({"id": id, "object": kind.object(true), "created": created, "model": model_name,
               "system_fingerprint": "fp_ollama", "choices": [choice]})
    };
    let mut first = true;
    let events = pieces
        .flat_map(move |p| {
            let mut out: Vec<Value> = Vec::new();
            let mut end = false;
            match p {
                Ok(Piece::Text(t)) => {
                    out.push(chunk(kind.chunk_choice(Some(&t), first, Value::Null)));
                    first = false;
                }
                Ok(Piece::Done(d)) => {
                    if first {
                        out.push(chunk(kind.chunk_choice(Some(""), true, Value::Null)));
                    }
                    out.push(chunk(kind.chunk_choice(
                        None,
                        false,
                        finish(&d.done_reason),
                    )));
                    if include_usage {
                        let mut u = chunk(Value::Null);
                        u["choices"] = json!([]);
                        u["usage"] = json!(usage(&d));
                        out.push(u);
                    }
                    end = true;
                }
                Err(e) => {
                    out.push(json!(error_body(&e)));
                    end = true;
                }
            }
            let mut lines: Vec<Bytes> = out
                .iter()
                .map(|v| Bytes::from(format!("data: {v}\n\n")))
                .collect();
            if end {
                lines.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            futures_util::stream::iter(lines)
        })
        .map(Ok::<Bytes, std::convert::Infallible>);
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response())
}

/// `POST /v1/completions`: a string prompt onto `/api/generate` (templated, as Ollama does).
pub async fn completions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: crate::api::openai::CompletionRequest = parse(&body)?;
    let Value::String(prompt) = &req.prompt else {
        return Err(
            ServerError::BadRequest("invalid prompt: only a string is supported".into()).into(),
        );
    };
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(
            ServerError::BadRequest(format!("{} does not support insert", req.model)).into(),
        );
    }
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.filter(|p| *p != 0.0).unwrap_or(1.0)),
        num_predict: req.max_tokens,
        seed: req.seed,
        stop: stop_list(&req.stop)?,
        frequency_penalty: Some(req.frequency_penalty.unwrap_or(0.0)),
        presence_penalty: Some(req.presence_penalty.unwrap_or(0.0)),
        ..Options::default()
    };
    let model = state.store.find(&req.model).map_err(|e| match e {
        StoreError::InvalidName => StoreError::NotFound(req.model.clone()),
        e => e,
    })?;
    let job = Job {
        model,
        input: PromptInput::Messages(vec![Message::new("user", prompt.clone())]),
        context: None,
        options,
        keep_alive: None,
        truncate: true,
        return_context: false,
        started,
    };
    let pieces = infer::run(&state, job).await?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    reply(pieces, req.model, req.stream, include_usage, Kind::Text).await
}

/// `GET /v1/models`: an empty list is `[]` (Ollama sends `null`, which breaks clients).
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let store = state.store.clone();
    let models = tokio::task::spawn_blocking(move || store.list())
        .await
        .unwrap_or_default();
    let data: Vec<Value> = models.iter().map(model_entry).collect();
    Json(json!({"object": "list", "data": data}))
}

fn model_entry(m: &crate::store::LocalModel) -> Value {
    let created = m
        .modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({"id": m.name.display_shortest(), "object": "model", "created": created, "owned_by": m.name.namespace})
}

/// `GET /v1/models/{model}`, where the model may contain `/` (Hugging Face repo ids).
pub async fn model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let m = state.store.find(&name).map_err(|e| match e {
        StoreError::InvalidName => StoreError::NotFound(name.clone()),
        e => e,
    })?;
    let mut v = model_entry(&m);
    v["id"] = json!(name);
    Ok(Json(v))
}

/// `POST /v1/embeddings` (`encoding_format` float or base64).
pub async fn embeddings(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let req: EmbeddingsRequest = parse(&body)?;
    let inputs: Vec<String> = match &req.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ServerError::BadRequest("invalid input".into()))?,
        _ => return Err(ServerError::BadRequest("invalid input".into()).into()),
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ServerError::BadRequest(format!(
                "invalid encoding format: {other:?} (use \"float\" or \"base64\")"
            ))
            .into())
        }
    };
    let model = state.store.find(&req.model).map_err(|e| match e {
        StoreError::InvalidName => StoreError::NotFound(req.model.clone()),
        e => e,
    })?;
    let (result, _) = infer::embed(&state, model, inputs, true, &Options::default(), None).await?;
    let dims = req.dimensions.filter(|d| *d > 0).map(|d| d as usize);
    let mut data = Vec::new();
    for (i, v) in result.embeddings.into_iter().enumerate() {
        let v = infer::normalize(v, dims)?;
        let embedding = if base64 {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            json!(base64_encode(&bytes))
        } else {
            json!(v)
        };
        data.push(json!({"object": "embedding", "embedding": embedding, "index": i}));
    }
    let n = result.prompt_tokens;
    Ok(Json(
        json!({"object": "list", "data": data, "model": req.model,
                   "usage": {"prompt_tokens": n, "total_tokens": n}}),
    ))
}

/// Standard base64 (RFC 4648) without a dependency.
fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_like_rfc4648() {
        assert_eq!(super::base64_encode(b""), "");
        assert_eq!(super::base64_encode(b"f"), "Zg==");
        assert_eq!(super::base64_encode(b"fo"), "Zm8=");
        assert_eq!(super::base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
