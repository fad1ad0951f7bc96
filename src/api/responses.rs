//! OpenAI Responses API wire types (`POST /v1/responses`, stateless). `input` and the output items
//! stay JSON values, translated by the route; fields ollmlx does not use (`store`, `metadata`,
//! `truncation`, ...) are accepted and ignored.

use serde::Deserialize;
use serde_json::Value;

/// `POST /v1/responses`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponsesRequest {
    #[serde(default)]
    pub model: String,
    /// A string (one user message) or a list of input items.
    #[serde(default)]
    pub input: Value,
    /// A system message put before the input.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Function tools: `{"type": "function", "name", "description", "parameters"}`.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `"none"` withholds the tools; other values are echoed and otherwise ignored.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<i64>,
    /// `{"effort": "none" | "minimal" | "low" | "medium" | "high" | "xhigh"}`.
    #[serde(default)]
    pub reasoning: Option<Value>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", ...}}`.
    #[serde(default)]
    pub text: Option<Value>,
    /// Refused: the endpoint keeps no state.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Refused: the endpoint keeps no state.
    #[serde(default)]
    pub conversation: Option<Value>,
    /// Echoed back.
    #[serde(default)]
    pub metadata: Option<Value>,
}
