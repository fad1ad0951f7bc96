//! Integrity of an MLX model directory, checked before any runner is started: `config.json`
//! parses, every shard exists, every safetensors header parses, and every file is exactly as long
//! as its header says. A failure names the file, so a user knows what to re-download.

use super::format::{read_json, MlxLayout};
use super::safetensors::read_header;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model file {file} is corrupt or incomplete: {reason}")]
pub struct Corrupt {
    pub file: PathBuf,
    pub reason: String,
}

/// Checks every file of an MLX layout. Reads only headers and file sizes.
pub fn check(layout: &MlxLayout) -> Result<(), Corrupt> {
    let config = layout.dir.join("config.json");
    match read_json(&config) {
        Ok(v) if v.is_object() => {}
        Ok(_) => return Err(corrupt(config, "not a JSON object".into())),
        Err(e) => return Err(corrupt(config, format!("not valid JSON: {e}"))),
    }
    if let Some(index) = &layout.index {
        read_json(index).map_err(|e| corrupt(index.clone(), format!("not valid JSON: {e}")))?;
    }
    for shard in &layout.shards {
        let header = read_header(shard).map_err(|r| corrupt(shard.clone(), r))?;
        let actual = std::fs::metadata(shard)
            .map_err(|e| corrupt(shard.clone(), e.to_string()))?
            .len();
        let expected = header.expected_file_size();
        if actual != expected {
            return Err(corrupt(
                shard.clone(),
                format!("expected {expected} bytes from its header, found {actual}"),
            ));
        }
    }
    Ok(())
}

fn corrupt(file: PathBuf, reason: String) -> Corrupt {
    Corrupt { file, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{detect, Format};
    use crate::store::safetensors::tests::write_safetensors;

    fn layout(dir: &std::path::Path) -> MlxLayout {
        match detect(dir).unwrap() {
            Format::Mlx(l) => l,
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn good_then_truncated() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.json"), br#"{"model_type":"llama"}"#).unwrap();
        let shard = d.path().join("model.safetensors");
        write_safetensors(&shard, &[("w", "F16", vec![64, 64])]);
        assert_eq!(check(&layout(d.path())), Ok(()));

        let bytes = std::fs::read(&shard).unwrap();
        std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
        let e = check(&layout(d.path())).unwrap_err();
        assert_eq!(e.file, shard);
        assert!(e.to_string().contains("found"), "{e}");
    }
}
