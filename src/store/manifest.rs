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

    /// The manifest file's bytes exactly as Ollama writes them (Go's `json.Encoder`): compact,
    /// fields in struct order, `<`, `>`, `&`, U+2028 and U+2029 escaped, and a trailing newline.
    /// A model's ID is the SHA-256 of these bytes, so the same content gets the same ID in
    /// `ollama list` and `ollmlx list`.
    pub fn to_bytes(&self) -> Vec<u8> {
        super::gojson::encode(&serde_json::to_value(self).expect("a manifest always serializes"))
    }

    /// Layer sizes plus the config's: what `/api/tags` shows as `size`. Saturating: the sizes are
    /// whatever the manifest's author wrote.
    pub fn total_size(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.size)
            .fold(self.config.size, u64::saturating_add)
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

impl ConfigBlob {
    /// The blob's bytes as Ollama writes its `model.ConfigV2` (Go's encoder, struct order,
    /// `model_families` always present, empty optional fields left out, `architecture` and
    /// `os` last: Ollama's create always writes amd64/linux). Keys Ollama does not know (an
    /// ollmlx model's own) follow.
    pub fn to_bytes(&self) -> Vec<u8> {
        use serde_json::{json, Map, Value};
        let mut m = Map::new();
        m.insert("model_format".into(), json!(self.model_format));
        m.insert("model_family".into(), json!(self.model_family));
        m.insert("model_families".into(), json!(self.model_families));
        m.insert("model_type".into(), json!(self.model_type));
        m.insert("file_type".into(), json!(self.file_type));
        let set = |v: &&Value| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        let known = |m: &mut Map<String, Value>, key: &str| {
            if let Some(v) = self.rest.get(key).filter(set) {
                m.insert(key.into(), v.clone());
            }
        };
        for key in [
            "renderer",
            "parser",
            "requires",
            "remote_host",
            "remote_model",
        ] {
            known(&mut m, key);
        }
        if !self.capabilities.is_empty() {
            m.insert("capabilities".into(), json!(self.capabilities));
        }
        for key in ["context_length", "embedding_length", "base_name", "draft"] {
            known(&mut m, key);
        }
        for (key, default) in [("architecture", "amd64"), ("os", "linux")] {
            let v = self.rest.get(key).cloned().unwrap_or(json!(default));
            m.insert(key.into(), v);
        }
        for (key, v) in &self.rest {
            if !m.contains_key(key) {
                m.insert(key.clone(), v.clone());
            }
        }
        super::gojson::encode(&Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_overflow_saturate() {
        // Found by fuzzing: two layers of 2^64 - 1 bytes overflowed the sum (a panic in debug
        // builds, a wrapped size in `/api/tags` in release).
        let big = |media: &str| Layer {
            media_type: media.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: u64::MAX,
            from: None,
            name: None,
        };
        let m = Manifest::new(big(CONFIG_MEDIA_TYPE), vec![big(MEDIA_MODEL)]);
        assert_eq!(m.total_size(), u64::MAX);
    }

    /// The bytes Go's `json.NewEncoder(f).Encode(m)` writes for this manifest (generated with
    /// Ollama's `manifest.Manifest` and `manifest.Layer` types).
    #[test]
    fn manifests_are_encoded_byte_for_byte_as_ollama_does() {
        let layer = |media: &str, c: &str, size: u64| Layer {
            media_type: media.into(),
            digest: format!("sha256:{}", c.repeat(64)),
            size,
            from: None,
            name: None,
        };
        let mut model = layer(MEDIA_MODEL, "a", 12);
        model.from = Some("a<b>&c\u{2028}\t\u{1}é".into());
        let mut adapter = layer(MEDIA_ADAPTER, "b", 3);
        adapter.name = Some("x/y".into());
        let m = Manifest::new(layer(CONFIG_MEDIA_TYPE, "c", 2), vec![model, adapter]);
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let go = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","#,
                r#""config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:{c}","size":2}},"#,
                r#""layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:{a}","size":12,"#,
                r#""from":"a\u003cb\u003e\u0026c\u2028\t\u0001é"}},"#,
                r#"{{"mediaType":"application/vnd.ollama.image.adapter","digest":"sha256:{b}","size":3,"name":"x/y"}}]}}"#,
                "\n"
            ),
            a = a,
            b = b,
            c = c
        );
        assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), go);
        let back: Manifest = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
    }
}
