//! The model store: finds models on disk, says what format they are, checks their integrity and
//! deletes them. It knows nothing of HTTP or runners.
//!
//! Today the one source is the Hugging Face hub cache (MLX models); Ollama's own store joins as a
//! second [`Source`] with the llama.cpp runner.

pub mod facts;
pub mod format;
pub mod hf;
pub mod integrity;
pub mod name;
pub mod safetensors;

use format::{Format, NotLoadable};
use hf::HfEntry;
use name::ModelName;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use facts::ModelFacts;
pub use integrity::Corrupt;

/// Where a model's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    HfCache(HfEntry),
}

/// A model found on disk and known to be loadable (its format was detected).
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The canonical name, shown by `/api/tags` and `/api/ps`.
    pub name: ModelName,
    pub format: Format,
    pub source: Source,
    pub size: u64,
    /// A stable 64-hex id: it changes exactly when the files change (a new revision).
    pub digest: String,
    pub modified: SystemTime,
}

impl LocalModel {
    /// Identifies the loaded files: the scheduler keeps one runner per key.
    pub fn key(&self) -> PathBuf {
        self.path().to_owned()
    }

    /// The model's directory (MLX) or file (GGUF).
    pub fn path(&self) -> &Path {
        match &self.format {
            Format::Mlx(l) => &l.dir,
            Format::Gguf(p) => p,
        }
    }

    /// Reads what the files say about the model (config, template, licence...).
    pub fn facts(&self) -> ModelFacts {
        match &self.format {
            Format::Mlx(l) => facts::read(l, &self.name.display_shortest()),
            Format::Gguf(_) => ModelFacts::default(),
        }
    }

    /// The integrity check that must pass before a runner is started.
    pub fn check(&self) -> Result<(), Corrupt> {
        match &self.format {
            Format::Mlx(l) => integrity::check(l),
            Format::Gguf(_) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid model name")]
    InvalidName,
    /// Carries the name as the client wrote it.
    #[error("model '{0}' not found")]
    NotFound(String),
    #[error("{name} cannot be loaded: {reason}")]
    NotLoadable { name: String, reason: String },
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct Store {
    hf_cache: PathBuf,
}

impl Store {
    pub fn new(hf_cache: PathBuf) -> Store {
        Store { hf_cache }
    }

    /// Every loadable model, newest first.
    pub fn list(&self) -> Vec<LocalModel> {
        let mut models: Vec<LocalModel> = hf::scan(&self.hf_cache)
            .into_iter()
            .filter_map(|e| to_model(e).ok())
            .collect();
        models.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| a.name.display_shortest().cmp(&b.name.display_shortest()))
        });
        models
    }

    /// Finds a model by any name `/api/tags` shows, or its bare repo id. A model that exists but
    /// cannot be loaded is an error that says why.
    pub fn find(&self, raw: &str) -> Result<LocalModel, StoreError> {
        let name = ModelName::parse(raw).map_err(|_| StoreError::InvalidName)?;
        if !name.is_hf_addressable() {
            return Err(StoreError::NotFound(raw.to_owned()));
        }
        let entry = hf::scan(&self.hf_cache)
            .into_iter()
            .find(|e| e.name().is_some_and(|n| hf_matches(&n, &name)))
            .ok_or_else(|| StoreError::NotFound(raw.to_owned()))?;
        to_model(entry).map_err(|NotLoadable(reason)| StoreError::NotLoadable {
            name: raw.to_owned(),
            reason,
        })
    }

    /// Deletes a model's files completely.
    pub fn delete(&self, model: &LocalModel) -> Result<(), StoreError> {
        match &model.source {
            Source::HfCache(e) => hf::delete(e)?,
        }
        Ok(())
    }
}

/// An HF entry matches a requested name on org, repo and tag, ignoring case and the host (a bare
/// `org/repo` and `hf.co/org/repo` are the same model).
fn hf_matches(entry: &ModelName, want: &ModelName) -> bool {
    entry.namespace.eq_ignore_ascii_case(&want.namespace)
        && entry.model.eq_ignore_ascii_case(&want.model)
        && entry.tag.eq_ignore_ascii_case(&want.tag)
}

fn to_model(entry: HfEntry) -> Result<LocalModel, NotLoadable> {
    let name = entry
        .name()
        .ok_or_else(|| NotLoadable(format!("{} is not a valid model name", entry.repo_id)))?;
    let format = format::detect(&entry.snapshot)?;
    if let Format::Gguf(_) = format {
        return Err(NotLoadable(
            "it is a GGUF model; GGUF support comes with the llama.cpp runner".into(),
        ));
    }
    let digest = hex::encode(Sha256::digest(format!(
        "{}@{}",
        entry.repo_id, entry.revision
    )));
    Ok(LocalModel {
        size: hf::snapshot_size(&entry.snapshot),
        modified: entry.modified,
        name,
        format,
        digest,
        source: Source::HfCache(entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hf::tests::make_repo;

    #[test]
    fn finds_by_every_spelling_and_lists_only_loadable() {
        let d = tempfile::tempdir().unwrap();
        make_repo(
            d.path(),
            "mlx-community/Tiny-4bit",
            "r1",
            &[
                ("config.json", br#"{"model_type":"llama"}"#),
                ("model.safetensors", b"x"),
            ],
        );
        make_repo(
            d.path(),
            "org/bin-only",
            "r2",
            &[("config.json", b"{}"), ("pytorch_model.bin", b"x")],
        );
        let store = Store::new(d.path().into());
        let names: Vec<String> = store
            .list()
            .iter()
            .map(|m| m.name.display_shortest())
            .collect();
        assert_eq!(names, vec!["mlx-community/Tiny-4bit:latest"]);
        for spelling in [
            "mlx-community/Tiny-4bit",
            "mlx-community/Tiny-4bit:latest",
            "MLX-Community/tiny-4bit",
            "hf.co/mlx-community/Tiny-4bit",
        ] {
            assert!(store.find(spelling).is_ok(), "{spelling}");
        }
        assert!(matches!(
            store.find("mlx-community/Tiny-4bit:other"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(store.find("llama3"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.find("bad name"),
            Err(StoreError::InvalidName)
        ));
        match store.find("org/bin-only") {
            Err(StoreError::NotLoadable { reason, .. }) => assert!(reason.contains(".bin")),
            other => panic!("{other:?}"),
        }
        let m = store.find("mlx-community/Tiny-4bit").unwrap();
        assert_eq!(m.digest.len(), 64);
    }
}
