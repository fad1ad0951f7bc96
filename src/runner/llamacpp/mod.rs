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

pub mod install;
mod media;
pub mod rpc;
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
    /// Finds a loopback port for the next llama-server ([`free_port`]; tests pass a picker
    /// that hands out a taken port first).
    pub pick_port: fn() -> std::io::Result<u16>,
    /// The managed llama.cpp, built when no binary is found (`None`: never install).
    pub install: Option<Arc<install::LlamaInstall>>,
    /// How long a load waits for that install.
    pub install_wait: Duration,
    /// `OLLMLX_RPC_SERVERS`: llama.cpp rpc-servers the model's layers are spread over (empty:
    /// this machine alone).
    pub rpc_servers: Vec<rpc::RpcServer>,
}

impl LlamaFactory {
    /// `OLLMLX_LLAMA_SERVER`, else next to the `ollmlx` binary, else on `PATH`, else the
    /// managed install (built now if needed, waiting for it at most `install_wait`).
    pub async fn binary(&self) -> Result<PathBuf, RunnerError> {
        let found = self.find_binary();
        let Some(install) = self.install.as_ref().filter(|_| found.is_err()) else {
            return found;
        };
        if let Some(bin) = install.installed() {
            return Ok(bin);
        }
        tracing::info!("no llama-server found: installing llama.cpp for GGUF models");
        install
            .ensure(self.install_wait)
            .await
            .map_err(|w| match w {
                install::Waited::StillInstalling => RunnerError::Unavailable(format!(
                    "llama.cpp is still being built for GGUF models (into {}); try again in a few minutes (progress is in the server log)",
                    install.dest().display()
                )),
                install::Waited::Failed(msg) => RunnerError::Spawn(msg),
            })
    }

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
        let header = read_header(spec.model.path()).await?;
        let binary = self.binary().await?;
        let flags = Flags::new(&spec, &header, self);
        if flags.rpc {
            // llama-server aborts at its first unreachable rpc-server, and waits silently on a
            // busy one: find either here, and name it.
            rpc::check_all(&self.rpc_servers, rpc::CONNECT_TIMEOUT, rpc::BUSY_WAIT).await?;
        }
        // The port is found free, released, then bound by llama-server: another process can
        // take it in between. llama-server then exits at once ("couldn't bind"): try another.
        for attempt in 1.. {
            let port =
                (self.pick_port)().map_err(|e| RunnerError::Spawn(format!("no free port: {e}")))?;
            match self.launch(&binary, &spec, &flags, port).await? {
                Launched::Ready(runner) => return Ok(Arc::new(*runner)),
                Launched::PortTaken if attempt < PORT_ATTEMPTS => {
                    tracing::warn!(
                        port,
                        attempt,
                        "llama-server's port was taken; trying another"
                    );
                }
                Launched::PortTaken => {
                    return Err(RunnerError::Spawn(format!(
                        "llama-server could not bind a loopback port ({PORT_ATTEMPTS} tries)"
                    )))
                }
            }
        }
        unreachable!("the loop returns")
    }
}

/// Ports tried before a load fails for want of one.
const PORT_ATTEMPTS: u32 = 5;

enum Launched {
    Ready(Box<LlamaRunner>),
    /// Another process bound the port first.
    PortTaken,
}

/// The GGUF's header, checked before anything starts: a corrupt file is a load error.
async fn read_header(path: &std::path::Path) -> Result<crate::store::gguf::Gguf, RunnerError> {
    let check = path.to_owned();
    tokio::task::spawn_blocking(move || crate::store::gguf::read(&check, false))
        .await
        .map_err(|e| RunnerError::Spawn(e.to_string()))?
        .map_err(|e| RunnerError::Load {
            message: format!(
                "model file {} is corrupt or incomplete: {e}",
                path.display()
            ),
        })
}

/// llama-server's flags for a model and its load options (all but the port), as Ollama passes
/// them (`llm/llama_server.go`).
struct Flags {
    args: Vec<OsString>,
    /// The physical batch: the longest input one embedding can take.
    ubatch: u64,
    can_shift: bool,
    /// Loaded with `--rpc`: its layers go to the rpc-servers.
    rpc: bool,
}

impl Flags {
    fn new(spec: &LoadSpec, header: &crate::store::gguf::Gguf, factory: &LlamaFactory) -> Flags {
        let o = &spec.options;
        let parallel = spec.num_parallel.max(1) as u64;
        let embedding_model = header
            .kv
            .contains_key(&format!("{}.pooling_type", header.architecture()));
        // Context shift, as Ollama launches llama-server; not for deepseek2 (Ollama's default:
        // its MLA cache cannot shift) nor with a projector (llama-server refuses it there).
        let can_shift =
            spec.model.config.projector.is_none() && header.architecture() != "deepseek2";
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["--no-webui", "--offline"]);
        push(&[if can_shift {
            "--context-shift"
        } else {
            "--no-context-shift"
        }]);
        push(&[
            "-c",
            &(o.num_ctx * parallel).to_string(),
            "-np",
            &parallel.to_string(),
        ]);
        // Mean pooling serves /api/embed for any model; embedding models keep their own.
        push(&["--embeddings"]);
        if !embedding_model {
            push(&["--pooling", "mean"]);
        }
        if let Some(kind) = factory.cache_type {
            push(&[
                "--cache-type-k",
                kind,
                "--cache-type-v",
                kind,
                "--flash-attn",
                "on",
            ]);
        }
        if let Some(t) = o.num_thread.or(factory.threads) {
            push(&["-t", &t.to_string()]);
        }
        // In embeddings mode one input must fit in one physical batch: embedding models get a
        // batch of their whole context (as Ollama gives them); others keep llama.cpp's 512.
        let ubatch = o
            .num_batch
            .unwrap_or(if embedding_model { o.num_ctx } else { 512 });
        let batch = ubatch.max(2048.min(o.num_ctx * parallel));
        push(&["-b", &batch.to_string(), "-ub", &ubatch.to_string()]);
        // `num_gpu: 0` keeps every layer here: the rpc-servers are left alone.
        let rpc = !factory.rpc_servers.is_empty() && o.num_gpu != Some(0);
        match o.num_gpu.filter(|n| *n >= 0) {
            Some(n) => push(&["-ngl", &n.to_string()]),
            // llama.cpp counts rpc-servers as GPUs: only offloaded layers go to them (spread in
            // proportion to each device's free memory); the rest stay on this machine's CPU.
            // Offload all of them unless the request or the model says how many.
            None if rpc => push(&["-ngl", "999"]),
            None => {}
        }
        if rpc {
            push(&["--rpc", &rpc::flag_value(&factory.rpc_servers)]);
        }
        if o.use_mmap == Some(false) {
            push(&["--no-mmap"]);
        }
        for a in &spec.model.config.adapters {
            args.extend([OsString::from("--lora"), a.into()]);
        }
        if let Some(p) = &spec.model.config.projector {
            args.extend([OsString::from("--mmproj"), p.into()]);
        }
        Flags {
            args,
            ubatch,
            can_shift,
            rpc,
        }
    }
}

impl LlamaFactory {
    /// Starts llama-server on `port` and waits until it has loaded the model.
    async fn launch(
        &self,
        binary: &std::path::Path,
        spec: &LoadSpec,
        flags: &Flags,
        port: u16,
    ) -> Result<Launched, RunnerError> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let media_marker = format!("<__media_{}__>", hex::encode(rand::random::<[u8; 8]>()));
        let mut cmd = Command::new(binary);
        cmd.arg("--model")
            .arg(spec.model.path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(&flags.args)
            .env("LLAMA_API_KEY", &token)
            .env("LLAMA_MEDIA_MARKER", &media_marker);
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
        let waited = ready::wait(&process, started, self.load_timeout, "llama-server", || {
            health(&probe_ep)
        })
        .await;
        // What the tokenizer puts first on its own (nothing, or the BOS).
        let bos = match waited {
            Ok(()) => wire::tokenize(&endpoint, "", true)
                .await
                .map(|t| t.first().copied()),
            Err(e) => Err(e),
        };
        let bos = match bos {
            Ok(bos) => bos,
            Err(_) if port_taken(&process).await => {
                process.terminate(STOP_GRACE).await;
                return Ok(Launched::PortTaken);
            }
            Err(e) => {
                process.terminate(STOP_GRACE).await;
                return Err(Self::explain(&process, flags, e).await);
            }
        };
        tracing::info!(
            pid = process.pid(),
            load_ms = started.elapsed().as_millis() as u64,
            "llama-server ready"
        );
        let info = RunnerInfo {
            pid: Some(process.pid()),
            context_length: Some(spec.options.num_ctx),
            backend: if cfg!(target_os = "macos") {
                "metal".into()
            } else {
                "cpu".into()
            },
            load: Some(spec.options.clone()),
            distributed: if flags.rpc {
                rpc::distributed(&self.rpc_servers)
            } else {
                None
            },
        };
        Ok(Launched::Ready(Box::new(LlamaRunner {
            process,
            endpoint,
            info,
            ubatch: flags.ubatch,
            media_marker,
            bos,
            can_shift: flags.can_shift,
        })))
    }
}

impl LlamaFactory {
    /// A failed load of a model on rpc-servers, in words that say so when llama-server's log
    /// blames one of them.
    async fn explain(process: &ChildProcess, flags: &Flags, e: RunnerError) -> RunnerError {
        if !flags.rpc {
            return e;
        }
        process.log_drained(Duration::from_secs(2)).await;
        match rpc::explain_exit(|n| process.log_line_with(n)) {
            Some(message) => RunnerError::Load { message },
            None => e,
        }
    }
}

/// Whether llama-server exited because its port was taken (it says so on stderr).
async fn port_taken(process: &ChildProcess) -> bool {
    if process.is_alive() {
        return false;
    }
    process.log_drained(Duration::from_secs(2)).await;
    process.log_mentions("couldn't bind HTTP server socket")
}

/// One `/health` poll: ready, loading (with llama-server's message), or failed.
async fn health(endpoint: &Endpoint) -> Probe {
    match endpoint.probe("/health").await {
        Some((200, _)) => Probe::Ready,
        Some((503, v)) => Probe::Loading(v["error"]["message"].as_str().unwrap_or("").to_owned()),
        Some((_, v)) if v.get("error").is_some() => Probe::Failed(v["error"].to_string()),
        _ => Probe::Loading(String::new()),
    }
}

/// A free loopback port (bind to 0, read it, release it: llama-server binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}
