//! The llama.cpp runner: llama.cpp's own `llama-server`, spawned and supervised like the MLX
//! runner, spoken to over loopback HTTP with a per-process API key (passed in the environment, so
//! it never shows in `ps`). Flags follow what Ollama passes (`llm/llama_server.go`).
//!
//! Prompts reach it as token ids: text is tokenized by llama-server itself (`/tokenize`), chat
//! messages are rendered with the GGUF's Jinja template (`/apply-template`). Knowing the ids lets
//! the runner enforce `num_ctx` the same way the MLX runner does and return Ollama's `context`.
//!
//! Images (models with a vision projector, loaded with `--mmproj`) cannot travel as token ids:
//! such a prompt goes as text with llama-server's media marker where each image belongs, plus the
//! images (`{"prompt_string", "multimodal_data"}`). The marker is random per process (as Ollama
//! sets `LLAMA_MEDIA_MARKER`), so text in a message can never pose as an image. What an image
//! costs in tokens is known only once llama-server has read it: `num_ctx` is checked on the text,
//! truncation counts each image as Ollama's 768 tokens, and llama-server's own context error
//! comes back as a 400.

mod media;
mod runner;
mod schema;
mod sse;
mod two_phase;
mod wire;

pub use runner::LlamaRunner;

use super::endpoint::Endpoint;
use super::process::ChildProcess;
use super::ready::{self, Probe};
use super::{LoadSpec, Runner, RunnerError, RunnerFactory, RunnerInfo};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct LlamaFactory {
    /// `OLLMLX_LLAMA_SERVER`.
    pub binary: Option<PathBuf>,
    /// The directory of the running `ollmlx` binary (a `llama-server` beside it is used next).
    pub exe_dir: Option<PathBuf>,
    /// `PATH`, searched last.
    pub search_path: Option<OsString>,
    pub load_timeout: Option<Duration>,
    /// Threads when the request does not set `num_thread` (`OLLMLX_LLAMA_THREADS`).
    pub threads: Option<u64>,
    /// `--cache-type-k/v` from `OLLAMA_KV_CACHE_TYPE` (`None`: f16). A quantized V cache needs
    /// flash attention, so it is turned on with it.
    pub cache_type: Option<&'static str>,
    /// Where running servers are recorded for a later daemon to stop should this one be killed
    /// (`leftovers::dir` of the home); `None` records nothing.
    pub records: Option<PathBuf>,
}

impl LlamaFactory {
    /// `OLLMLX_LLAMA_SERVER`, else next to the `ollmlx` binary, else on `PATH`.
    pub fn find_binary(&self) -> Result<PathBuf, RunnerError> {
        if let Some(b) = &self.binary {
            return if b.is_file() {
                Ok(b.clone())
            } else {
                Err(RunnerError::Spawn(format!(
                    "OLLMLX_LLAMA_SERVER is set to {}, which does not exist",
                    b.display()
                )))
            };
        }
        let beside = self.exe_dir.as_ref().map(|d| d.join("llama-server"));
        let on_path = self
            .search_path
            .as_ref()
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("llama-server"));
        beside.into_iter().chain(on_path).find(|p| p.is_file()).ok_or_else(|| {
            RunnerError::Spawn(
                "GGUF models need llama.cpp's llama-server, which was not found (set OLLMLX_LLAMA_SERVER, put it next to ollmlx or on PATH): on a Mac `brew install llama.cpp`; elsewhere run scripts/build-llama-server.sh from the ollmlx source tree".into(),
            )
        })
    }
}

#[async_trait::async_trait]
impl RunnerFactory for LlamaFactory {
    async fn start(&self, spec: LoadSpec) -> Result<Arc<dyn Runner>, RunnerError> {
        let path = spec.model.path().to_owned();
        let check_path = path.clone();
        let header =
            tokio::task::spawn_blocking(move || crate::store::gguf::read(&check_path, false))
                .await
                .map_err(|e| RunnerError::Spawn(e.to_string()))?
                .map_err(|e| RunnerError::Load {
                    message: format!(
                        "model file {} is corrupt or incomplete: {e}",
                        path.display()
                    ),
                })?;
        let binary = self.find_binary()?;
        let port = free_port().map_err(|e| RunnerError::Spawn(format!("no free port: {e}")))?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let o = &spec.options;
        let parallel = spec.num_parallel.max(1) as u64;
        let embedding_model = header
            .kv
            .contains_key(&format!("{}.pooling_type", header.architecture()));

        // Context shift, as Ollama launches llama-server; not for deepseek2 (Ollama's default:
        // its MLA cache cannot shift) nor with a projector (llama-server refuses it there).
        let can_shift =
            spec.model.config.projector.is_none() && header.architecture() != "deepseek2";
        let mut cmd = Command::new(&binary);
        cmd.arg("--model")
            .arg(&path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--no-webui", "--offline"])
            .arg(if can_shift {
                "--context-shift"
            } else {
                "--no-context-shift"
            })
            .args([
                "-c",
                &(o.num_ctx * parallel).to_string(),
                "-np",
                &parallel.to_string(),
            ])
            // Mean pooling serves /api/embed for any model; embedding models keep their own.
            .arg("--embeddings");
        if !embedding_model {
            cmd.args(["--pooling", "mean"]);
        }
        if let Some(kind) = self.cache_type {
            cmd.args([
                "--cache-type-k",
                kind,
                "--cache-type-v",
                kind,
                "--flash-attn",
                "on",
            ]);
        }
        if let Some(t) = o.num_thread.or(self.threads) {
            cmd.args(["-t", &t.to_string()]);
        }
        // In embeddings mode one input must fit in one physical batch: embedding models get a
        // batch of their whole context (as Ollama gives them); others keep llama.cpp's 512.
        let ubatch = o
            .num_batch
            .unwrap_or(if embedding_model { o.num_ctx } else { 512 });
        let batch = ubatch.max(2048.min(o.num_ctx * parallel));
        cmd.args(["-b", &batch.to_string(), "-ub", &ubatch.to_string()]);
        if let Some(n) = o.num_gpu.filter(|n| *n >= 0) {
            cmd.args(["-ngl", &n.to_string()]);
        }
        if o.use_mmap == Some(false) {
            cmd.arg("--no-mmap");
        }
        for a in &spec.model.config.adapters {
            cmd.arg("--lora").arg(a);
        }
        if let Some(p) = &spec.model.config.projector {
            cmd.arg("--mmproj").arg(p);
        }
        let media_marker = format!("<__media_{}__>", hex::encode(rand::random::<[u8; 8]>()));
        cmd.env("LLAMA_API_KEY", &token);
        cmd.env("LLAMA_MEDIA_MARKER", &media_marker);
        let label = spec.model.name.display_shortest();
        tracing::info!(model = %label, binary = %binary.display(), port, "starting llama-server");
        let (process, stdout) = ChildProcess::spawn_recorded(cmd, &label, self.records.as_deref())
            .map_err(|e| RunnerError::Spawn(format!("cannot start {}: {e}", binary.display())))?;
        // llama-server logs on stderr; drain stdout so it can never block on a full pipe.
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut sink = Vec::new();
            let mut out = stdout;
            let _ = out.read_to_end(&mut sink).await;
        });
        let endpoint = Endpoint::new(&process, format!("http://127.0.0.1:{port}"), token)?;
        let started = Instant::now();
        let probe_ep = endpoint.clone();
        let waited = ready::wait(
            &process,
            started,
            self.load_timeout,
            "llama-server",
            || async {
                match probe_ep.probe("/health").await {
                    Some((200, _)) => Probe::Ready,
                    Some((503, v)) => {
                        Probe::Loading(v["error"]["message"].as_str().unwrap_or("").to_owned())
                    }
                    Some((_, v)) if v.get("error").is_some() => {
                        Probe::Failed(v["error"].to_string())
                    }
                    _ => Probe::Loading(String::new()),
                }
            },
        )
        .await;
        if let Err(e) = waited {
            process.terminate(STOP_GRACE).await;
            return Err(e);
        }
        tracing::info!(
            pid = process.pid(),
            load_ms = started.elapsed().as_millis() as u64,
            "llama-server ready"
        );
        let info = RunnerInfo {
            pid: Some(process.pid()),
            context_length: Some(o.num_ctx),
            backend: if cfg!(target_os = "macos") {
                "metal".into()
            } else {
                "cpu".into()
            },
            load: Some(spec.options.clone()),
        };
        // What the tokenizer puts first on its own (nothing, or the BOS).
        let bos = match wire::tokenize(&endpoint, "", true).await {
            Ok(t) => t.first().copied(),
            Err(e) => {
                process.terminate(STOP_GRACE).await;
                return Err(e);
            }
        };
        Ok(Arc::new(LlamaRunner {
            process,
            endpoint,
            info,
            ubatch,
            media_marker,
            bos,
            can_shift,
        }))
    }
}

/// A free loopback port (bind to 0, read it, release it: llama-server binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}
