//! `/api/embed` and the legacy `/api/embeddings`.

use super::generate::is_zero;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/embed`. `input` is a string or a list of strings (anything else is a 400).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbedRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
}

/// `POST /api/embeddings` (legacy).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    pub embedding: Vec<f64>,
}
