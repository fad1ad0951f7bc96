//! `POST /api/pull` and `POST /api/push`: progress lines as Ollama sends them, ending with
//! `success` or an error line. The transfer runs in its own task; when the client goes away it
//! stops at the next progress step (a pull's partial files stay for the next pull to resume; a
//! push's uploaded blobs are skipped by the next push).

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
    transfer(state, req, Direction::Pull).await
}

pub async fn push(
    State(state): State<AppState>,
    AppJson(req): AppJson<PullRequest>,
) -> Result<Response, ServerError> {
    transfer(state, req, Direction::Push).await
}

#[derive(Clone, Copy)]
enum Direction {
    Pull,
    Push,
}

async fn transfer(
    state: AppState,
    req: PullRequest,
    direction: Direction,
) -> Result<Response, ServerError> {
    let name = if req.model.is_empty() {
        req.name.clone()
    } else {
        req.model.clone()
    };
    let valid = match direction {
        Direction::Pull => Target::parse(&name).is_ok(),
        Direction::Push => crate::store::name::ModelName::parse(&name).is_ok(),
    };
    if !valid {
        return Err(ServerError::BadRequest("invalid model name".into()));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<ProgressResponse, String>>();
    let puller = state.puller.clone();
    let insecure = req.insecure;
    tokio::spawn(async move {
        let progress_tx = tx.clone();
        let mut progress = move |p: ProgressResponse| progress_tx.send(Ok(p)).is_ok();
        let outcome = match direction {
            Direction::Pull => puller.pull(&name, insecure, &mut progress).await,
            Direction::Push => puller.push(&name, insecure, &mut progress).await,
        };
        match outcome {
            Ok(()) => tracing::info!(model = %name, "done"),
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "transfer failed");
                let _ = tx.send(Err(e.to_string()));
            }
        }
    });
    let progress = UnboundedReceiverStream::new(rx);
    Ok(ndjson::progress(req.stream != Some(false), progress).await)
}
