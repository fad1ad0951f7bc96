//! `POST /api/chat`.

use super::common;
use crate::api::{time, ChatRequest, ChatResponse, Message};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::infer::{self, Delta, DoneInfo, Job};
use crate::server::ndjson::{self, Chunk};
use crate::server::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;

impl Chunk for ChatResponse {
    fn build(model: &str, delta: Delta, done: Option<&DoneInfo>) -> Self {
        let mut message = Message::new("assistant", delta.content);
        message.thinking = delta.thinking;
        message.tool_calls = delta
            .tool_calls
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        ChatResponse {
            model: model.to_owned(),
            created_at: time::now_utc(),
            message,
            done: done.is_some(),
            done_reason: done.map(|d| d.done_reason.clone()),
            metrics: done.map(|d| d.metrics.clone()).unwrap_or_default(),
            logprobs: common::native_logprobs(delta.logprobs),
        }
    }
}

pub async fn chat(
    State(state): State<AppState>,
    AppJson(req): AppJson<ChatRequest>,
) -> Result<Response, ServerError> {
    let started = Instant::now();
    if req.model.is_empty() {
        return Err(ServerError::BadRequest("model is required".into()));
    }
    let logprobs = common::logprobs(req.logprobs, req.top_logprobs)?;
    let format = common::format(&req.format)?;
    let mut think = common::think(&req.think)?;
    let keep_alive = common::keep_alive(&req.keep_alive)?;
    let options = common::options(&req.options)?;
    let has_images = common::check_base64(req.messages.iter().flatten().flat_map(|m| &m.images))?;
    let model = state.store.find(&req.model)?;
    if model.limits().1 {
        return Err(ServerError::BadRequest(format!(
            "\"{}\" does not support chat",
            req.model
        )));
    }
    let messages = req.messages.unwrap_or_default();
    common::check_vision(&model, has_images)?;
    let tools = req.tools.unwrap_or_default();
    let traits = common::check_features(&model, &req.model, &tools, &mut think, false)?;

    if messages.is_empty() {
        let reason = common::load_or_unload(&state, model, keep_alive, &options).await?;
        return Ok(Json(ChatResponse {
            model: req.model,
            created_at: time::now_utc(),
            message: Message::new("assistant", ""),
            done: true,
            done_reason: Some(reason.to_owned()),
            ..Default::default()
        })
        .into_response());
    }

    let mut job = Job::new(model, PromptInput::Messages(messages), options, started);
    job.keep_alive = keep_alive;
    job.truncate = req.truncate.unwrap_or(true);
    job.shift = req.shift.unwrap_or(true);
    job.tools = tools;
    job.traits = Some(traits);
    job.think = think;
    job.format = format;
    job.logprobs = logprobs;
    let pieces = infer::run(&state, job).await?;
    Ok(ndjson::respond::<ChatResponse>(req.model, req.stream.unwrap_or(true), pieces).await)
}
