//! `/api/generate`: request and response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/generate`. Every field Ollama accepts is here so nothing a client sends is rejected
/// as unknown; fields this server does not act on yet are validated by the route.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerateRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<i64>,
    #[serde(
        default,
        rename = "_debug_render_only",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub debug_render_only: bool,
}

/// The metrics of a final chunk. Each is omitted when zero, as Go's `omitempty` does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_duration: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_duration: u64,
}

pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One NDJSON line of `/api/generate` (or the whole body with `stream: false`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    #[serde(default)]
    pub response: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    #[serde(flatten)]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<super::Logprob>,
}
