//! `AppJson<T>`: the JSON body extractor whose rejections are Ollama-shaped errors. It ignores the
//! Content-Type header, as Ollama does: `curl -d` sends a form type, and clients rely on it.
//!
//! Bodies are read whole, so their size is bounded ([`MAX_BODY`]); blob uploads stream to disk
//! and are not.

use super::error::ServerError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// The largest request body read whole (every JSON endpoint). Ollama sets none, but a prompt
/// costs the daemon and its runner several times its size: 64 MiB is far more text than any
/// context holds, and room for many large images.
pub const MAX_BODY: usize = 64 << 20;

pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        json(&bytes).map(AppJson)
    }
}

/// A body that could not be read: too large (413), or broken off (400).
pub fn body_error(e: BytesRejection) -> ServerError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::TooLarge(format!(
            "request body too large: the limit is {} MiB",
            MAX_BODY >> 20
        ))
    } else {
        ServerError::BadRequest(e.body_text())
    }
}

/// A body as `T`; an empty one is Ollama's "missing request body".
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ServerError::MissingBody);
    }
    serde_json::from_slice(bytes).map_err(|e| ServerError::BadRequest(e.to_string()))
}
