//! `GET /api/ps`.

use crate::api::{time, ProcessModel, ProcessResponse};
use crate::server::state::AppState;
use axum::extract::State;
use axum::Json;

pub async fn ps(State(state): State<AppState>) -> Json<ProcessResponse> {
    let loaded = state.scheduler.ps().await;
    let default_ctx = state.config.default_num_ctx;
    let models = loaded
        .into_iter()
        .map(|l| {
            let facts = l.model.facts(false);
            let name = l.model.name.display_shortest();
            let size = l.model.size;
            // MLX on Metal or CUDA keeps the weights in GPU-visible memory; the CPU backend does not.
            let on_gpu = matches!(l.backend.as_str(), "metal" | "cuda" | "gpu");
            ProcessModel {
                model: name.clone(),
                name,
                size,
                digest: l.model.digest.clone(),
                details: facts.details(l.model.format.name()),
                expires_at: time::local(l.expires_at),
                size_vram: if on_gpu { size } else { 0 },
                context_length: l.context_length.map_or(default_ctx, |c| c.min(default_ctx)),
            }
        })
        .collect();
    Json(ProcessResponse { models })
}
