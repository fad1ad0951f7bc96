//! `POST /api/embed` and the legacy `POST /api/embeddings`.

use super::common;
use crate::api::{EmbedRequest, EmbedResponse, EmbeddingRequest, EmbeddingResponse};
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::infer;
use crate::server::state::AppState;
use crate::store::{LocalModel, StoreError};
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use std::time::Instant;

/// Embed finds models through the scheduler in Ollama, hence its own not-found wording.
fn find(state: &AppState, name: &str) -> Result<LocalModel, ServerError> {
    state.store.find(name).map_err(|e| match e {
        StoreError::NotFound(_) | StoreError::InvalidName => {
            ServerError::NotFound(format!("model \"{name}\" not found, try pulling it first"))
        }
        e => e.into(),
    })
}

pub async fn embed(
    State(state): State<AppState>,
    AppJson(req): AppJson<EmbedRequest>,
) -> Result<Json<EmbedResponse>, ServerError> {
    let started = Instant::now();
    let inputs: Vec<String> = match &req.input {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ServerError::BadRequest("invalid input type".into()))?,
        _ => return Err(ServerError::BadRequest("invalid input type".into())),
    };
    if let Some(i) = inputs.iter().position(String::is_empty) {
        return Err(ServerError::BadRequest(format!("input[{i}] is empty")));
    }
    let keep_alive = common::keep_alive(&req.keep_alive)?;
    let options = common::options(&req.options)?;
    let dimensions = match req.dimensions {
        Some(d) if d < 0 => {
            return Err(ServerError::BadRequest(
                "dimensions must be a positive number".into(),
            ))
        }
        d => d.map(|d| d as usize),
    };
    let model = find(&state, &req.model)?;
    let (result, load_duration) = infer::embed(
        &state,
        model,
        inputs,
        req.truncate.unwrap_or(true),
        &options,
        keep_alive,
    )
    .await?;
    let embeddings = result
        .embeddings
        .into_iter()
        .map(|v| infer::normalize(v, dimensions))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(EmbedResponse {
        model: req.model,
        embeddings,
        total_duration: started.elapsed().as_nanos() as u64,
        load_duration,
        prompt_eval_count: result.prompt_tokens,
    }))
}

/// The legacy endpoint returns the runner's vector as is (no renormalisation), as Ollama does.
pub async fn embeddings(
    State(state): State<AppState>,
    AppJson(req): AppJson<EmbeddingRequest>,
) -> Result<Json<EmbeddingResponse>, ServerError> {
    let keep_alive = common::keep_alive(&req.keep_alive)?;
    let options = common::options(&req.options)?;
    let model = find(&state, &req.model)?;
    let inputs = if req.prompt.is_empty() {
        Vec::new()
    } else {
        vec![req.prompt]
    };
    let (result, _) = infer::embed(&state, model, inputs, true, &options, keep_alive).await?;
    let embedding = result.embeddings.into_iter().next().unwrap_or_default();
    Ok(Json(EmbeddingResponse {
        embedding: embedding.into_iter().map(f64::from).collect(),
    }))
}
