//! The MLX runner: a Python `mlx_lm` process (`mlx_backend/ollmlx_mlx`) spoken to over loopback
//! HTTP with a per-process bearer token, streaming JSON Lines (docs/runner-protocol.md).

use super::process::ChildProcess;
use super::protocol::{self, CompletionBody, Event, Health, Listening, Status};
use super::python::PythonRuntime;
use super::{
    CompletionRequest, EventStream, LoadSpec, Runner, RunnerError, RunnerFactory, RunnerInfo,
};
use futures_util::{StreamExt, TryStreamExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;

/// Lines longer than this are a protocol error (Ollama's scanner limit).
const MAX_LINE: usize = 8 * 1024 * 1024;
/// How often readiness is polled while loading.
const HEALTH_POLL: Duration = Duration::from_millis(250);
/// Grace period between SIGTERM and SIGKILL when stopping a runner.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct MlxFactory {
    pub runtime: Arc<PythonRuntime>,
    pub home: PathBuf,
    pub load_timeout: Option<Duration>,
    pub debug: bool,
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
        let python = self.runtime.python()?;
        let code = super::embedded::unpack(&self.home)
            .map_err(|e| RunnerError::Spawn(format!("cannot unpack the MLX runner: {e}")))?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let label = spec.model.name.display_shortest();
        let mut cmd = Command::new(&python);
        cmd.arg("-m")
            .arg("ollmlx_mlx")
            .arg("--model")
            .arg(spec.model.path())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .arg("--parallel")
            .arg(spec.num_parallel.to_string())
            .args(["--log-level", if self.debug { "debug" } else { "info" }])
            .env("PYTHONPATH", &code)
            .env("OLLMLX_RUNNER_TOKEN", &token)
            .env("HF_HUB_OFFLINE", "1")
            .env("TOKENIZERS_PARALLELISM", "false")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MLX_PTX_CACHE_DIR", self.home.join("cache").join("mlx-ptx"));
        tracing::info!(model = %label, python = %python.display(), "starting MLX runner");
        let (process, stdout) = ChildProcess::spawn(cmd, &label).map_err(|e| {
            RunnerError::Spawn(format!(
                "cannot start the MLX runner with {}: {e}",
                python.display()
            ))
        })?;
        let runner = MlxRunner {
            process,
            base: String::new(),
            token,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| RunnerError::Spawn(e.to_string()))?,
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
    base: String,
    token: String,
    http: reqwest::Client,
    info: RunnerInfo,
}

impl MlxRunner {
    /// Reads the ready line, then polls health until the model is loaded and warmed up. Every
    /// wait races the child's exit and a stall timeout that restarts whenever the runner logs.
    async fn wait_ready(
        mut self,
        stdout: tokio::process::ChildStdout,
        timeout: Option<Duration>,
    ) -> Result<MlxRunner, (MlxRunner, RunnerError)> {
        let started = Instant::now();
        let stalled = |p: &ChildProcess| {
            timeout.is_some_and(|t| p.last_activity().max(started).elapsed() > t)
        };
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
                        // stdout closed: the process is exiting; let the exit arm report it.
                        let _ = tokio::time::timeout(Duration::from_secs(5), self.process.exited()).await;
                        let e = self.load_error("the MLX runner exited before it was ready");
                        return Err((self, e));
                    }
                },
                _ = tokio::time::sleep(HEALTH_POLL) => {
                    if stalled(&self.process) {
                        let e = self.timeout_error(timeout);
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
        self.base = format!("http://{}:{}", listening.host, listening.port);
        // Keep draining stdout so a chatty library can never block the runner on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        // 2. Health until ok.
        let mut phase = String::new();
        let mut phase_changed = Instant::now();
        loop {
            if !self.process.is_alive() {
                let e = self.load_error("the MLX runner exited while loading the model");
                return Err((self, e));
            }
            match self.health().await {
                Ok(h) if h.status == "ok" => break,
                Ok(h) if h.status == "error" => {
                    let msg = h.error.unwrap_or_else(|| "unknown error".into());
                    let e = RunnerError::Load {
                        message: format!("failed to load the model: {msg}"),
                    };
                    return Err((self, e));
                }
                Ok(h) => {
                    let p = h.phase.unwrap_or_default();
                    if p != phase {
                        phase = p;
                        phase_changed = Instant::now();
                    }
                }
                Err(_) => {} // not answering yet: keep polling
            }
            let quiet_since = self.process.last_activity().max(phase_changed).max(started);
            if timeout.is_some_and(|t| quiet_since.elapsed() > t) {
                let e = self.timeout_error(timeout);
                return Err((self, e));
            }
            tokio::select! {
                _ = self.process.exited() => {}
                _ = tokio::time::sleep(HEALTH_POLL) => {}
            }
        }
        // 3. Facts.
        match self.get_json::<Status>("/v1/status").await {
            Ok(s) => {
                self.info = RunnerInfo {
                    pid: Some(self.process.pid()),
                    context_length: s.context_length,
                    backend: s.backend,
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

    fn load_error(&self, what: &str) -> RunnerError {
        let last = self.process.last_error();
        RunnerError::Load {
            message: if last.is_empty() {
                what.to_owned()
            } else {
                format!("{what}: {last}")
            },
        }
    }

    fn timeout_error(&self, timeout: Option<Duration>) -> RunnerError {
        let t = timeout.unwrap_or_default();
        self.load_error(&format!(
            "timed out waiting for the model to load: no progress for {}s (OLLAMA_LOAD_TIMEOUT)",
            t.as_secs_f64()
        ))
    }

    async fn health(&self) -> Result<Health, reqwest::Error> {
        self.http
            .get(format!("{}/v1/health", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_millis(500))
            .send()
            .await?
            .json()
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RunnerError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        self.decode(resp).await
    }

    async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, RunnerError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        self.decode(resp).await
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, RunnerError> {
        let resp = self.check_status(resp).await?;
        resp.json()
            .await
            .map_err(|e| RunnerError::Failed(format!("bad reply from the MLX runner: {e}")))
    }

    /// Maps a non-2xx reply to the error it carries.
    async fn check_status(
        &self,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, RunnerError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<crate::api::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(if status.is_client_error() {
            RunnerError::Rejected {
                status: status.as_u16(),
                message,
            }
        } else {
            RunnerError::Failed(message)
        })
    }

    /// A failed connection or read: the runner died, or something broke in between.
    fn transport_error(&self, e: impl std::fmt::Display) -> RunnerError {
        if self.process.is_alive() {
            RunnerError::Failed(e.to_string())
        } else {
            RunnerError::Exited {
                last_error: self.process.last_error(),
            }
        }
    }
}

#[async_trait::async_trait]
impl Runner for MlxRunner {
    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError> {
        let resp = self
            .http
            .post(format!("{}/v1/completion", self.base))
            .bearer_auth(&self.token)
            .json(&CompletionBody::new(&req))
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let resp = self.check_status(resp).await?;
        let bytes = resp.bytes_stream().map_err(std::io::Error::other);
        let lines = FramedRead::new(
            StreamReader::new(bytes),
            LinesCodec::new_with_max_length(MAX_LINE),
        );
        // The stream owns the HTTP response: dropping it closes the connection, and the runner
        // cancels the sequence at its next step.
        let alive = self.process.clone_exit_watch();
        let last_error = self.process.log_handle();
        let stream = futures_util::stream::unfold((lines, false), move |(mut lines, finished)| {
            let alive = alive.clone();
            let last_error = last_error.clone();
            async move {
                if finished {
                    return None;
                }
                let died = || {
                    // Give the reaper a moment: a killed runner's socket closes just before
                    // its exit status is collected.
                    RunnerError::Exited {
                        last_error: last_error.last_error(),
                    }
                };
                let item = match lines.next().await {
                    Some(Ok(line)) if line.trim().is_empty() => {
                        return Some((Ok(None), (lines, false)))
                    }
                    Some(Ok(line)) => match serde_json::from_str::<Event>(&line) {
                        Ok(ev) => match ev.into_runner_event() {
                            Ok(ev) => {
                                let done = matches!(ev, super::RunnerEvent::Done(_));
                                return Some((Ok(Some(ev)), (lines, done)));
                            }
                            Err(msg) => Err(RunnerError::Failed(msg)),
                        },
                        Err(e) => Err(RunnerError::Failed(format!(
                            "bad line from the MLX runner: {e}"
                        ))),
                    },
                    Some(Err(e)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if alive.borrow().is_some() {
                            Err(died())
                        } else {
                            Err(RunnerError::Failed(e.to_string()))
                        }
                    }
                    None => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if alive.borrow().is_some() {
                            Err(died())
                        } else {
                            Err(RunnerError::Failed(
                                "the MLX runner ended the stream without a final event".into(),
                            ))
                        }
                    }
                };
                Some((item.map(|_: ()| None), (lines, true)))
            }
        })
        .filter_map(
            |r: Result<Option<super::RunnerEvent>, RunnerError>| async move { r.transpose() },
        );
        Ok(Box::pin(stream))
    }

    async fn tokenize(&self, text: &str) -> Result<Vec<i64>, RunnerError> {
        let body = protocol::TokenizeBody {
            text,
            add_special: false,
        };
        Ok(self
            .post_json::<_, protocol::Tokens>("/v1/tokenize", &body)
            .await?
            .tokens)
    }

    async fn detokenize(&self, tokens: &[i64]) -> Result<String, RunnerError> {
        let body = protocol::DetokenizeBody { tokens };
        Ok(self
            .post_json::<_, protocol::Text>("/v1/detokenize", &body)
            .await?
            .text)
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
