//! `GET /metrics`: Prometheus's text format. What the daemon recorded, plus the loaded runners
//! sampled now (their memory and MLX prefix caches), as docs/monitoring.md lists.

use crate::metrics::{text, LoadedSample};
use crate::server::state::AppState;
use crate::store::format::Format;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::time::Duration;

/// How long a scrape waits for a runner's status: a runner busy loading or stuck must not stall
/// the scrape (Prometheus's default timeout is 10 s); it then shows the scheduler's estimate.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let loaded = sample_runners(&state).await;
    (
        [(CONTENT_TYPE, text::CONTENT_TYPE)],
        state.metrics.render(&loaded),
    )
}

/// Each loaded runner's status, asked of all of them at once.
async fn sample_runners(state: &AppState) -> Vec<LoadedSample> {
    let loaded = state.scheduler.ps().await;
    futures_util::future::join_all(loaded.into_iter().map(|l| async move {
        let status = tokio::time::timeout(STATUS_TIMEOUT, l.runner.status())
            .await
            .unwrap_or_default();
        let memory_bytes = match status.memory {
            Some(bytes) if bytes > 0 => bytes,
            _ if l.estimate > 0 => l.estimate,
            _ => l.model.size,
        };
        LoadedSample {
            model: l.model.name.display_shortest(),
            format: match l.model.format {
                Format::Mlx(_) => "mlx",
                Format::Gguf(_) => "gguf",
            },
            memory_bytes,
            prefix_cache: status.prefix_cache,
        }
    }))
    .await
}
