//! `/api/chat`: request, response and the message object.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A chat message. `role` is lower-cased on input, as Ollama does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(deserialize_with = "lowercase")]
    pub role: String,
    /// Always present in responses, even when empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_call_id: String,
}

fn lowercase<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.to_lowercase())
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.to_owned(),
            content: content.into(),
            ..Default::default()
        }
    }

    /// A `tool` message answering the call `call_id`, named after that call's tool as found in
    /// `names` (call id -> tool name, gathered from the conversation's earlier calls).
    pub fn tool_result(content: String, call_id: &str, names: &Map<String, Value>) -> Message {
        Message {
            role: "tool".into(),
            content,
            tool_call_id: call_id.to_owned(),
            tool_name: names
                .get(call_id)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            ..Default::default()
        }
    }
}

/// `POST /api/chat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
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

/// One NDJSON line of `/api/chat` (or the whole body with `stream: false`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: Message,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten)]
    pub metrics: super::Metrics,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<super::Logprob>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_lowercased_and_null_content_is_empty() {
        let m: Message = serde_json::from_str(r#"{"role":"USER","content":null}"#).unwrap();
        assert_eq!(m.role, "user");
        assert_eq!(m.content, "");
        // content is always serialised, even when empty
        assert_eq!(
            serde_json::to_string(&Message::new("assistant", "")).unwrap(),
            r#"{"role":"assistant","content":""}"#
        );
    }
}
