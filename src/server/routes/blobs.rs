//! `HEAD` and `POST /api/blobs/:digest`: uploads for create. The digest is validated (no path
//! tricks), the upload is hashed as it streams to a temporary file, and only a matching upload is
//! renamed into place: nothing partial stays behind.

use crate::server::error::ServerError;
use crate::server::state::AppState;
use crate::store::ollama::{temp_sibling, BlobDigest};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

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
    let mut partial = Partial(Some(tmp.clone()));
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ServerError::BadRequest(format!("upload interrupted: {e}")))?;
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
    if got != digest.as_str() {
        return Err(ServerError::BadRequest(format!(
            "digest mismatch, expected \"{}\", got \"{got}\"",
            digest.as_str()
        )));
    }
    tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
    partial.0 = None;
    Ok(StatusCode::CREATED)
}
