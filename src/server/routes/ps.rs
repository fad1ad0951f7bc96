//! `GET /api/ps`.

use crate::api::{time, ProcessModel, ProcessResponse};
use crate::server::state::AppState;
use axum::extract::State;
use axum::Json;
use std::time::Duration;

/// How long `/api/ps` waits for a runner to report its memory before showing the estimate.
const MEASURE_TIMEOUT: Duration = Duration::from_millis(500);

pub async fn ps(State(state): State<AppState>) -> Json<ProcessResponse> {
    let loaded = state.scheduler.ps().await;
    let default_ctx = state.config.default_num_ctx;
    // Measured memory (the runners report it), else the scheduler's estimate, else the files.
    let sizes = futures_util::future::join_all(loaded.iter().map(|l| async move {
        let measured = tokio::time::timeout(MEASURE_TIMEOUT, l.runner.memory()).await;
        match measured.ok().flatten() {
            Some(bytes) if bytes > 0 => bytes,
            _ if l.estimate > 0 => l.estimate,
            _ => l.model.size,
        }
    }))
    .await;
    let models = loaded
        .into_iter()
        .zip(sizes)
        .map(|(l, size)| {
            let facts = l.model.facts(false);
            let name = l.model.name.display_shortest();
            // MLX on Metal or CUDA keeps the weights in GPU-visible memory; the CPU backend does not.
            let on_gpu = matches!(l.backend.as_str(), "metal" | "cuda" | "gpu");
            let distributed = l.runner.info().distributed.clone();
            ProcessModel {
                model: name.clone(),
                name,
                size,
                digest: l.model.digest.clone(),
                details: facts.details(l.model.format.name()),
                expires_at: time::local(l.expires_at),
                size_vram: if on_gpu { size } else { 0 },
                context_length: l.context_length.map_or(default_ctx, |c| c.min(default_ctx)),
                distributed,
            }
        })
        .collect();
    Json(ProcessResponse { models })
}
