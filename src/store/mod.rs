//! The model store: finds models on disk, says what format they are, checks their integrity and
//! deletes them. It knows nothing of HTTP or runners.
//!
//! Today the one source is the Hugging Face hub cache (MLX models); Ollama's own store joins as a
//! second [`Source`] with the llama.cpp runner.

pub mod blob_writer;
pub mod facts;
pub mod format;
pub mod gguf;
pub mod gojson;
pub mod hf;
pub mod integrity;
pub mod manifest;
pub mod memo;
pub mod name;
pub mod ollama;
pub mod safetensors;

use crate::api::{Message, Options};
use format::{Format, NotLoadable};
use hf::HfEntry;
use manifest::Manifest;
use name::ModelName;
use ollama::{BlobDigest, OllamaStore};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use facts::ModelFacts;
pub use integrity::Corrupt;

/// Where a model's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A snapshot in the Hugging Face hub cache.
    HfCache(HfEntry),
    /// A manifest in Ollama's store (`OLLAMA_MODELS`).
    Ollama {
        manifest_path: PathBuf,
        manifest: Manifest,
    },
}

/// What a model adds on top of its weights: Ollama's TEMPLATE, SYSTEM, PARAMETER, MESSAGE,
/// LICENSE, ADAPTER and projector layers (for a Hugging Face model: its recommended sampling).
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// An Ollama Go template. `None`: the model's own (Jinja) chat template is used.
    pub template: Option<String>,
    pub system: Option<String>,
    pub params: Options,
    pub messages: Vec<Message>,
    pub license: Option<String>,
    pub adapters: Vec<PathBuf>,
    pub projector: Option<PathBuf>,
}

/// A model found on disk and known to be loadable (its format was detected).
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The canonical name, shown by `/api/tags` and `/api/ps`.
    pub name: ModelName,
    pub format: Format,
    pub source: Source,
    pub config: ModelConfig,
    pub size: u64,
    /// A stable 64-hex id: the SHA-256 of the manifest (Ollama models) or of `repo@revision`
    /// (Hugging Face models), so it changes exactly when the files change.
    pub digest: String,
    pub modified: SystemTime,
}

impl LocalModel {
    /// Identifies the loaded weights: the scheduler keeps one runner per key.
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

    /// Reads what the files say about the model, with the model's own layers applied.
    pub fn facts(&self, verbose: bool) -> ModelFacts {
        let mut f = match &self.format {
            Format::Mlx(l) => self.mlx_facts(l),
            Format::Gguf(p) => facts::read_gguf(p, verbose, self.config.projector.is_some()),
        };
        if let Some(t) = &self.config.template {
            f.capabilities = facts::go_template_capabilities(t, &f.capabilities);
            f.template = Some(t.clone());
        }
        if self.config.license.is_some() {
            f.license = self.config.license.clone();
        }
        f.parameters = self.config.params.clone().or(&f.parameters);
        f
    }

    /// An MLX model's facts, read from its files (config, templates, every safetensors header)
    /// once per change of them.
    fn mlx_facts(&self, layout: &format::MlxLayout) -> ModelFacts {
        static FACTS: std::sync::LazyLock<memo::Memo<ModelFacts>> =
            std::sync::LazyLock::new(memo::Memo::default);
        let name = self.name.display_shortest();
        let mut f = match self.identity() {
            Some(id) => FACTS.get_or(&layout.dir, id, || facts::read(layout, "")),
            None => facts::read(layout, ""),
        };
        f.model_info.insert("general.basename".into(), name.into());
        f
    }

    /// Whether the model reads images: a GGUF with a vision projector (llama-server loads it with
    /// `--mmproj`), or an MLX model whose `config.json` has a `vision_config` (the runner serves
    /// it with mlx-vlm). `/api/show` lists `vision` exactly for these models.
    pub fn has_vision(&self) -> bool {
        match self.format {
            Format::Gguf(_) => self.config.projector.is_some(),
            Format::Mlx(_) => self.header().vision,
        }
    }

    /// The context length the model was trained for and whether it only embeds, read cheaply
    /// (config.json, or the GGUF header without its arrays) for every request.
    pub fn limits(&self) -> (Option<u64>, bool) {
        let h = self.header();
        (h.context_length, h.embedding_only)
    }

    /// The template that turns messages into the prompt: the Ollama TEMPLATE layer (Go) when the
    /// model has one, else the model's own Jinja chat template.
    pub fn prompt_template(&self) -> Option<std::sync::Arc<str>> {
        match &self.config.template {
            Some(t) => Some(t.as_str().into()),
            None => self.header().chat_template,
        }
    }

    /// What every request needs to know from the model's files. Asked on every request, so it is
    /// remembered by the files' identity (a GGUF header with a 150k-token vocabulary takes
    /// milliseconds to walk).
    fn header(&self) -> Header {
        static HEADERS: std::sync::LazyLock<memo::Memo<Header>> =
            std::sync::LazyLock::new(memo::Memo::default);
        let path = self.path();
        match self.identity() {
            Some(id) => HEADERS.get_or(path, id, || self.read_header()),
            None => self.read_header(),
        }
    }

    /// The identity of the model's files: its snapshot directory's entries (MLX) or its file.
    fn identity(&self) -> Option<memo::Identity> {
        match &self.format {
            Format::Mlx(l) => memo::dir_identity(&l.dir).ok(),
            Format::Gguf(p) => memo::file_identity(p).ok(),
        }
    }

    fn read_header(&self) -> Header {
        match &self.format {
            Format::Mlx(l) => {
                let cfg = format::read_json(&l.dir.join("config.json")).unwrap_or(Value::Null);
                let text = cfg
                    .get("text_config")
                    .filter(|v| v.is_object())
                    .unwrap_or(&cfg);
                let ctx = text
                    .get("max_position_embeddings")
                    .or_else(|| cfg.get("max_position_embeddings"))
                    .and_then(Value::as_u64);
                Header {
                    context_length: ctx,
                    embedding_only: false,
                    chat_template: facts::chat_template(&l.dir).map(Into::into),
                    vision: facts::has_vision_config(&cfg),
                }
            }
            Format::Gguf(p) => match gguf::read(p, false) {
                Ok(g) => Header {
                    context_length: g.arch_u64("context_length"),
                    embedding_only: g
                        .kv
                        .contains_key(&format!("{}.pooling_type", g.architecture())),
                    chat_template: g.str("tokenizer.chat_template").map(Into::into),
                    vision: false,
                },
                Err(_) => Header::default(),
            },
        }
    }

    /// The integrity check that must pass before a runner is started.
    pub fn check(&self) -> Result<(), Corrupt> {
        match &self.format {
            Format::Mlx(l) => integrity::check(l),
            Format::Gguf(p) => gguf::read(p, false).map(|_| ()).map_err(|e| Corrupt {
                file: p.clone(),
                reason: e.0,
            }),
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

/// The per-request facts of a model file (see [`LocalModel::header`]).
#[derive(Debug, Clone, Default)]
struct Header {
    context_length: Option<u64>,
    embedding_only: bool,
    chat_template: Option<std::sync::Arc<str>>,
    /// MLX only: `config.json` describes a vision tower.
    vision: bool,
}

pub struct Store {
    hf_cache: PathBuf,
    pub ollama: OllamaStore,
}

impl Store {
    pub fn new(hf_cache: PathBuf, ollama_models: PathBuf) -> Store {
        Store {
            hf_cache,
            ollama: OllamaStore::new(ollama_models),
        }
    }

    /// Every loadable model of both stores, newest first.
    pub fn list(&self) -> Vec<LocalModel> {
        let ollama = self
            .ollama
            .scan()
            .into_iter()
            .filter_map(|(n, p)| self.ollama_model(n, p).ok());
        let hf = hf::scan(&self.hf_cache)
            .into_iter()
            .filter_map(|e| hf_model(e).ok());
        let mut models: Vec<LocalModel> = ollama.chain(hf).collect();
        models.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| a.name.display_shortest().cmp(&b.name.display_shortest()))
        });
        models
    }

    /// Removes the temporary files killed ollmlx processes left (blobs, manifests, hub refs).
    pub fn remove_stale_temps(&self) -> usize {
        self.ollama.remove_stale_temps() + hf::remove_stale_temps(&self.hf_cache)
    }

    /// Finds a model by any name `/api/tags` shows, or a bare repo id. Ollama's store is
    /// looked in first. A model that exists but cannot be loaded is an error that says why.
    pub fn find(&self, raw: &str) -> Result<LocalModel, StoreError> {
        let name = ModelName::parse(raw).map_err(|_| StoreError::InvalidName)?;
        let not_loadable = |NotLoadable(reason)| StoreError::NotLoadable {
            name: raw.to_owned(),
            reason,
        };
        if let Some((stored, path)) = self.ollama.find(&name) {
            return self.ollama_model(stored, path).map_err(not_loadable);
        }
        if !name.is_hf_addressable() {
            return Err(StoreError::NotFound(raw.to_owned()));
        }
        // The exact spelling is one directory away; other casings need a scan of the cache.
        let exact = hf::repo_dir(
            &self.hf_cache,
            &format!("{}/{}", name.namespace, name.model),
        );
        let candidates = if exact.is_dir() {
            hf::scan_repo(&exact)
        } else {
            hf::scan(&self.hf_cache)
        };
        let entry = candidates
            .into_iter()
            .find(|e| e.name().is_some_and(|n| hf_matches(&n, &name)))
            .ok_or_else(|| StoreError::NotFound(raw.to_owned()))?;
        hf_model(entry).map_err(not_loadable)
    }

    /// Deletes a model: its manifest and unshared blobs, or its Hugging Face snapshot.
    pub fn delete(&self, model: &LocalModel) -> Result<(), StoreError> {
        match &model.source {
            Source::HfCache(e) => hf::delete(e)?,
            Source::Ollama { manifest_path, .. } => self.ollama.delete(manifest_path)?,
        }
        Ok(())
    }

    /// The Hugging Face snapshot an `hf.reference` layer names. The layer may have come from a
    /// registry: a repo id or revision that is not a plain name (an absolute path, `..`) is
    /// refused, never joined, so a manifest cannot point a model at any other directory.
    fn hf_snapshot(&self, repo_id: &str, revision: &str) -> Result<PathBuf, NotLoadable> {
        if !hf::is_repo_id(repo_id) || !hf::is_revision(revision) {
            return Err(NotLoadable(
                "its Hugging Face reference is invalid: it must name a repo id and a commit, not a path"
                    .into(),
            ));
        }
        Ok(hf::repo_dir(&self.hf_cache, repo_id)
            .join("snapshots")
            .join(revision))
    }

    fn ollama_model(&self, name: ModelName, path: PathBuf) -> Result<LocalModel, NotLoadable> {
        let bytes = std::fs::read(&path).map_err(|e| NotLoadable(e.to_string()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            NotLoadable(format!("its manifest {} is not valid: {e}", path.display()))
        })?;
        let blob = |digest: &str| {
            BlobDigest::parse(digest)
                .ok()
                .map(|d| self.ollama.blob_path(&d))
        };
        let format = if let Some(l) = manifest.layer(manifest::MEDIA_MODEL) {
            let p = blob(&l.digest).filter(|p| p.is_file()).ok_or_else(|| {
                NotLoadable(format!(
                    "incomplete: its model blob {} is missing",
                    l.digest
                ))
            })?;
            if !format::is_gguf(&p) {
                return Err(NotLoadable(format!(
                    "its model blob {} is not a GGUF file",
                    l.digest
                )));
            }
            Format::Gguf(p)
        } else if let Some(l) = manifest.layer(manifest::MEDIA_HF_REF) {
            let r: Value = self
                .ollama
                .read_text(&l.digest)
                .and_then(|t| serde_json::from_str(&t).ok())
                .ok_or_else(|| NotLoadable("its Hugging Face reference is unreadable".into()))?;
            let (repo, rev) = (
                r["repo_id"].as_str().unwrap_or(""),
                r["revision"].as_str().unwrap_or(""),
            );
            let snap = self.hf_snapshot(repo, rev)?;
            match format::detect(&snap) {
                Ok(f @ Format::Mlx(_)) => f,
                _ => {
                    return Err(NotLoadable(format!(
                        "it is based on {repo}@{rev}, which is no longer in the Hugging Face cache"
                    )))
                }
            }
        } else {
            return Err(NotLoadable("its manifest has no model layer (Ollama's own safetensors packaging is not supported)".into()));
        };
        let text = |mt: &str| {
            manifest
                .layer(mt)
                .and_then(|l| self.ollama.read_text(&l.digest))
        };
        let params = text(manifest::MEDIA_PARAMS)
            .and_then(|t| serde_json::from_str::<serde_json::Map<String, Value>>(&t).ok())
            .and_then(|m| Options::from_map(&m).ok())
            .map(|(o, _)| o)
            .unwrap_or_default();
        let licenses: Vec<String> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == manifest::MEDIA_LICENSE)
            .filter_map(|l| self.ollama.read_text(&l.digest))
            .collect();
        let config = ModelConfig {
            template: text(manifest::MEDIA_TEMPLATE),
            system: text(manifest::MEDIA_SYSTEM),
            params,
            messages: text(manifest::MEDIA_MESSAGES)
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            license: (!licenses.is_empty()).then(|| licenses.join("\n")),
            adapters: manifest
                .layers
                .iter()
                .filter(|l| l.media_type == manifest::MEDIA_ADAPTER)
                .filter_map(|l| blob(&l.digest))
                .collect(),
            projector: manifest
                .layer(manifest::MEDIA_PROJECTOR)
                .and_then(|l| blob(&l.digest)),
        };
        Ok(LocalModel {
            name,
            format,
            size: manifest.total_size(),
            digest: hex::encode(Sha256::digest(&bytes)),
            modified: std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            source: Source::Ollama {
                manifest_path: path,
                manifest,
            },
            config,
        })
    }
}

/// An HF entry matches a requested name on org, repo and tag, ignoring case and the host (a bare
/// `org/repo` and `hf.co/org/repo` are the same model).
fn hf_matches(entry: &ModelName, want: &ModelName) -> bool {
    entry.namespace.eq_ignore_ascii_case(&want.namespace)
        && entry.model.eq_ignore_ascii_case(&want.model)
        && entry.tag.eq_ignore_ascii_case(&want.tag)
}

fn hf_model(entry: HfEntry) -> Result<LocalModel, NotLoadable> {
    let name = entry
        .name()
        .ok_or_else(|| NotLoadable(format!("{} is not a valid model name", entry.repo_id)))?;
    let snapshot = snapshot_facts(&entry.snapshot)?;
    if let Format::Gguf(_) = snapshot.format {
        return Err(NotLoadable(
            "it is a GGUF repository; create an Ollama model from its file with `ollmlx create`"
                .into(),
        ));
    }
    let digest = hex::encode(Sha256::digest(format!(
        "{}@{}",
        entry.repo_id, entry.revision
    )));
    Ok(LocalModel {
        size: snapshot.size,
        modified: entry.modified,
        config: ModelConfig {
            params: snapshot.params,
            ..ModelConfig::default()
        },
        name,
        format: snapshot.format,
        digest,
        source: Source::HfCache(entry),
    })
}

/// What listing a Hugging Face snapshot reads from its files: its format (the safetensors
/// index included), its size and its generation config.
#[derive(Clone)]
struct SnapshotFacts {
    format: Format,
    size: u64,
    params: Options,
}

/// [`SnapshotFacts`], read once per change of the snapshot's files (see `memo`).
fn snapshot_facts(dir: &Path) -> Result<SnapshotFacts, NotLoadable> {
    static SNAPSHOTS: std::sync::LazyLock<memo::Memo<SnapshotFacts>> =
        std::sync::LazyLock::new(memo::Memo::default);
    let read = || {
        Ok(SnapshotFacts {
            format: format::detect(dir)?,
            size: hf::snapshot_size(dir),
            params: facts::generation_parameters(dir),
        })
    };
    match memo::dir_identity(dir) {
        Ok(id) => SNAPSHOTS.get_or_try(dir, id, read),
        Err(_) => read(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        let store = Store::new(d.path().into(), d.path().join("ollama"));
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

    /// An Ollama manifest whose only model layer is an `hf.reference` blob with `reference`.
    pub(crate) fn hf_reference_model(models: &Path, name: &str, reference: &Value) {
        let store = OllamaStore::new(models.to_path_buf());
        let bytes = reference.to_string().into_bytes();
        let layer = |d: &BlobDigest, media: &str, size: usize| manifest::Layer {
            media_type: media.into(),
            digest: d.as_str().into(),
            size: size as u64,
            from: None,
            name: None,
        };
        let r = store.write_blob(&bytes).unwrap();
        let c = store.write_blob(b"{}").unwrap();
        let m = Manifest::new(
            layer(&c, manifest::CONFIG_MEDIA_TYPE, 2),
            vec![layer(&r, manifest::MEDIA_HF_REF, bytes.len())],
        );
        store
            .write_manifest(&ModelName::parse(name).unwrap(), &m)
            .unwrap();
    }

    #[test]
    fn hf_references_cannot_name_directories_outside_the_cache() {
        let d = tempfile::tempdir().unwrap();
        let (hub, elsewhere) = (d.path().join("hub"), d.path().join("elsewhere"));
        make_repo(
            &hub,
            "org/real",
            "abc123",
            &[
                ("config.json", br#"{"model_type":"llama"}"#),
                ("model.safetensors", b"x"),
            ],
        );
        // A loadable MLX directory the reference must never reach.
        make_repo(
            &elsewhere,
            "org/secret",
            "r1",
            &[
                ("config.json", br#"{"model_type":"llama"}"#),
                ("model.safetensors", b"x"),
            ],
        );
        let secret = elsewhere.join("models--org--secret/snapshots/r1");
        let models = d.path().join("models");
        let store = Store::new(hub.clone(), models.clone());
        let bad = [
            (
                "abs",
                serde_json::json!({"repo_id": "org/real", "revision": secret.to_str().unwrap()}),
            ),
            (
                "up",
                serde_json::json!({"repo_id": "org/real", "revision": "../../models--org--real/snapshots/abc123"}),
            ),
            (
                "dots",
                serde_json::json!({"repo_id": "..", "revision": "abc123"}),
            ),
            (
                "slashes",
                serde_json::json!({"repo_id": "org/real/../../x", "revision": "abc123"}),
            ),
        ];
        for (name, reference) in &bad {
            hf_reference_model(&models, name, reference);
            match store.find(name) {
                Err(StoreError::NotLoadable { reason, .. }) => {
                    assert!(reason.contains("reference is invalid"), "{name}: {reason}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        hf_reference_model(
            &models,
            "good",
            &serde_json::json!({"repo_id": "org/real", "revision": "abc123"}),
        );
        assert!(store.find("good").is_ok());
        let listed: Vec<String> = store
            .list()
            .iter()
            .map(|m| m.name.display_shortest())
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&"good:latest".to_owned()), "{listed:?}");
        assert!(store.list().iter().all(|m| m.path().starts_with(&hub)));
    }
}
