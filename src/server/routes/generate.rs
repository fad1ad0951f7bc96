//! `POST /api/generate`.

use super::common;
use crate::api::{time, GenerateRequest, GenerateResponse, Message};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::infer::{self, Delta, DoneInfo, Job};
use crate::server::ndjson::{self, Chunk};
use crate::server::state::AppState;
use crate::store::{LocalModel, StoreError};
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
    let model = find_model(&state, &req)?;
    let traits = common::check_features(&model, &req.model, &[], &mut think, false)?;
    // Before the empty-prompt load: a suffix on a model that cannot fill in is a 400 even then.
    let empty = req.prompt.is_empty();
    let (input, images, raw) = prompt(
        &model,
        req.prompt,
        &req.suffix,
        req.system,
        req.images,
        req.raw,
    )?;
    if empty {
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
    let job = Job {
        input,
        context: if raw { None } else { req.context },
        options,
        keep_alive,
        truncate: req.truncate.unwrap_or(true),
        shift: req.shift.unwrap_or(true),
        return_context: !raw,
        think,
        format,
        logprobs,
        traits: Some(traits),
        images,
        ..Job::new(
            model,
            PromptInput::Raw(String::new()),
            Default::default(),
            started,
        )
    };
    let pieces = infer::run(&state, job).await?;
    Ok(ndjson::respond::<GenerateResponse>(req.model, req.stream.unwrap_or(true), pieces).await)
}

/// The model, checked against what the request needs of it (generation, images), with the
/// request's own Go template in place of the model's (Ollama's `template`: the daemon renders
/// it, for MLX and GGUF models alike).
fn find_model(state: &AppState, req: &GenerateRequest) -> Result<LocalModel, ServerError> {
    let has_images = common::check_base64(&req.images)?;
    // Ollama answers an empty or unknown name on generate with 404 `model '<name>' not found`.
    let mut model = state.store.find(&req.model).map_err(|e| match e {
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
    if !req.template.is_empty() {
        model.config.template = Some(req.template.clone());
    }
    Ok(model)
}

/// What to generate from: a fill-in-the-middle prompt (`suffix`) or a raw one, used as they
/// are with their images as `[img-N]` markers, or else a system + user chat for the model's
/// template. Returns the input, the images of a raw input, and whether it is raw.
fn prompt(
    model: &LocalModel,
    prompt: String,
    suffix: &str,
    system: String,
    images: Vec<String>,
    raw: bool,
) -> Result<(PromptInput, Vec<String>, bool), ServerError> {
    if !suffix.is_empty() {
        let text = common::fill_in_the_middle(model, &prompt, suffix)?;
        return Ok((PromptInput::Raw(text), images, true));
    }
    if raw {
        // Raw prompts refer to their images as `[img-N]` (the others go first).
        return Ok((PromptInput::Raw(prompt), images, true));
    }
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(Message::new("system", system));
    }
    let mut user = Message::new("user", prompt);
    user.images = images;
    messages.push(user);
    Ok((PromptInput::Messages(messages), Vec::new(), false))
}
