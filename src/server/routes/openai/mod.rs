//! The OpenAI-compatible `/v1` layer: requests are translated onto the native services
//! (`infer::run`, `infer::embed`, the store) and answers into OpenAI's shapes. Errors use
//! OpenAI's error object; an error after a stream began is sent as an SSE `error` event before the
//! stream ends (Ollama cuts the stream silently there).

mod chat;
mod reply;

pub(crate) use chat::effort_to_think;
pub use chat::{chat_completions, completions};

use crate::api::openai::{EmbeddingsRequest, ErrorDetail, ErrorResponse};
use crate::api::Options;
use crate::server::error::ServerError;
use crate::server::infer;
use crate::server::state::AppState;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

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

pub(crate) fn error_body(e: &ServerError) -> ErrorResponse {
    let kind = match e.status().as_u16() {
        400 | 413 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    ErrorResponse {
        error: ErrorDetail {
            message: e.message(),
            kind: kind.into(),
            param: None,
            code: None,
        },
    }
}

/// A `/v1` request body as `T`: the same errors as the native layer's `AppJson`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ServerError> {
    crate::server::extract::json(&body.map_err(crate::server::extract::body_error)?)
}

/// `stop` as a string or a list of strings.
pub(crate) fn stop_list(stop: &Option<Value>) -> Result<Option<Vec<String>>, ServerError> {
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

/// The model a `/v1` request names (an unparsable name is simply not found there).
pub(crate) fn find(state: &AppState, name: &str) -> Result<crate::store::LocalModel, ServerError> {
    state.store.find(name).map_err(|e| {
        match e {
            StoreError::InvalidName => StoreError::NotFound(name.to_owned()),
            e => e,
        }
        .into()
    })
}

/// A chat request of one of the `/v1` layers (OpenAI, Anthropic, Responses), translated. `job`
/// finds the model, checks tools, thinking and images against it, and makes the inference job.
pub(crate) struct ChatAsk {
    pub model: String,
    pub messages: Vec<crate::api::Message>,
    pub options: Options,
    pub tools: Vec<Value>,
    pub think: Option<crate::api::Think>,
    /// Drop thinking asked of a model that cannot think instead of refusing it (the Anthropic
    /// and Responses layers, as Ollama's).
    pub relax_think: bool,
    pub format: Option<Value>,
    pub tool_choice: crate::api::ToolChoice,
    pub logprobs: Option<u32>,
}

impl ChatAsk {
    pub fn job(
        self,
        state: &AppState,
        started: std::time::Instant,
    ) -> Result<infer::Job, ServerError> {
        use super::common;
        let model = find(state, &self.model)?;
        let mut think = self.think;
        let traits = common::check_features(
            &model,
            &self.model,
            &self.tools,
            &mut think,
            self.relax_think,
        )?;
        let images: Vec<&String> = self.messages.iter().flat_map(|m| &m.images).collect();
        common::check_vision(&model, common::check_base64(images)?)?;
        let input = crate::runner::PromptInput::Messages(self.messages);
        let mut job = infer::Job::new(model, input, self.options, started);
        job.tools = self.tools;
        job.think = think;
        job.format = self.format;
        job.tool_choice = self.tool_choice;
        job.logprobs = self.logprobs;
        job.traits = Some(traits);
        Ok(job)
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OpenAiError> {
    let req: EmbeddingsRequest = parse(body)?;
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
            json!(base64::engine::general_purpose::STANDARD.encode(&bytes))
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
