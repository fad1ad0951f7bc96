//! The shared pieces of generation output beyond text: tool calls, per-token log probabilities
//! and the `think` setting.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A tool call the model made, in Ollama's shape: `arguments` is a JSON object (key order kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub function: ToolCallFunction,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    /// The call's position among the calls of one response (0, 1, ...).
    #[serde(default)]
    pub index: usize,
    pub name: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl ToolCall {
    /// A call with a fresh id in Ollama's style (`call_` and 8 characters of `[a-z0-9]`).
    pub fn new(index: usize, name: String, arguments: Map<String, Value>) -> ToolCall {
        use rand::Rng;
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let id: String = (0..8)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect();
        ToolCall {
            id: format!("call_{id}"),
            function: ToolCallFunction {
                index,
                name,
                arguments,
            },
        }
    }
}

/// The log probability of one generated token, with the most likely alternatives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_logprobs: Vec<TokenLogprob>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
}

/// Whether the model must call a tool (`tool_choice` in the compatibility layers; "none" is
/// handled by not sending the tools at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The reply is one or more calls to any of the tools.
    Required,
    /// The reply is a call to this tool.
    Named(String),
}

/// `think`: off, on, or on with an effort level (`low`, `medium`, `high`, `max`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Think {
    Off,
    On,
    Level(String),
}

impl Think {
    /// Parses the request value (absent or null: `None`).
    pub fn from_json(v: &Option<Value>) -> Result<Option<Think>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(false)) => Ok(Some(Think::Off)),
            Some(Value::Bool(true)) => Ok(Some(Think::On)),
            Some(Value::String(s)) if ["low", "medium", "high", "max"].contains(&s.as_str()) => {
                Ok(Some(Think::Level(s.clone())))
            }
            // Ollama accepts the strings "true" and "false" as well.
            Some(Value::String(s)) if s == "true" => Ok(Some(Think::On)),
            Some(Value::String(s)) if s == "false" => Ok(Some(Think::Off)),
            Some(other) => Err(format!("invalid think value: {other}")),
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Think::Off)
    }

    /// The effort level, when one was given.
    pub fn level(&self) -> Option<&str> {
        match self {
            Think::Level(l) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_call_ids_look_like_ollamas() {
        let c = ToolCall::new(2, "f".into(), Map::new());
        assert!(c.id.starts_with("call_") && c.id.len() == 13, "{}", c.id);
        assert!(c.id[5..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(
            serde_json::to_value(&c).unwrap()["function"],
            json!({"index": 2, "name": "f", "arguments": {}})
        );
    }

    #[test]
    fn think_values() {
        assert_eq!(Think::from_json(&None).unwrap(), None);
        assert_eq!(
            Think::from_json(&Some(json!(false))).unwrap(),
            Some(Think::Off)
        );
        assert_eq!(
            Think::from_json(&Some(json!("high"))).unwrap(),
            Some(Think::Level("high".into()))
        );
        assert_eq!(
            Think::from_json(&Some(json!("loud"))).unwrap_err(),
            "invalid think value: \"loud\""
        );
    }
}
