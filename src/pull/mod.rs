//! Pulling models: MLX models from the Hugging Face hub into its cache, GGUF models from an Ollama
//! registry into Ollama's store. Both resume interrupted files (HTTP Range), verify every large
//! file's SHA-256, report progress in Ollama's stream vocabulary, and make a model visible only
//! once it is complete (the HF ref, or the Ollama manifest, is written last).
//!
//! Which source a name means is decided by [`Target::parse`]; the rule is in docs/models.md.

pub mod auth;
pub mod download;
pub mod hf;
pub mod push;
pub mod registry;

use crate::api::ProgressResponse;
use crate::store::name::{ModelName, DEFAULT_HOST, DEFAULT_NAMESPACE};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    #[error("invalid model name")]
    InvalidName,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    NotServable(String),
    #[error("{what}: the server answered {status}")]
    Status { status: u16, what: String },
    #[error("download failed: {0} (pull again to resume)")]
    Network(String),
    #[error("{what} is corrupt: its sha256 is {got}, expected {want}; the file was discarded")]
    Corrupt {
        what: String,
        want: String,
        got: String,
    },
    #[error("{0}")]
    Io(String),
    #[error("pull cancelled")]
    Cancelled,
}

/// Where a name is pulled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Hugging Face repo at a revision (`main` for the tag `latest`).
    Hf { repo_id: String, revision: String },
    /// An Ollama registry model.
    Registry(ModelName),
}

impl Target {
    /// `hf.co/<org>/<repo>[:rev]` and a bare `<org>/<repo>[:rev]` are Hugging Face repos; a
    /// one-part name (`llama3.2:1b`), `library/...`, or any other explicit host is an Ollama
    /// registry model (`registry.ollama.ai/<user>/<model>` reaches registry user namespaces).
    pub fn parse(raw: &str) -> Result<Target, PullError> {
        let n = ModelName::parse(raw).map_err(|_| PullError::InvalidName)?;
        let host = n.host.to_ascii_lowercase();
        let explicit_host = raw.trim().split('/').count() == 3 || raw.contains("://");
        let hf_host = host == "hf.co" || host == "huggingface.co";
        let bare_two_parts = !explicit_host && !n.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE);
        if hf_host || (bare_two_parts && host == DEFAULT_HOST) {
            let revision = if n.tag.eq_ignore_ascii_case("latest") {
                "main".to_owned()
            } else {
                n.tag.clone()
            };
            return Ok(Target::Hf {
                repo_id: format!("{}/{}", n.namespace, n.model),
                revision,
            });
        }
        Ok(Target::Registry(n))
    }
}

/// Where pulls come from and go to.
#[derive(Clone)]
pub struct Puller {
    pub http: reqwest::Client,
    pub hf_endpoint: String,
    /// `HF_TOKEN`; else the token file is read at each pull (so `ollmlx login` needs no restart).
    pub hf_token: Option<String>,
    pub hf_token_path: Option<PathBuf>,
    pub hf_cache: PathBuf,
    pub ollama: crate::store::ollama::OllamaStore,
    /// Asked whether a repo's `model_type` is loadable before anything is downloaded.
    pub runtime: Option<Arc<crate::runner::python::PythonRuntime>>,
    /// One pull per model at a time: a second pull of the same model waits, then finds the
    /// files in place (one download shared); different models pull in parallel.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Receives progress; returns false when nobody listens any more (the pull then stops, leaving
/// its partial files for the next attempt).
pub type Progress<'a> = &'a mut (dyn FnMut(ProgressResponse) -> bool + Send);

impl Puller {
    pub fn new(
        hf_endpoint: String,
        hf_token: Option<String>,
        hf_token_path: Option<PathBuf>,
        hf_cache: PathBuf,
        ollama: crate::store::ollama::OllamaStore,
    ) -> Puller {
        let http = reqwest::Client::builder()
            .user_agent(concat!("ollmlx/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Puller {
            http,
            hf_endpoint,
            hf_token,
            hf_token_path,
            hf_cache,
            ollama,
            runtime: None,
            locks: Arc::default(),
        }
    }

    /// Pulls a model by name, reporting progress. Ends with `success` or an error.
    pub async fn pull(
        &self,
        raw: &str,
        insecure: bool,
        progress: Progress<'_>,
    ) -> Result<(), PullError> {
        let target = Target::parse(raw)?;
        let key = format!("{target:?}").to_lowercase();
        let lock = self.locks.lock().unwrap().entry(key).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        match target {
            Target::Hf { repo_id, revision } => {
                let mut me = self.clone();
                if me.hf_token.is_none() {
                    me.hf_token = self
                        .hf_token_path
                        .as_ref()
                        .and_then(|p| std::fs::read_to_string(p).ok())
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty());
                }
                hf::pull(&me, &repo_id, &revision, progress).await
            }
            Target::Registry(name) => registry::pull(self, &name, insecure, progress).await,
        }
    }
}

impl Puller {
    /// Pushes a model of Ollama's store to its registry, reporting progress as Ollama does.
    /// One push or pull per model at a time.
    pub async fn push(
        &self,
        raw: &str,
        insecure: bool,
        progress: Progress<'_>,
    ) -> Result<(), PullError> {
        let name = crate::store::name::ModelName::parse(raw).map_err(|_| PullError::InvalidName)?;
        let key = format!("{:?}", Target::Registry(name.clone())).to_lowercase();
        let lock = self.locks.lock().unwrap().entry(key).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        push::push(self, &name, insecure, progress).await
    }
}

/// `pulling <first 12 hex>` with the digest and byte counts, as Ollama reports a blob. `digest`
/// is `sha256:<hex>`, or a bare git id for a small Hugging Face file.
pub fn blob_progress(digest: &str, total: u64, completed: u64) -> ProgressResponse {
    let hex = digest.trim_start_matches("sha256:");
    ProgressResponse {
        status: format!("pulling {}", &hex[..hex.len().min(12)]),
        digest: digest.to_owned(),
        total,
        completed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf(repo: &str, rev: &str) -> Target {
        Target::Hf {
            repo_id: repo.into(),
            revision: rev.into(),
        }
    }

    #[test]
    fn names_to_sources() {
        assert_eq!(
            Target::parse("mlx-community/Llama-3.2-1B-Instruct-4bit").unwrap(),
            hf("mlx-community/Llama-3.2-1B-Instruct-4bit", "main")
        );
        assert_eq!(
            Target::parse("hf.co/org/repo:v2").unwrap(),
            hf("org/repo", "v2")
        );
        assert_eq!(
            Target::parse("huggingface.co/org/repo").unwrap(),
            hf("org/repo", "main")
        );
        assert!(
            matches!(Target::parse("llama3.2:1b").unwrap(), Target::Registry(n) if n.model == "llama3.2")
        );
        assert!(matches!(
            Target::parse("library/llama3").unwrap(),
            Target::Registry(_)
        ));
        assert!(
            matches!(Target::parse("registry.ollama.ai/mattw/pygmalion").unwrap(), Target::Registry(n) if n.namespace == "mattw")
        );
        assert!(
            matches!(Target::parse("127.0.0.1:5000/library/tiny:latest").unwrap(), Target::Registry(n) if n.host == "127.0.0.1:5000")
        );
        assert!(Target::parse("bad name").is_err());
    }
}
