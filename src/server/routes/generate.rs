//! `POST /api/generate`.

use super::common;
use crate::api::{time, GenerateRequest, GenerateResponse, Message};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::infer::{self, Delta, DoneInfo, Job};
use crate::server::ndjson::{self, Chunk};
use crate::server::state::AppState;
use crate::store::StoreError;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;

impl Chunk for GenerateResponse {
    fn build(model: &str, delta: Delta, done: Option<&DoneInfo>) -> Self {
        GenerateResponse {
            model: model.to_owned(),
            created_at: time::now_utc(),
            response: delta.content,
            thinking: delta.thinking,
            logprobs: common::native_logprobs(delta.logprobs),
            done: done.is_some(),
            done_reason: done.map(|d| d.done_reason.clone()),
            context: done.and_then(|d| d.context.clone()),
            metrics: done.map(|d| d.metrics.clone()).unwrap_or_default(),
        }
    }
}

pub async fn generate(
    State(state): State<AppState>,
    AppJson(req): AppJson<GenerateRequest>,
) -> Result<Response, ServerError> {
    let started = Instant::now();
    if req.raw && (!req.template.is_empty() || !req.system.is_empty() || req.context.is_some()) {
        return Err(ServerError::BadRequest(
            "raw mode does not support template, system, or context".into(),
        ));
    }
    let logprobs = common::logprobs(req.logprobs, req.top_logprobs)?;
    let format = common::format(&req.format)?;
    let mut think = common::think(&req.think)?;
    let keep_alive = common::keep_alive(&req.keep_alive)?;
    let options = common::options(&req.options)?;
    let has_images = common::check_base64(&req.images)?;
    // Ollama answers an empty or unknown name on generate with 404 `model '<name>' not found`.
    let model = state.store.find(&req.model).map_err(|e| match e {
        StoreError::InvalidName => StoreError::NotFound(req.model.clone()),
        e => e,
    })?;
    if model.limits().1 {
        return Err(ServerError::BadRequest(format!(
            "\"{}\" does not support generate",
            req.model
        )));
    }
    common::check_vision(&model, has_images)?;
    if req.raw && has_images && matches!(model.format, crate::store::format::Format::Mlx(_)) {
        // The MLX runner places images with the model's processor, which needs messages.
        return Err(ServerError::BadRequest(
            "raw prompts cannot carry images on MLX models: send the prompt without raw".into(),
        ));
    }
    let mut model = model;
    if !req.template.is_empty() {
        // A request's Go template replaces the model's own for this request (Ollama's
        // `template`): the daemon renders it, for MLX and GGUF models alike.
        model.config.template = Some(req.template.clone());
    }
    let traits = common::check_features(&model, &req.model, &[], &mut think, false)?;
    let fim = if req.suffix.is_empty() {
        None
    } else {
        Some(common::fill_in_the_middle(
            &model,
            &req.prompt,
            &req.suffix,
        )?)
    };

    if req.prompt.is_empty() {
        let reason = common::load_or_unload(&state, model, keep_alive, &options).await?;
        return Ok(Json(GenerateResponse {
            model: req.model,
            created_at: time::now_utc(),
            done: true,
            done_reason: Some(reason.to_owned()),
            ..Default::default()
        })
        .into_response());
    }

    let mut images = Vec::new();
    let fill_in = fim.is_some();
    let input = if let Some(text) = fim {
        images = req.images;
        PromptInput::Raw(text)
    } else if req.raw {
        // Raw prompts refer to their images as `[img-N]` (the others go first).
        images = req.images;
        PromptInput::Raw(req.prompt)
    } else {
        let mut messages = Vec::new();
        if !req.system.is_empty() {
            messages.push(Message::new("system", req.system));
        }
        let mut user = Message::new("user", req.prompt);
        user.images = req.images;
        messages.push(user);
        PromptInput::Messages(messages)
    };
    let raw = req.raw || fill_in;
    let mut job = Job::new(model, input, options, started);
    job.images = images;
    job.context = if raw { None } else { req.context };
    job.keep_alive = keep_alive;
    job.truncate = req.truncate.unwrap_or(true);
    job.shift = req.shift.unwrap_or(true);
    job.return_context = !raw;
    job.think = think;
    job.traits = Some(traits);
    job.format = format;
    job.logprobs = logprobs;
    let pieces = infer::run(&state, job).await?;
    Ok(ndjson::respond::<GenerateResponse>(req.model, req.stream.unwrap_or(true), pieces).await)
}
