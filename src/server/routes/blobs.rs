//! `HEAD` and `POST /api/blobs/:digest`: uploads for create. The digest is validated (no path
//! tricks), the upload is hashed as it streams to a temporary file (`store::blob_writer`), and
//! only a matching upload is renamed into place: nothing partial stays behind.

use crate::server::error::ServerError;
use crate::server::state::AppState;
use crate::store::blob_writer::{BlobSink, CommitError};
use crate::store::ollama::{temp_sibling, BlobDigest};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::StreamExt;

fn parse(raw: &str) -> Result<BlobDigest, ServerError> {
    BlobDigest::parse(raw).map_err(|_| ServerError::BadRequest("invalid digest format".into()))
}

pub async fn head(State(state): State<AppState>, Path(raw): Path<String>) -> StatusCode {
    match parse(&raw) {
        Ok(d) if state.store.ollama.blob_path(&d).is_file() => StatusCode::OK,
        Ok(_) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// Deletes the temporary file unless the upload was committed.
struct Partial(Option<std::path::PathBuf>);

impl Partial {
    /// The file was renamed into place: nothing to delete.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub async fn upload(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Body,
) -> Result<StatusCode, ServerError> {
    let digest = parse(&raw)?;
    let dest = state.store.ollama.blob_path(&digest);
    if dest.is_file() {
        return Ok(StatusCode::OK);
    }
    let io = |e: std::io::Error| ServerError::Internal(format!("writing the blob failed: {e}"));
    tokio::fs::create_dir_all(state.store.ollama.blobs_dir())
        .await
        .map_err(io)?;
    let tmp = temp_sibling(&dest);
    let partial = Partial(Some(tmp.clone()));
    let sink = BlobSink::spawn(tmp, false);
    let mut stream = body.into_data_stream();
    let mut interrupted = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if !sink.send(chunk).await {
                    break; // the writer failed: finish() says why
                }
            }
            Err(e) => {
                interrupted = Some(e);
                break;
            }
        }
    }
    // Wait for the writer either way, so that the file is closed before `partial` removes it.
    let written = sink.finish().await;
    if let Some(e) = interrupted {
        return Err(ServerError::BadRequest(format!("upload interrupted: {e}")));
    }
    let written = written.map_err(io)?;
    let want = digest.as_str().trim_start_matches("sha256:").to_owned();
    let committed = tokio::task::spawn_blocking(move || written.commit(&dest, Some(&want)))
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    match committed {
        Ok(()) => {
            partial.keep();
            Ok(StatusCode::CREATED)
        }
        Err(CommitError::Mismatch { got, .. }) => Err(ServerError::BadRequest(format!(
            "digest mismatch, expected \"{}\", got \"sha256:{got}\"",
            digest.as_str()
        ))),
        Err(CommitError::Io(e)) => Err(io(e)),
    }
}
