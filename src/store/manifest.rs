//! Ollama's manifest schema (`manifest/manifest.go`) and layer media types.

use serde::{Deserialize, Serialize};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
pub const MEDIA_PROJECTOR: &str = "application/vnd.ollama.image.projector";
pub const MEDIA_ADAPTER: &str = "application/vnd.ollama.image.adapter";
pub const MEDIA_TEMPLATE: &str = "application/vnd.ollama.image.template";
pub const MEDIA_SYSTEM: &str = "application/vnd.ollama.image.system";
pub const MEDIA_PARAMS: &str = "application/vnd.ollama.image.params";
pub const MEDIA_MESSAGES: &str = "application/vnd.ollama.image.messages";
pub const MEDIA_LICENSE: &str = "application/vnd.ollama.image.license";
/// ollmlx's own layer: a model whose weights are an MLX model in the Hugging Face cache. Its blob
/// is `{"repo_id": "...", "revision": "..."}`. Ollama ignores layers it does not know.
pub const MEDIA_HF_REF: &str = "application/vnd.ollmlx.hf.reference";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub config: Layer,
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    pub fn new(config: Layer, layers: Vec<Layer>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            config,
            layers,
        }
    }

    /// The first layer of a media type.
    pub fn layer(&self, media_type: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.media_type == media_type)
    }

    /// Every blob digest this manifest needs, the config included.
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.config.digest.as_str())
            .chain(self.layers.iter().map(|l| l.digest.as_str()))
    }

    /// Layer sizes plus the config's: what `/api/tags` shows as `size`.
    pub fn total_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// The config blob (`model_format`, `model_family`, ...); unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigBlob {
    #[serde(default)]
    pub model_format: String,
    #[serde(default)]
    pub model_family: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_families: Option<Vec<String>>,
    /// Shown as `parameter_size`.
    #[serde(default)]
    pub model_type: String,
    /// Shown as `quantization_level`.
    #[serde(default)]
    pub file_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}
