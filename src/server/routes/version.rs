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

/// `GET /api/status`: Ollama's cloud status. ollmlx runs local models only, so cloud models
/// are always unavailable; `source` says nothing turned them off (Ollama's `none`).
pub async fn status() -> Json<serde_json::Value> {
    Json(serde_json::json!({"cloud": {"disabled": true, "source": "none"}}))
}
