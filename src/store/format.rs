//! What kind of model a path holds: a GGUF file (magic bytes), an MLX-loadable safetensors
//! directory, or neither (with the reason). Detection is cheap (no weights are read): it is run on
//! every listing. The deeper checks that read headers live in `integrity.rs`.

use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A model directory `mlx_lm.load` can load.
#[derive(Debug, Clone, PartialEq)]
pub struct MlxLayout {
    pub dir: PathBuf,
    /// `model.safetensors.index.json`, when the weights are indexed (sharded or MLX-converted).
    pub index: Option<PathBuf>,
    /// Every weight file, sorted.
    pub shards: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Mlx(MlxLayout),
    Gguf(PathBuf),
}

impl Format {
    /// The Ollama `details.format` value.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Mlx(_) => "safetensors",
            Format::Gguf(_) => "gguf",
        }
    }
}

/// Why a path is not a model this server can load. The text is shown to users as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NotLoadable(pub String);

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Detects the format of a file or directory.
pub fn detect(path: &Path) -> Result<Format, NotLoadable> {
    if path.is_file() {
        return if is_gguf(path) {
            Ok(Format::Gguf(path.to_owned()))
        } else {
            Err(NotLoadable(format!(
                "{} is not a GGUF file",
                path.display()
            )))
        };
    }
    if !path.is_dir() {
        return Err(NotLoadable(format!("{} does not exist", path.display())));
    }
    let files = list_files(path);
    let has = |pred: &dyn Fn(&str) -> bool| files.iter().any(|f| pred(f));
    let config = path.join("config.json");
    if !config.is_file() {
        if let Some(g) = files.iter().find(|f| f.ends_with(".gguf")) {
            return Ok(Format::Gguf(path.join(g)));
        }
        return Err(NotLoadable(format!(
            "{} has no config.json",
            path.display()
        )));
    }
    let index = path.join("model.safetensors.index.json");
    let shards: Vec<PathBuf> = if index.is_file() {
        indexed_shards(&index)?
            .into_iter()
            .map(|s| path.join(s))
            .collect()
    } else {
        let mut s: Vec<PathBuf> = files
            .iter()
            .filter(|f| f.starts_with("model") && f.ends_with(".safetensors"))
            .map(|f| path.join(f))
            .collect();
        s.sort();
        s
    };
    if shards.is_empty() {
        let why = if has(&|f| f.starts_with("pytorch_model") && f.ends_with(".bin")) {
            "has only PyTorch .bin weights; MLX needs safetensors (convert it with `mlx_lm.convert`)"
        } else if has(&|f| f == "consolidated.safetensors") {
            "has only consolidated.safetensors (Mistral's native layout), which mlx_lm does not load"
        } else if has(&|f| f.ends_with(".gguf")) {
            if let Some(g) = files.iter().find(|f| f.ends_with(".gguf")) {
                return Ok(Format::Gguf(path.join(g)));
            }
            unreachable!()
        } else {
            "has no model*.safetensors weights"
        };
        return Err(NotLoadable(format!("{} {why}", path.display())));
    }
    if let Some(missing) = shards.iter().find(|s| !s.is_file()) {
        return Err(NotLoadable(format!(
            "incomplete download: {} is listed in model.safetensors.index.json but missing",
            missing.display()
        )));
    }
    match read_json(&config) {
        Ok(cfg) if cfg.get("model_type").and_then(Value::as_str).is_some() => {}
        Ok(_) => {
            return Err(NotLoadable(format!(
                "{} has no model_type",
                config.display()
            )))
        }
        Err(e) => {
            return Err(NotLoadable(format!(
                "{} is not valid JSON: {e}",
                config.display()
            )))
        }
    }
    Ok(Format::Mlx(MlxLayout {
        dir: path.to_owned(),
        index: index.is_file().then_some(index),
        shards,
    }))
}

/// True when the file starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == GGUF_MAGIC
}

fn indexed_shards(index: &Path) -> Result<Vec<String>, NotLoadable> {
    let v = read_json(index)
        .map_err(|e| NotLoadable(format!("{} is not valid JSON: {e}", index.display())))?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| NotLoadable(format!("{} has no weight_map", index.display())))?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    shards.sort();
    shards.dedup();
    // Shard names come from a file on disk: keep them inside the model directory.
    if let Some(bad) = shards
        .iter()
        .find(|s| s.contains('/') || s.contains('\\') || s.starts_with('.'))
    {
        return Err(NotLoadable(format!(
            "{} names an invalid shard {bad:?}",
            index.display()
        )));
    }
    Ok(shards)
}

pub(crate) fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn list_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &[u8]) {
        fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn gguf_by_magic() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "m.gguf", b"GGUF\x03\x00\x00\x00");
        write(d.path(), "x.bin", b"nope");
        assert_eq!(
            detect(&d.path().join("m.gguf")),
            Ok(Format::Gguf(d.path().join("m.gguf")))
        );
        assert!(detect(&d.path().join("x.bin")).is_err());
        // a GGUF repo directory (no config.json) is detected as GGUF too
        assert!(matches!(detect(d.path()), Ok(Format::Gguf(_))));
    }

    #[test]
    fn mlx_directory() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "config.json", br#"{"model_type":"llama"}"#);
        write(d.path(), "model.safetensors", b"x");
        match detect(d.path()) {
            Ok(Format::Mlx(l)) => assert_eq!(l.shards, vec![d.path().join("model.safetensors")]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sharded_with_missing_shard_is_incomplete() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "config.json", br#"{"model_type":"llama"}"#);
        write(
            d.path(),
            "model.safetensors.index.json",
            br#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
        );
        write(d.path(), "model-00001-of-00002.safetensors", b"x");
        let e = detect(d.path()).unwrap_err();
        assert!(e.0.contains("incomplete download"), "{e}");
        assert!(e.0.contains("model-00002-of-00002.safetensors"), "{e}");
    }

    #[test]
    fn reasons_for_unloadable_directories() {
        let d = tempfile::tempdir().unwrap();
        assert!(detect(d.path()).unwrap_err().0.contains("no config.json"));
        write(d.path(), "config.json", br#"{"model_type":"llama"}"#);
        write(d.path(), "pytorch_model.bin", b"x");
        assert!(detect(d.path()).unwrap_err().0.contains("PyTorch .bin"));
        write(d.path(), "model.safetensors", b"x");
        write(d.path(), "config.json", br#"{"architectures":["X"]}"#);
        assert!(detect(d.path()).unwrap_err().0.contains("no model_type"));
        write(d.path(), "config.json", b"{not json");
        assert!(detect(d.path()).unwrap_err().0.contains("not valid JSON"));
    }

    #[test]
    fn index_cannot_escape_the_directory() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "config.json", br#"{"model_type":"llama"}"#);
        write(
            d.path(),
            "model.safetensors.index.json",
            br#"{"weight_map":{"a":"../../etc/passwd"}}"#,
        );
        assert!(detect(d.path()).unwrap_err().0.contains("invalid shard"));
    }
}
