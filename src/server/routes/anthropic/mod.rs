//! `POST /v1/messages`: the Anthropic Messages API, translated onto the native inference service
//! as Ollama translates it. Content blocks become native messages (tool results their own `tool`
//! messages), thinking and tool calls come back as `thinking` and `tool_use` blocks, and a stream
//! is Anthropic's exact event sequence. Errors use Anthropic's error object with the status the
//! native error has; an error after a stream began is an `error` event.

mod reply;
mod request;

use crate::api::anthropic::{ErrorDetail, ErrorResponse, MessagesRequest};
use crate::api::{Options, Think};
use crate::server::error::ServerError;
use crate::server::infer;
use crate::server::routes::common::{self, bad, random_id};
use crate::server::routes::openai::{effort_to_think, parse, ChatAsk};
use crate::server::state::AppState;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reply::{stream_reply, whole_reply};
use request::{native_messages, output_format, thinking, tools};
use serde_json::{json, Value};
use std::time::Instant;

/// A `ServerError` in Anthropic's error shape, with the same status code.
pub struct AnthropicError(pub ServerError);

impl From<ServerError> for AnthropicError {
    fn from(e: ServerError) -> Self {
        AnthropicError(e)
    }
}

impl From<StoreError> for AnthropicError {
    fn from(e: StoreError) -> Self {
        AnthropicError(e.into())
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.0, "request failed");
        }
        (status, Json(error_body(&self.0))).into_response()
    }
}

/// Anthropic's error object; the type follows the status code.
fn error_body(e: &ServerError) -> ErrorResponse {
    let kind = match e.status().as_u16() {
        400 => "invalid_request_error",
        404 => "not_found_error",
        413 => "request_too_large",
        503 => "overloaded_error",
        _ => "api_error",
    };
    ErrorResponse {
        kind: "error",
        error: ErrorDetail {
            kind,
            message: e.message(),
        },
        request_id: random_id("req"),
    }
}

pub async fn messages(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let started = Instant::now();
    let req: MessagesRequest = parse(body)?;
    let num_predict = match req.max_tokens {
        Some(n) if n > 0 => n,
        Some(_) => return Err(bad("max_tokens: must be greater than or equal to 1").into()),
        None => return Err(bad("max_tokens: Field required").into()),
    };
    let job = translate(&req, Some(num_predict))?.job(&state, started)?;
    let pieces = infer::run(&state, job).await?;
    if req.stream {
        stream_reply(pieces, req.model).await
    } else {
        whole_reply(pieces, req.model).await
    }
}

/// `POST /v1/messages/count_tokens`: the prompt's tokens as the model's own template renders the
/// request (system, messages, tools), counted by the model's tokenizer.
pub async fn count_tokens(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AnthropicError> {
    let started = Instant::now();
    let req: MessagesRequest = parse(body)?;
    let job = translate(&req, None)?.job(&state, started)?;
    let n = infer::count_prompt(&state, job).await?;
    Ok(Json(json!({"input_tokens": n})))
}

/// The request as a native chat.
fn translate(req: &MessagesRequest, num_predict: Option<i64>) -> Result<ChatAsk, ServerError> {
    if req.model.is_empty() {
        return Err(bad("model: Field required"));
    }
    if req.messages.is_empty() {
        return Err(bad("messages: at least one message is required"));
    }
    let messages = native_messages(req.system.as_ref(), &req.messages)?;
    let tools = tools(req)?;
    let mut think = thinking(req.thinking.as_ref())?;
    let config = req.output_config.clone().unwrap_or_default();
    if let Some(effort) = config["effort"].as_str() {
        if think != Some(Think::Off) {
            think = Some(effort_to_think(effort)?);
        }
    }
    let format = output_format(&config["format"])?;
    // Sampling options only when given: the model's own defaults otherwise, as Ollama does.
    let options = Options {
        num_predict,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.clone().filter(|s| !s.is_empty()),
        ..Options::default()
    };
    // A model that cannot think just answers (Ollama's relaxed thinking for this API).
    Ok(ChatAsk {
        model: req.model.clone(),
        messages,
        options,
        tools,
        think,
        relax_think: true,
        format,
        tool_choice: common::tool_choice(req.tool_choice.as_ref()),
        logprobs: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_follow_the_status() {
        use crate::scheduler::SchedulerError;
        let kind = |e: ServerError| error_body(&e).error.kind;
        assert_eq!(kind(bad("x")), "invalid_request_error");
        assert_eq!(
            kind(StoreError::NotFound("m".into()).into()),
            "not_found_error"
        );
        assert_eq!(
            kind(ServerError::Scheduler(SchedulerError::QueueFull)),
            "overloaded_error"
        );
        assert_eq!(kind(ServerError::Internal("x".into())), "api_error");
        let body = serde_json::to_value(error_body(&bad("x"))).unwrap();
        assert_eq!(body["type"], "error");
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    }
}
