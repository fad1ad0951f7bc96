//! `POST /api/chat`.

use super::common;
use crate::api::{time, ChatRequest, ChatResponse, Message};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::infer::{self, DoneInfo, Job};
use crate::server::ndjson::{self, Chunk};
use crate::server::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;

impl Chunk for ChatResponse {
    fn build(model: &str, text: String, done: Option<&DoneInfo>) -> Self {
        ChatResponse {
            model: model.to_owned(),
            created_at: time::now_utc(),
            message: Message::new("assistant", text),
            done: done.is_some(),
            done_reason: done.map(|d| d.done_reason.clone()),
            metrics: done.map(|d| d.metrics.clone()).unwrap_or_default(),
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
    common::top_logprobs(req.top_logprobs)?;
    common::format(&req.format)?;
    let wants_thinking = common::think(&req.think)?;
    let keep_alive = common::keep_alive(&req.keep_alive)?;
    let options = common::options(&req.options)?;
    let model = state.store.find(&req.model)?;
    let name = model.name.display_shortest();
    if model.limits().1 {
        return Err(ServerError::BadRequest(format!(
            "\"{}\" does not support chat",
            req.model
        )));
    }
    let messages = req.messages.unwrap_or_default();
    if messages.iter().any(|m| !m.images.is_empty()) {
        return Err(ServerError::BadRequest(format!(
            "{name} does not support vision"
        )));
    }
    let needs_facts = wants_thinking || req.tools.as_ref().is_some_and(|t| !t.is_empty());
    if needs_facts {
        let caps = model.facts(false).capabilities;
        if wants_thinking && !caps.iter().any(|c| c == "thinking") {
            return Err(ServerError::BadRequest(format!(
                "\"{}\" does not support thinking",
                req.model
            )));
        }
        if req.tools.as_ref().is_some_and(|t| !t.is_empty()) && !caps.iter().any(|c| c == "tools") {
            return Err(ServerError::BadRequest(format!(
                "{name} does not support tools"
            )));
        }
    }

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

    let job = Job {
        model,
        input: PromptInput::Messages(messages),
        context: None,
        options,
        keep_alive,
        truncate: req.truncate.unwrap_or(true),
        return_context: false,
        started,
    };
    let pieces = infer::run(&state, job).await?;
    Ok(ndjson::respond::<ChatResponse>(req.model, req.stream.unwrap_or(true), pieces).await)
}
