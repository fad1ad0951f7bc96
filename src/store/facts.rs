//! What a model directory says about itself, read from disk without loading it: the `config.json`
//! mapped to Ollama's `model_info` keys (as Ollama's `x/server/show.go` maps HF configs), the
//! parameter count from safetensors headers, quantization, chat template, capabilities, licence and
//! the sampling parameters the authors recommend (`generation_config.json`).

use super::format::{read_json, MlxLayout};
use super::safetensors::read_header;
use crate::api::{ModelDetails, Options};
use serde_json::{Map, Value};
use std::fs;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct ModelFacts {
    pub architecture: String,
    pub parameter_count: u64,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub quantization_level: String,
    /// Ollama's `model_info` map.
    pub model_info: Map<String, Value>,
    /// The Jinja chat template, wherever the model keeps it.
    pub template: Option<String>,
    pub capabilities: Vec<String>,
    pub license: Option<String>,
    /// Sampling defaults from `generation_config.json`, applied under request options.
    pub parameters: Options,
    /// GGUF tensors (name, type, shape), as `/api/show` lists them.
    pub tensors: Vec<crate::api::models::TensorEntry>,
}

impl ModelFacts {
    pub fn details(&self, format: &str) -> ModelDetails {
        ModelDetails {
            parent_model: String::new(),
            format: format.to_owned(),
            family: self.architecture.clone(),
            families: Some(vec![self.architecture.clone()]),
            parameter_size: human_number(self.parameter_count),
            quantization_level: self.quantization_level.clone(),
        }
    }
}

/// Reads the facts of an MLX model directory. Never fails: missing pieces are left empty (the
/// directory was detected as loadable already).
pub fn read(layout: &MlxLayout, display_name: &str) -> ModelFacts {
    let dir = &layout.dir;
    let config = read_json(&dir.join("config.json")).unwrap_or(Value::Null);
    // Multimodal configs keep the language model's numbers in text_config.
    let text = config
        .get("text_config")
        .filter(|v| v.is_object())
        .unwrap_or(&config);
    let get = |k: &str| {
        text.get(k)
            .or_else(|| config.get(k))
            .and_then(Value::as_u64)
    };
    let architecture = architecture(&config);
    let quant = config.get("quantization").filter(|q| q.is_object());
    let bits = quant.and_then(|q| q.get("bits")).and_then(Value::as_u64);
    let (parameter_count, weight_dtype) = count_parameters(layout, bits);

    let mut info = Map::new();
    info.insert("general.architecture".into(), architecture.clone().into());
    info.insert("general.basename".into(), display_name.into());
    info.insert("general.parameter_count".into(), parameter_count.into());
    let keys = [
        ("context_length", "max_position_embeddings"),
        ("embedding_length", "hidden_size"),
        ("block_count", "num_hidden_layers"),
        ("attention.head_count", "num_attention_heads"),
        ("attention.head_count_kv", "num_key_value_heads"),
        ("feed_forward_length", "intermediate_size"),
        ("vocab_size", "vocab_size"),
    ];
    for (ollama, hf) in keys {
        if let Some(v) = get(hf) {
            info.insert(format!("{architecture}.{ollama}"), v.into());
        }
    }
    let template = chat_template(dir);
    let mut caps = capabilities(template.as_deref());
    if has_vision_config(&config) {
        caps.push("vision".into());
    }
    ModelFacts {
        quantization_level: quantization_level(&config, quant, bits, weight_dtype.as_deref()),
        context_length: get("max_position_embeddings"),
        embedding_length: get("hidden_size"),
        capabilities: caps,
        license: license(dir),
        parameters: generation_parameters(dir),
        architecture,
        parameter_count,
        model_info: info,
        template,
        tensors: Vec::new(),
    }
}

/// Reads the facts of a GGUF file, as Ollama fills them: `model_info` is every key/value except
/// `general.name` and the chat template (long arrays only when `verbose`).
pub fn read_gguf(path: &Path, verbose: bool, has_projector: bool) -> ModelFacts {
    let Ok(g) = super::gguf::read(path, verbose) else {
        return ModelFacts::default();
    };
    let architecture = g.architecture();
    let parameter_count = g.parameter_count();
    let mut info = g.kv.clone();
    info.remove("general.name");
    info.remove("tokenizer.chat_template");
    info.insert("general.parameter_count".into(), parameter_count.into());
    let template = g.str("tokenizer.chat_template").map(str::to_owned);
    let mut caps = if g.kv.contains_key(&format!("{architecture}.pooling_type")) {
        vec!["embedding".to_owned()]
    } else {
        capabilities(template.as_deref())
    };
    if has_projector {
        caps.push("vision".into());
    }
    ModelFacts {
        context_length: g.arch_u64("context_length"),
        embedding_length: g.arch_u64("embedding_length"),
        quantization_level: g.quantization_level(),
        architecture,
        parameter_count,
        model_info: info,
        template,
        capabilities: caps,
        license: None,
        parameters: Options::default(),
        tensors: g
            .tensors
            .iter()
            .map(|t| crate::api::models::TensorEntry {
                name: t.name.clone(),
                kind: super::gguf::ggml_type_name(t.ggml_type),
                shape: t.dims.clone(),
            })
            .collect(),
    }
}

/// Capabilities with an Ollama Go template in charge of the prompt, as Ollama derives them
/// (`tools` from `.Tools`, `insert` from `.Suffix`, `thinking` from inferable thinking tags);
/// `embedding` and `vision` come from the weights and stay.
pub fn go_template_capabilities(template: &str, from_weights: &[String]) -> Vec<String> {
    if from_weights.iter().any(|c| c == "embedding") {
        return from_weights.to_vec();
    }
    let mut caps = vec!["completion".to_owned()];
    let c = crate::template::prompt::parse(template)
        .map(|t| crate::template::prompt::capabilities(&t))
        .unwrap_or_default();
    for (has, cap) in [
        (c.tools, "tools"),
        (c.insert, "insert"),
        (c.thinking, "thinking"),
    ] {
        if has {
            caps.push(cap.into());
        }
    }
    if from_weights.iter().any(|c| c == "vision") {
        caps.push("vision".into());
    }
    caps
}

/// Whether an MLX `config.json` describes a vision tower (a `vision_config` object), which the
/// runner then serves with mlx-vlm.
pub fn has_vision_config(config: &Value) -> bool {
    config.get("vision_config").is_some_and(Value::is_object)
}

/// `model_type`, else `architectures[0]` lower-cased without its `ForCausalLM`-style suffix.
fn architecture(config: &Value) -> String {
    if let Some(t) = config.get("model_type").and_then(Value::as_str) {
        return t.to_owned();
    }
    let a = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    a.trim_end_matches("ForCausalLM")
        .trim_end_matches("ForConditionalGeneration")
        .to_lowercase()
}

/// Counts parameters from the headers. Quantized weights (packed `U32`) count as the elements
/// they unpack to; their `scales` and `biases` are not parameters. Also returns the dtype of the
/// first floating-point weight.
fn count_parameters(layout: &MlxLayout, bits: Option<u64>) -> (u64, Option<String>) {
    let mut total = 0u64;
    let mut dtype = None;
    for shard in &layout.shards {
        let Ok(h) = read_header(shard) else { continue };
        for t in &h.tensors {
            let quantized_aux =
                bits.is_some() && (t.name.ends_with(".scales") || t.name.ends_with(".biases"));
            if quantized_aux {
                continue;
            }
            // Saturating: the counts come from a file, and this runs before any integrity check.
            total = total.saturating_add(match (t.dtype.as_str(), bits) {
                ("U32", Some(b)) if b > 0 => t.elements().saturating_mul(32) / b,
                _ => t.elements(),
            });
            if t.dtype.starts_with('F') || t.dtype == "BF16" {
                dtype.get_or_insert_with(|| t.dtype.clone());
            }
        }
    }
    (total, dtype)
}

fn quantization_level(
    config: &Value,
    quant: Option<&Value>,
    bits: Option<u64>,
    weight_dtype: Option<&str>,
) -> String {
    if let Some(q) = quant {
        let mode = q.get("mode").and_then(Value::as_str).unwrap_or("affine");
        return match (mode, bits) {
            ("affine", Some(b)) => format!("Q{b}"),
            (m, _) => m.to_uppercase(),
        };
    }
    if let Some(m) = config
        .get("quantization_config")
        .and_then(|q| q.get("quant_method"))
        .and_then(Value::as_str)
    {
        return m.to_uppercase();
    }
    let dtype = config
        .get("torch_dtype")
        .or_else(|| config.get("dtype"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| weight_dtype.map(str::to_owned))
        .unwrap_or_default();
    match dtype.to_lowercase().as_str() {
        "float16" | "f16" => "F16".into(),
        "bfloat16" | "bf16" => "BF16".into(),
        "float32" | "f32" => "F32".into(),
        other => other.to_uppercase(),
    }
}

/// The chat template: `tokenizer_config.json` `chat_template` (a string, or a list of named
/// templates of which `default` wins), else `chat_template.jinja`, else `chat_template.json`.
pub fn chat_template(dir: &Path) -> Option<String> {
    if let Ok(tc) = read_json(&dir.join("tokenizer_config.json")) {
        match tc.get("chat_template") {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Array(list)) => {
                let named = |n: &str| {
                    list.iter()
                        .find(|t| t.get("name").and_then(Value::as_str) == Some(n))
                        .and_then(|t| t.get("template"))
                        .and_then(Value::as_str)
                };
                if let Some(t) = named("default").or_else(|| {
                    list.first()
                        .and_then(|t| t.get("template"))
                        .and_then(Value::as_str)
                }) {
                    return Some(t.to_owned());
                }
            }
            _ => {}
        }
    }
    if let Ok(t) = fs::read_to_string(dir.join("chat_template.jinja")) {
        return Some(t);
    }
    read_json(&dir.join("chat_template.json"))
        .ok()?
        .get("chat_template")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Ollama's capability vocabulary, derived from a Jinja template the way Ollama derives it.
pub fn capabilities(template: Option<&str>) -> Vec<String> {
    let mut caps = vec!["completion".to_owned()];
    if let Some(t) = template {
        // The same test the request path uses (crate::server::infer::TemplateTraits).
        if crate::output::ToolFormat::detect(t).is_some() {
            caps.push("tools".into());
        }
        if crate::output::think::jinja_tags(t).is_some() || crate::output::harmony::detect(t) {
            caps.push("thinking".into());
        }
    }
    caps
}

/// A `LICENSE` file, else the `license:` of the model card's front matter.
fn license(dir: &Path) -> Option<String> {
    for name in ["LICENSE", "LICENSE.md", "LICENSE.txt", "license.txt"] {
        if let Ok(t) = fs::read_to_string(dir.join(name)) {
            return Some(t);
        }
    }
    let readme = fs::read_to_string(dir.join("README.md")).ok()?;
    let front = readme.strip_prefix("---")?.split("\n---").next()?;
    front
        .lines()
        .find_map(|l| l.strip_prefix("license:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The sampling parameters a model's authors recommend, in Ollama's option names.
pub fn generation_parameters(dir: &Path) -> Options {
    let Ok(g) = read_json(&dir.join("generation_config.json")) else {
        return Options::default();
    };
    let f = |k: &str| g.get(k).and_then(Value::as_f64);
    Options {
        temperature: f("temperature"),
        top_p: f("top_p"),
        top_k: g.get("top_k").and_then(Value::as_i64),
        min_p: f("min_p"),
        repeat_penalty: f("repetition_penalty"),
        ..Options::default()
    }
}

/// Ollama's `format.HumanNumber`: `8B`, `3.2B`, `137M`, `22.71M`, `12K`.
pub fn human_number(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        let v = f / 1e9;
        if v == v.floor() {
            format!("{v:.0}B")
        } else {
            format!("{v:.1}B")
        }
    } else if n >= 1_000_000 {
        let v = f / 1e6;
        if v == v.floor() {
            format!("{v:.0}M")
        } else {
            format!("{v:.2}M")
        }
    } else if n >= 1_000 {
        format!("{:.0}K", f / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::safetensors::tests::write_safetensors;

    #[test]
    fn human_numbers_like_ollama() {
        assert_eq!(human_number(8_000_000_000), "8B");
        assert_eq!(human_number(3_212_749_824), "3.2B");
        assert_eq!(human_number(137_000_000), "137M");
        assert_eq!(human_number(22_713_216), "22.71M");
        assert_eq!(human_number(12_345), "12K");
        assert_eq!(human_number(999), "999");
    }

    #[test]
    fn maps_config_like_ollama() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"model_type":"llama","max_position_embeddings":2048,"hidden_size":128,
                "num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,
                "intermediate_size":384,"vocab_size":2048,
                "quantization":{"group_size":64,"bits":4}}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("tokenizer_config.json"),
            r#"{"chat_template":"{% for m in messages %}{{m.content}}{% endfor %}{% if tools %}{% endif %}"}"#,
        )
        .unwrap();
        let shard = d.path().join("model.safetensors");
        write_safetensors(
            &shard,
            &[
                ("l.weight", "U32", vec![128, 16]), // 128*16*32/4 = 16384 params
                ("l.scales", "F16", vec![128, 2]),
                ("l.biases", "F16", vec![128, 2]),
                ("norm.weight", "F16", vec![128]),
            ],
        );
        let layout = MlxLayout {
            dir: d.path().into(),
            index: None,
            shards: vec![shard],
        };
        let f = read(&layout, "org/m");
        assert_eq!(f.architecture, "llama");
        assert_eq!(f.parameter_count, 16384 + 128);
        assert_eq!(f.quantization_level, "Q4");
        assert_eq!(f.model_info["llama.context_length"], 2048);
        assert_eq!(f.model_info["llama.attention.head_count_kv"], 2);
        assert_eq!(f.model_info["general.parameter_count"], 16512);
        assert_eq!(f.capabilities, vec!["completion", "tools"]);
        assert_eq!(f.details("safetensors").parameter_size, "17K");
    }

    #[test]
    fn template_sources_in_order() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(chat_template(d.path()), None);
        std::fs::write(
            d.path().join("chat_template.json"),
            r#"{"chat_template":"C"}"#,
        )
        .unwrap();
        assert_eq!(chat_template(d.path()).as_deref(), Some("C"));
        std::fs::write(d.path().join("chat_template.jinja"), "B").unwrap();
        assert_eq!(chat_template(d.path()).as_deref(), Some("B"));
        std::fs::write(
            d.path().join("tokenizer_config.json"),
            r#"{"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"A"}]}"#,
        )
        .unwrap();
        assert_eq!(chat_template(d.path()).as_deref(), Some("A"));
    }
}
