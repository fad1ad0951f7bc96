//! Model management wire types: `/api/tags`, `/api/show`, `/api/ps`, `/api/delete`, version.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `details` of tags, show and ps. All six keys are always present: clients (and
/// `details.parent_model` checks in some) break when one is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    #[serde(default)]
    pub parent_model: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub families: Option<Vec<String>>,
    #[serde(default)]
    pub parameter_size: String,
    #[serde(default)]
    pub quantization_level: String,
}

/// One entry of `GET /api/tags`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListModel {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    /// 64 hex characters, no `sha256:` prefix (the CLI shows the first 12).
    pub digest: String,
    pub details: ModelDetails,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    pub models: Vec<ListModel>,
}

/// `POST /api/show`. `name` is the deprecated spelling of `model`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShowRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verbose: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShowResponse {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub license: String,
    #[serde(default)]
    pub modelfile: String,
    #[serde(default)]
    pub parameters: String,
    #[serde(default)]
    pub template: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    pub details: ModelDetails,
    /// The model's MESSAGE layers (a conversation every chat starts from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<super::Message>,
    /// Always present (`{}` at minimum): ollama-python has no default for it.
    pub model_info: Map<String, Value>,
    /// GGUF tensors (`[{name, type, shape}]`); left out for MLX models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<TensorEntry>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub modified_at: String,
    /// How the model would be split across machines under this server's configuration
    /// (ollmlx's own field; absent when it runs on this machine alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<Distributed>,
}

/// How a model split across machines is placed (`/api/ps`, `/api/show`): ollmlx's own field,
/// which Ollama's clients ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distributed {
    /// `mlx-ring` (MLX ranks over TCP, started by `mlx.launch`) or `llama-rpc` (llama.cpp's
    /// RPC backend).
    pub backend: String,
    /// `tensor` or `pipeline` (MLX), `layers` (llama.cpp spreads whole layers over devices).
    pub split: String,
    /// The machines the model is split over, this one first.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub shape: Vec<u64>,
}

/// One entry of `GET /api/ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessModel {
    pub name: String,
    pub model: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
    pub expires_at: String,
    pub size_vram: u64,
    pub context_length: u64,
    /// How the running model is split across machines (absent: on this machine alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<Distributed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessResponse {
    pub models: Vec<ProcessModel>,
}

/// `DELETE /api/delete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeleteRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionResponse {
    pub version: String,
}
