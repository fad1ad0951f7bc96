//! `POST /api/pull`: progress lines as Ollama sends them, ending with `success` or an error line.
//! The pull runs in its own task; when the client goes away it stops at the next progress step
//! and its partial files stay for the next pull to resume.

use crate::api::{ErrorBody, ProgressResponse, PullRequest};
use crate::pull::Target;
use crate::server::error::ServerError;
use crate::server::extract::AppJson;
use crate::server::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
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
    if req.stream == Some(false) {
        let mut last = ProgressResponse::default();
        let mut rx = rx;
        while let Some(item) = rx.recv().await {
            match item {
                Ok(p) => last = p,
                Err(e) => {
                    return Ok((
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(ErrorBody { error: e }),
                    )
                        .into_response())
                }
            }
        }
        return Ok(Json(last).into_response());
    }
    let lines = UnboundedReceiverStream::new(rx).map(|item| {
        let mut line = match item {
            Ok(p) => serde_json::to_vec(&p),
            Err(e) => serde_json::to_vec(&ErrorBody { error: e }),
        }
        .unwrap_or_default();
        line.push(b'\n');
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}
