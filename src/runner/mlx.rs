//! The MLX runner: a Python `mlx_lm` process (`mlx_backend/ollmlx_mlx`) spoken to over loopback
//! HTTP with a per-process bearer token, streaming JSON Lines (docs/runner-protocol.md).

use super::endpoint::Endpoint;
use super::process::ChildProcess;
use super::protocol::{self, CompletionBody, Event, Health, Listening, Status};
use super::python::PythonRuntime;
use super::ready::{self, Probe};
use super::{
    CompletionRequest, EmbedResult, EventStream, LoadSpec, Runner, RunnerError, RunnerEvent,
    RunnerFactory, RunnerInfo, RunnerStatus,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Grace period between SIGTERM and SIGKILL when stopping a runner.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct MlxFactory {
    pub runtime: Arc<PythonRuntime>,
    pub home: PathBuf,
    pub load_timeout: Option<Duration>,
    pub debug: bool,
    /// `--prefix-cache-bytes` (`OLLMLX_PREFIX_CACHE`); `None`: the runner's default.
    pub prefix_cache_bytes: Option<u64>,
    /// `--kv-bits` from `OLLAMA_KV_CACHE_TYPE` (0: f16).
    pub kv_bits: u8,
    /// How long a load waits for the managed runtime's install (`OLLMLX_INSTALL_WAIT`).
    pub install_wait: Duration,
    /// `OLLMLX_MLX_HOSTS`: which runners start as distributed jobs, over which machines.
    pub clusters: super::cluster::MlxClusters,
}

#[async_trait::async_trait]
impl RunnerFactory for MlxFactory {
    async fn start(&self, spec: LoadSpec) -> Result<Arc<dyn Runner>, RunnerError> {
        // Integrity before any load: a truncated or half-downloaded model never starts a runner.
        let model = spec.model.clone();
        tokio::task::spawn_blocking(move || model.check())
            .await
            .map_err(|e| RunnerError::Spawn(e.to_string()))?
            .map_err(|e| RunnerError::Load {
                message: e.to_string(),
            })?;
        let python = self.runtime.python_waiting(self.install_wait).await?;
        let code = super::embedded::unpack(&self.home)
            .map_err(|e| RunnerError::Spawn(format!("cannot unpack the MLX runner: {e}")))?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let label = spec.model.name.display_shortest();
        let cluster = self.clusters.for_model(&spec.model.name);
        let mut cmd = Command::new(&python);
        if let Some(cluster) = cluster {
            // mlx.launch (through ollmlx_mlx.launch, which ends the job with the daemon)
            // starts this same command line once per host; rank 0 is the runner we talk to.
            cmd.args(["-m", "ollmlx_mlx.launch"])
                .args(cluster.launch_args(&code))
                .arg("--")
                .arg(&python);
        }
        cmd.arg("-m")
            .arg("ollmlx_mlx")
            .arg("--model")
            .arg(spec.model.path())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .arg("--parallel")
            .arg(spec.num_parallel.to_string())
            .args(["--kv-bits", &self.kv_bits.to_string()])
            .args(["--log-level", if self.debug { "debug" } else { "info" }])
            .env("PYTHONPATH", &code)
            .env("OLLMLX_RUNNER_TOKEN", &token)
            .env("HF_HUB_OFFLINE", "1")
            .env("TOKENIZERS_PARALLELISM", "false")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MLX_PTX_CACHE_DIR", self.home.join("cache").join("mlx-ptx"));
        if let Some(bytes) = spec.prefix_cache_bytes.or(self.prefix_cache_bytes) {
            cmd.args(["--prefix-cache-bytes", &bytes.to_string()]);
        }
        if let Some(cluster) = cluster {
            cmd.args(["--distributed", "ring", "--split", cluster.split.as_str()]);
        }
        tracing::info!(model = %label, python = %python.display(), "starting MLX runner");
        let (process, stdout) = ChildProcess::spawn(cmd, &label).map_err(|e| {
            RunnerError::Spawn(format!(
                "cannot start the MLX runner with {}: {e}",
                python.display()
            ))
        })?;
        let runner = MlxRunner {
            process,
            endpoint: None,
            token,
            info: RunnerInfo::default(),
        };
        match runner.wait_ready(stdout, self.load_timeout).await {
            Ok(r) => Ok(Arc::new(r)),
            Err((runner, e)) => {
                runner.process.terminate(STOP_GRACE).await;
                Err(e)
            }
        }
    }
}

pub struct MlxRunner {
    process: ChildProcess,
    endpoint: Option<Endpoint>,
    token: String,
    info: RunnerInfo,
}

impl MlxRunner {
    fn endpoint(&self) -> &Endpoint {
        self.endpoint
            .as_ref()
            .expect("a ready runner has an endpoint")
    }

    /// Reads the ready line, then polls health until the model is loaded and warmed up. Every
    /// wait races the child's exit and the stall timeout.
    async fn wait_ready(
        mut self,
        stdout: tokio::process::ChildStdout,
        timeout: Option<Duration>,
    ) -> Result<MlxRunner, (MlxRunner, RunnerError)> {
        let started = Instant::now();
        // 1. The listening line.
        let mut lines = BufReader::new(stdout).lines();
        let listening: Listening = loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(l)) => match serde_json::from_str::<Listening>(&l) {
                        Ok(v) if v.event == "listening" => break v,
                        _ => {
                            let e = RunnerError::Load { message: format!("the MLX runner printed an unexpected line: {l}") };
                            return Err((self, e));
                        }
                    },
                    _ => {
                        // stdout closed: the process is exiting; wait for it to report why.
                        let _ = tokio::time::timeout(Duration::from_secs(5), self.process.exited()).await;
                        let e = ready::load_error(&self.process, "the MLX runner exited before it was ready");
                        return Err((self, e));
                    }
                },
                _ = tokio::time::sleep(ready::POLL) => {
                    if ready::stalled(&self.process, started, timeout) {
                        let e = ready::timeout_error(&self.process, timeout);
                        return Err((self, e));
                    }
                }
            }
        };
        if listening.protocol != protocol::PROTOCOL_VERSION {
            let e = RunnerError::Load {
                message: format!(
                    "the MLX runner speaks protocol {} but this ollmlx needs {}",
                    listening.protocol,
                    protocol::PROTOCOL_VERSION
                ),
            };
            return Err((self, e));
        }
        let base = format!("http://{}:{}", listening.host, listening.port);
        match Endpoint::new(&self.process, base, self.token.clone()) {
            Ok(e) => self.endpoint = Some(e),
            Err(e) => return Err((self, e)),
        }
        // Keep draining stdout so a chatty library can never block the runner on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        // 2. Health until ok.
        let endpoint = self.endpoint().clone();
        let waited = ready::wait(
            &self.process,
            started,
            timeout,
            "the MLX runner",
            || async {
                match endpoint.probe("/v1/health").await {
                    Some((_, h)) => match serde_json::from_value::<Health>(h) {
                        Ok(h) if h.status == "ok" => Probe::Ready,
                        Ok(h) if h.status == "error" => {
                            Probe::Failed(h.error.unwrap_or_else(|| "unknown error".into()))
                        }
                        Ok(h) => Probe::Loading(h.phase.unwrap_or_default()),
                        Err(_) => Probe::Loading(String::new()),
                    },
                    None => Probe::Loading(String::new()), // not answering yet
                }
            },
        )
        .await;
        if let Err(e) = waited {
            return Err((self, e));
        }
        // 3. Facts.
        match self.endpoint().get_json::<Status>("/v1/status").await {
            Ok(s) => {
                self.info = RunnerInfo {
                    pid: Some(self.process.pid()),
                    context_length: s.context_length,
                    backend: s.backend,
                    load: None,
                    distributed: s.distributed,
                };
            }
            Err(e) => return Err((self, e)),
        }
        tracing::info!(
            pid = self.process.pid(),
            load_ms = started.elapsed().as_millis() as u64,
            "MLX runner ready"
        );
        Ok(self)
    }
}

/// One JSON Lines event of the MLX runner.
fn parse_line(line: &str) -> Result<Vec<RunnerEvent>, RunnerError> {
    if line.trim().is_empty() {
        return Ok(Vec::new());
    }
    let ev: Event = serde_json::from_str(line)
        .map_err(|e| RunnerError::Failed(format!("bad line from the MLX runner: {e}")))?;
    ev.into_runner_event()
        .map(|e| vec![e])
        .map_err(RunnerError::Failed)
}

#[async_trait::async_trait]
impl Runner for MlxRunner {
    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError> {
        let resp = self
            .endpoint()
            .post("/v1/completion", &CompletionBody::new(&req))
            .await?;
        Ok(self.endpoint().events(resp, Box::new(parse_line)))
    }

    async fn count_chat(
        &self,
        messages: &[crate::api::Message],
        tools: &[serde_json::Value],
        template_kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, RunnerError> {
        let mut body = serde_json::json!({"messages": messages});
        if !tools.is_empty() {
            body["tools"] = serde_json::json!(tools);
        }
        if !template_kwargs.is_empty() {
            body["template_kwargs"] = serde_json::json!(template_kwargs);
        }
        let v: serde_json::Value = self.endpoint().post_json("/v1/render", &body).await?;
        Ok(v["tokens"].as_array().map_or(0, |t| t.len() as u64))
    }

    async fn tokenize(&self, text: &str) -> Result<Vec<i64>, RunnerError> {
        let body = protocol::TokenizeBody {
            text,
            add_special: false,
        };
        Ok(self
            .endpoint()
            .post_json::<_, protocol::Tokens>("/v1/tokenize", &body)
            .await?
            .tokens)
    }

    async fn detokenize(&self, tokens: &[i64]) -> Result<String, RunnerError> {
        let body = protocol::DetokenizeBody { tokens };
        Ok(self
            .endpoint()
            .post_json::<_, protocol::Text>("/v1/detokenize", &body)
            .await?
            .text)
    }

    async fn embed(
        &self,
        inputs: &[String],
        truncate: bool,
        num_ctx: u64,
    ) -> Result<EmbedResult, RunnerError> {
        let body = serde_json::json!({"input": inputs, "truncate": truncate, "num_ctx": num_ctx});
        let v: serde_json::Value = self.endpoint().post_json("/v1/embed", &body).await?;
        Ok(EmbedResult {
            embeddings: serde_json::from_value(v["embeddings"].clone()).map_err(|e| {
                RunnerError::Failed(format!("bad embeddings from the MLX runner: {e}"))
            })?,
            prompt_tokens: v["prompt_eval_count"].as_u64().unwrap_or(0),
        })
    }

    async fn memory(&self) -> Option<u64> {
        self.status().await.memory
    }

    async fn status(&self) -> RunnerStatus {
        match self.endpoint().get_json::<Status>("/v1/status").await {
            Ok(s) => RunnerStatus {
                memory: Some(s.memory.active + s.memory.cache),
                prefix_cache: s.prefix_cache,
            },
            Err(_) => RunnerStatus::default(),
        }
    }

    async fn shrink_cache(&self, max_bytes: u64) -> Result<(), RunnerError> {
        let body = serde_json::json!({ "max_bytes": max_bytes });
        self.endpoint()
            .post_json::<_, serde_json::Value>("/v1/cache", &body)
            .await
            .map(|_| ())
    }

    fn info(&self) -> &RunnerInfo {
        &self.info
    }

    fn is_alive(&self) -> bool {
        self.process.is_alive()
    }

    async fn exited(&self) {
        self.process.exited().await;
    }

    async fn close(&self) {
        self.process.terminate(STOP_GRACE).await;
    }
}
