//! `/api/create`, `/api/copy`, and the progress lines of create (and later pull).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `POST /api/create` in Ollama's current form (the old `modelfile` field is ignored, as Ollama
/// ignores it since January 2025).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Deprecated spelling of `model`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// File name -> `sha256:<hex>` of an uploaded blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A string or a list of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<super::Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantize: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// One progress line of create (and pull): `{"status": ...}`, with digest/total/completed when
/// a blob is involved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "super::generate::is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "super::generate::is_zero")]
    pub completed: u64,
}

impl ProgressResponse {
    pub fn status(s: impl Into<String>) -> ProgressResponse {
        ProgressResponse {
            status: s.into(),
            ..Default::default()
        }
    }
}

/// `POST /api/copy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CopyRequest {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub destination: String,
}

/// `POST /api/pull`. `name` is the deprecated spelling of `model`; `insecure` allows plain http
/// to a registry named in the model name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}
