//! `POST /api/pull`: progress lines as Ollama sends them, ending with `success` or an error line.
//! The pull runs in its own task; when the client goes away it stops at the next progress step
//! and its partial files stay for the next pull to resume.

use crate::api::{ProgressResponse, PullRequest};
use crate::pull::Target;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::ndjson;
use crate::server::state::AppState;
use axum::extract::State;
use axum::response::Response;
use tokio_stream::wrappers::UnboundedReceiverStream;

pub async fn pull(
    State(state): State<AppState>,
    AppJson(req): AppJson<PullRequest>,
) -> Result<Response, ServerError> {
    let name = if req.model.is_empty() {
        req.name.clone()
    } else {
        req.model.clone()
    };
    Target::parse(&name).map_err(|_| ServerError::BadRequest("invalid model name".into()))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<ProgressResponse, String>>();
    let puller = state.puller.clone();
    let insecure = req.insecure;
    tokio::spawn(async move {
        let progress_tx = tx.clone();
        let mut progress = move |p: ProgressResponse| progress_tx.send(Ok(p)).is_ok();
        match puller.pull(&name, insecure, &mut progress).await {
            Ok(()) => tracing::info!(model = %name, "pulled"),
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "pull failed");
                let _ = tx.send(Err(e.to_string()));
            }
        }
    });
    let progress = UnboundedReceiverStream::new(rx);
    Ok(ndjson::progress(req.stream != Some(false), progress).await)
}
