//! Anthropic Messages API wire types (`POST /v1/messages`). Requests keep content as JSON values
//! (a string or a list of typed blocks) and are translated by the route; fields ollmlx does not
//! use (`metadata`, `service_tier`, ...) are accepted and ignored. Replies are built as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/messages`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesRequest {
    #[serde(default)]
    pub model: String,
    /// Required and positive; checked by the route so that its absence is a 400 in Anthropic's
    /// error shape rather than a parse error.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub messages: Vec<MessageParam>,
    /// A string or a list of text blocks.
    #[serde(default)]
    pub system: Option<Value>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// `{"type": "none"}` withholds the tools; `auto`, `any` and `tool` are accepted and ignored.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `{"type": "enabled", "budget_tokens": N}`, `{"type": "disabled"}` or `{"type": "adaptive"}`.
    #[serde(default)]
    pub thinking: Option<Value>,
    /// `{"effort": "low" | ... | "max", "format": {"type": "json_schema", "schema": {...}}}`.
    #[serde(default)]
    pub output_config: Option<Value>,
}

/// One turn: `role` is `user` or `assistant`; `content` a string or a list of blocks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageParam {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: Value,
}

/// A client tool: `input_schema` is the JSON schema of its input.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tool {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Value,
    /// Server tools (`web_search_20250305`, ...) have a type; client tools have none or `custom`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `{"type": "error", "error": {"type", "message"}, "request_id"}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorResponse {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: ErrorDetail,
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}
