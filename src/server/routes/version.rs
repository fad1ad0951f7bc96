//! `GET /` and `GET /api/version`.

use crate::api::{VersionResponse, OLLAMA_COMPAT_VERSION};
use axum::Json;

pub async fn root() -> &'static str {
    "Ollama is running"
}

pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse {
        version: OLLAMA_COMPAT_VERSION.to_owned(),
    })
}
