//! `AppJson<T>`: the JSON body extractor whose rejections are Ollama-shaped 400s. It ignores the
//! Content-Type header, as Ollama does: `curl -d` sends a form type, and clients rely on it.

use super::error::ServerError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ServerError::BadRequest(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ServerError::MissingBody);
        }
        serde_json::from_slice(&bytes)
            .map(AppJson)
            .map_err(|e| ServerError::BadRequest(e.to_string()))
    }
}
