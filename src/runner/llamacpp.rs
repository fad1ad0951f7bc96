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

use super::endpoint::Endpoint;
use super::process::ChildProcess;
use super::ready::{self, Probe};
use super::{
    CompletionRequest, Done, EmbedResult, EventStream, LoadSpec, PromptInput, Runner, RunnerError,
    RunnerEvent, RunnerFactory, RunnerInfo,
};
use crate::api::Message;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
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

        let mut cmd = Command::new(&binary);
        cmd.arg("--model")
            .arg(&path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--no-webui", "--offline", "--no-context-shift"])
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
        let (process, stdout) = ChildProcess::spawn(cmd, &label)
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
        Ok(Arc::new(LlamaRunner {
            process,
            endpoint,
            info,
            ubatch,
            media_marker,
        }))
    }
}

/// A free loopback port (bind to 0, read it, release it: llama-server binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

pub struct LlamaRunner {
    process: ChildProcess,
    endpoint: Endpoint,
    info: RunnerInfo,
    /// The physical batch: the longest input one embedding can take.
    ubatch: u64,
    /// Where an image goes in a prompt (`LLAMA_MEDIA_MARKER`).
    media_marker: String,
}

/// A prompt as llama-server takes it: token ids, or text with media markers and the images.
#[derive(Debug, Clone)]
enum Prompt {
    Tokens,
    Media { text: String, images: Vec<String> },
}

/// A data URI that stands for an image while a chat is only rendered: `/apply-template` decodes
/// it but never reads the picture, so the real (large) images need not travel each time.
const PLACEHOLDER_IMAGE: &str = "data:image/png;base64,AAAA";

impl LlamaRunner {
    async fn tokens(&self, text: &str, add_special: bool) -> Result<Vec<i64>, RunnerError> {
        let v: Value = self
            .endpoint
            .post_json(
                "/tokenize",
                &json!({"content": text, "add_special": add_special, "parse_special": true}),
            )
            .await?;
        Ok(serde_json::from_value(v["tokens"].clone()).unwrap_or_default())
    }

    /// Starts a `/completion`. This llama-server fails a prompt with images when the prompt it
    /// has cached diverges from it just after an image that another image follows (its
    /// `keep_first` looks for a chunk where none starts: "Chunk not found", a 500, before any
    /// output and with the cache untouched). That request is retried once without the cache.
    async fn start(&self, body: &Value) -> Result<reqwest::Response, RunnerError> {
        match self.endpoint.post("/completion", body).await {
            Err(RunnerError::Failed(m)) if m.contains("Chunk not found") => {
                tracing::debug!("llama-server could not reuse its cached prompt; retrying without");
                let mut body = body.clone();
                body["cache_prompt"] = json!(false);
                self.endpoint.post("/completion", &body).await
            }
            other => other,
        }
    }

    /// Tokenizes a prompt: all of it, or with images, its text without the markers (the images
    /// are then counted as `IMAGE_TOKENS` each in the second number, for truncation).
    async fn count(
        &self,
        text: &str,
        images: usize,
        add_special: bool,
    ) -> Result<(Vec<i64>, usize), RunnerError> {
        if images == 0 {
            let tokens = self.tokens(text, add_special).await?;
            let n = tokens.len();
            return Ok((tokens, n));
        }
        let tokens = self
            .tokens(&text.replace(&self.media_marker, ""), add_special)
            .await?;
        let n = tokens.len() + images * crate::server::infer::IMAGE_TOKENS;
        Ok((tokens, n))
    }

    /// Renders messages with the GGUF's own chat template and tokenizes the result, dropping the
    /// oldest messages (never system messages, never the last) while it does not fit `limit`
    /// and `truncate` allows. Returns the tokens (of the text alone when there are images), the
    /// prompt, and the kept messages' images in the order of their markers.
    async fn render(
        &self,
        messages: &[Message],
        req: &CompletionRequest,
        limit: usize,
    ) -> Result<(Vec<i64>, String, Vec<String>), RunnerError> {
        let mut kept: Vec<&Message> = messages.iter().collect();
        loop {
            let wire: Vec<Value> = kept.iter().map(|m| openai_message(m)).collect();
            let images: Vec<String> = kept.iter().flat_map(|m| m.images.clone()).collect();
            let mut body = json!({"messages": wire});
            if !req.tools.is_empty() {
                body["tools"] = json!(req.tools);
            }
            if !req.template_kwargs.is_empty() {
                body["chat_template_kwargs"] = json!(req.template_kwargs);
            }
            let v: Value = self.endpoint.post_json("/apply-template", &body).await?;
            let prompt = v["prompt"].as_str().unwrap_or_default().to_owned();
            let placed = prompt.matches(self.media_marker.as_str()).count();
            if placed != images.len() {
                return Err(RunnerError::Rejected {
                    status: 400,
                    message: format!(
                        "the model's chat template placed {placed} of {} images",
                        images.len()
                    ),
                });
            }
            let (tokens, n) = self.count(&prompt, images.len(), true).await?;
            if n < limit || !req.truncate {
                return Ok((tokens, prompt, images));
            }
            let last = kept.len().saturating_sub(1);
            match kept.iter().position(|m| m.role != "system") {
                Some(i) if i < last => {
                    kept.remove(i);
                }
                _ => return Ok((tokens, prompt, images)),
            }
        }
    }
}

/// The JSON schema llama-server is to enforce: Ollama's `"json"` is any JSON object.
fn json_schema(format: &Value) -> Value {
    match format {
        Value::String(_) => json!({"type": "object"}),
        schema => schema.clone(),
    }
}

/// One entry of llama-server's `completion_probabilities`, keeping `top_n` alternatives.
fn logprob(p: &Value, top_n: usize) -> crate::api::Logprob {
    let token = |v: &Value| crate::api::TokenLogprob {
        token: v["token"].as_str().unwrap_or_default().to_owned(),
        logprob: v["logprob"].as_f64().unwrap_or(f64::NEG_INFINITY),
        bytes: serde_json::from_value(v["bytes"].clone()).unwrap_or_default(),
    };
    let first = token(p);
    crate::api::Logprob {
        token: first.token,
        logprob: first.logprob,
        bytes: first.bytes,
        top_logprobs: p["top_logprobs"]
            .as_array()
            .map(|t| t.iter().take(top_n).map(token).collect())
            .unwrap_or_default(),
    }
}

/// An Ollama message as llama-server's OpenAI-style chat template input. Images become
/// `image_url` parts before the text (where Ollama puts their markers), each a placeholder that
/// `/apply-template` turns into the media marker.
fn openai_message(m: &Message) -> Value {
    let content = if m.images.is_empty() {
        json!(m.content)
    } else {
        let mut parts: Vec<Value> = m
            .images
            .iter()
            .map(|_| json!({"type": "image_url", "image_url": {"url": PLACEHOLDER_IMAGE}}))
            .collect();
        if !m.content.is_empty() {
            parts.push(json!({"type": "text", "text": m.content}));
        }
        json!(parts)
    };
    let mut v = json!({"role": m.role, "content": content});
    if !m.thinking.is_empty() {
        v["reasoning_content"] = json!(m.thinking);
    }
    if !m.tool_calls.is_empty() {
        // llama.cpp wants OpenAI's shape: each call typed, arguments as an object or a string.
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(o) = c.as_object_mut() {
                    o.insert("type".into(), json!("function"));
                    let f = o.entry("function").or_insert_with(|| json!({}));
                    if f.get("arguments").is_none_or(Value::is_null) {
                        f["arguments"] = json!({});
                    }
                }
                c
            })
            .collect();
        v["tool_calls"] = json!(calls);
    }
    if !m.tool_name.is_empty() {
        v["name"] = json!(m.tool_name);
    }
    if !m.tool_call_id.is_empty() {
        v["tool_call_id"] = json!(m.tool_call_id);
    }
    v
}

#[async_trait::async_trait]
impl Runner for LlamaRunner {
    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError> {
        let o = &req.options;
        let num_ctx = o.num_ctx as usize;
        let mut prompt = req.context.clone().unwrap_or_default();
        let (tokens, text, images) = match &req.input {
            PromptInput::Raw(text) if req.images.is_empty() => (
                self.tokens(text, req.context.is_none()).await?,
                text.clone(),
                Vec::new(),
            ),
            PromptInput::Raw(text) => {
                let (text, images) = place_images(text, &req.images, &self.media_marker);
                let (tokens, _) = self
                    .count(&text, images.len(), req.context.is_none())
                    .await?;
                (tokens, text, images)
            }
            PromptInput::Messages(m) => {
                self.render(m, &req, num_ctx.saturating_sub(prompt.len()))
                    .await?
            }
        };
        prompt.extend(tokens);
        if let Some(p) = &req.prefill {
            prompt.extend(self.tokens(p, false).await?);
        }
        let thinking = req
            .think_tags
            .as_ref()
            .is_some_and(|(open, _)| text.trim_end().ends_with(open.as_str()));
        if prompt.is_empty() {
            return Err(RunnerError::Rejected {
                status: 400,
                message: "the prompt is empty".into(),
            });
        }
        if prompt.len() >= num_ctx {
            return Err(RunnerError::Rejected {
                status: 400,
                message: format!(
                    "the input length exceeds the context length ({} tokens, num_ctx {num_ctx} leaves no room to generate)",
                    prompt.len()
                ),
            });
        }
        let media = if images.is_empty() {
            Prompt::Tokens
        } else {
            // The given start of the reply follows the rendered prompt, as with token ids.
            let text = format!("{text}{}", req.prefill.as_deref().unwrap_or(""));
            // llama-server needs text after the last image to start generating from.
            if text.ends_with(self.media_marker.as_str()) {
                return Err(RunnerError::Rejected {
                    status: 400,
                    message: "the prompt cannot end with an image: put text after it".into(),
                });
            }
            let before = match &req.context {
                Some(c) if !c.is_empty() => self.detokenize(c).await?,
                _ => String::new(),
            };
            Prompt::Media {
                text: before + &text,
                images,
            }
        };
        // Generation stops at the context limit with done_reason "length", as on MLX (with
        // images, llama-server stops there by itself: their tokens are not counted here).
        let room = (num_ctx - prompt.len()) as i64;
        let n_predict = if o.num_predict > 0 {
            o.num_predict.min(room)
        } else {
            room
        };
        let mut body = json!({
            "prompt": wire_prompt(&media, &prompt, ""),
            "stream": true,
            "n_predict": n_predict,
            "temperature": o.temperature,
            "top_k": o.top_k,
            "top_p": o.top_p,
            "min_p": o.min_p,
            "stop": o.stop,
            "repeat_penalty": o.repeat_penalty,
            "repeat_last_n": if o.repeat_last_n < 0 { o.num_ctx as i64 } else { o.repeat_last_n },
            "presence_penalty": o.presence_penalty,
            "frequency_penalty": o.frequency_penalty,
            "cache_prompt": true,
            "return_tokens": true,
        });
        if o.seed >= 0 {
            body["seed"] = json!(o.seed);
        }
        if !req.keep_markers.is_empty() {
            body["preserved_tokens"] = json!(req.keep_markers);
        }
        if let Some(f) = &req.format {
            body["json_schema"] = json_schema(f);
        }
        if let Some(n) = req.logprobs {
            // llama-server reports probabilities only with at least one alternative.
            body["n_probs"] = json!(n.max(1));
        }
        let top_n = req.logprobs.unwrap_or(0) as usize;
        // A thinking model with a format reasons freely first: llama-server cannot start a
        // grammar after free text, so generation stops at the closing tag and resumes from there
        // with the schema (what Ollama does too).
        let two_phase = match (&req.format, &req.constrain_after) {
            (Some(_), Some(close)) => Some(close.clone()),
            _ => None,
        };
        let mut first_body = body.clone();
        if let Some(close) = &two_phase {
            if let Some(o) = first_body.as_object_mut() {
                o.remove("json_schema");
            }
            let mut stop = o.stop.clone();
            stop.push(close.clone());
            first_body["stop"] = json!(stop);
        }
        let resp = self.start(&first_body).await?;
        let first = self.endpoint.events(
            resp,
            sse_parser(SseOptions {
                prompt: prompt.clone(),
                return_context: req.return_context,
                top_n,
                thinking: Some(thinking),
                reveal_stop: two_phase.clone(),
            }),
        );
        Ok(match two_phase {
            None => first,
            Some(close) => then_constrained(
                self.endpoint.clone(),
                first,
                SecondPhase {
                    close,
                    prompt,
                    media,
                    body,
                    n_predict,
                    top_n,
                    return_context: req.return_context,
                },
            ),
        })
    }

    async fn tokenize(&self, text: &str) -> Result<Vec<i64>, RunnerError> {
        self.tokens(text, false).await
    }

    async fn detokenize(&self, tokens: &[i64]) -> Result<String, RunnerError> {
        let v: Value = self
            .endpoint
            .post_json("/detokenize", &json!({"tokens": tokens}))
            .await?;
        Ok(v["content"].as_str().unwrap_or_default().to_owned())
    }

    async fn embed(
        &self,
        inputs: &[String],
        truncate: bool,
        num_ctx: u64,
    ) -> Result<EmbedResult, RunnerError> {
        let mut batch = Vec::with_capacity(inputs.len());
        let mut total = 0u64;
        let limit = num_ctx.min(self.ubatch);
        for text in inputs {
            let mut ids = self.tokens(text, true).await?;
            if ids.len() as u64 > limit {
                if !truncate {
                    return Err(RunnerError::Rejected {
                        status: 400,
                        message: format!(
                            "the input length exceeds the context length ({} tokens > {limit})",
                            ids.len()
                        ),
                    });
                }
                ids.truncate(limit as usize);
            }
            total += ids.len() as u64;
            batch.push(ids);
        }
        if batch.is_empty() {
            return Ok(EmbedResult::default());
        }
        let v: Value = self
            .endpoint
            .post_json("/v1/embeddings", &json!({"input": batch}))
            .await?;
        let mut data: Vec<(u64, Vec<f32>)> = v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        let idx = d["index"].as_u64().unwrap_or(0);
                        let emb =
                            serde_json::from_value(d["embedding"].clone()).unwrap_or_default();
                        (idx, emb)
                    })
                    .collect()
            })
            .unwrap_or_default();
        data.sort_by_key(|(i, _)| *i);
        Ok(EmbedResult {
            embeddings: data.into_iter().map(|(_, e)| e).collect(),
            prompt_tokens: total,
        })
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

/// How to read one llama-server `/completion` SSE stream.
struct SseOptions {
    prompt: Vec<i64>,
    return_context: bool,
    /// Alternatives kept per token when logprobs were asked for.
    top_n: usize,
    /// `Some`: emit the start event (whether the prompt opened the reasoning).
    thinking: Option<bool>,
    /// When generation stops on this stop word, emit it as text before the end.
    reveal_stop: Option<String>,
}

/// Turns llama-server's SSE lines into runner events.
fn sse_parser(o: SseOptions) -> super::endpoint::LineParser {
    let prompt_len = o.prompt.len() as u64;
    let generated = Arc::new(Mutex::new(Vec::<i64>::new()));
    let context_prefix = o.return_context.then_some(o.prompt);
    let mut start = o.thinking;
    Box::new(move |line: &str| -> Result<Vec<RunnerEvent>, RunnerError> {
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(Vec::new());
        };
        let v: Value = serde_json::from_str(data.trim())
            .map_err(|e| RunnerError::Failed(format!("bad line from llama-server: {e}")))?;
        if let Some(e) = v.get("error") {
            let message = e["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| e.to_string());
            // Too long a prompt (images count only once llama-server has read them) or an
            // unreadable image is the client's doing.
            return Err(
                if e["code"] == 400 || e["type"] == "exceed_context_size_error" {
                    RunnerError::Rejected {
                        status: 400,
                        message,
                    }
                } else {
                    RunnerError::Failed(message)
                },
            );
        }
        let mut out = Vec::new();
        if let Some(thinking) = start.take() {
            out.push(RunnerEvent::Start {
                prompt_tokens: prompt_len,
                thinking,
            });
        }
        if let Some(toks) = v["tokens"].as_array() {
            generated
                .lock()
                .unwrap()
                .extend(toks.iter().filter_map(Value::as_i64));
        }
        let content = v["content"].as_str().unwrap_or_default();
        let logprobs = v["completion_probabilities"]
            .as_array()
            .map(|ps| ps.iter().map(|p| logprob(p, o.top_n)).collect())
            .unwrap_or_default();
        if !content.is_empty() || v["completion_probabilities"].is_array() {
            out.push(RunnerEvent::Chunk {
                content: content.to_owned(),
                logprobs,
            });
        }
        if v["stop"].as_bool() == Some(true) {
            let word = v["stopping_word"].as_str().unwrap_or_default();
            if v["stop_type"] == "word" && o.reveal_stop.as_deref() == Some(word) {
                out.push(RunnerEvent::Chunk {
                    content: word.to_owned(),
                    logprobs: Vec::new(),
                });
            }
            let t = &v["timings"];
            let ms_to_ns = |k: &str| (t[k].as_f64().unwrap_or(0.0) * 1e6) as u64;
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            let reason = match v["stop_type"].as_str() {
                Some("limit") => "length",
                _ => "stop",
            };
            out.push(RunnerEvent::Done(Done {
                done_reason: reason.into(),
                prompt_eval_count: n("cache_n") + n("prompt_n"),
                prompt_eval_duration: ms_to_ns("prompt_ms"),
                eval_count: n("predicted_n"),
                eval_duration: ms_to_ns("predicted_ms"),
                context: context_prefix.clone().map(|mut c| {
                    c.extend(generated.lock().unwrap().iter());
                    c
                }),
            }));
        }
        Ok(out)
    })
}

/// The `prompt` of a `/completion` body: the ids, or the text (with `more` after it) and images.
fn wire_prompt(media: &Prompt, tokens: &[i64], more: &str) -> Value {
    match media {
        Prompt::Tokens => json!(tokens),
        Prompt::Media { text, images } => {
            json!({"prompt_string": format!("{text}{more}"), "multimodal_data": images})
        }
    }
}

/// A raw prompt with Ollama's `[img-N]` markers as llama-server's: each marker naming one of
/// `images` becomes `marker`, and the images come back in the order of their markers. Images the
/// text does not mention go first.
fn place_images(text: &str, images: &[String], marker: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut order = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("[img-") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let id = after[..digits].parse::<usize>().ok();
        match id.filter(|i| *i < images.len() && after[digits..].starts_with(']')) {
            Some(i) => {
                out.push_str(marker);
                order.push(i);
                rest = &after[digits + 1..];
            }
            None => {
                out.push_str("[img-");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let unmentioned: Vec<usize> = (0..images.len()).filter(|i| !order.contains(i)).collect();
    let text = marker.repeat(unmentioned.len()) + &out;
    let ordered = unmentioned
        .into_iter()
        .chain(order)
        .map(|i| images[i].clone())
        .collect();
    (text, ordered)
}

/// The constrained half of a thinking request with a format.
struct SecondPhase {
    close: String,
    prompt: Vec<i64>,
    /// The prompt's text and images, when it has images.
    media: Prompt,
    /// The full request body (with `json_schema`).
    body: Value,
    n_predict: i64,
    top_n: usize,
    return_context: bool,
}

enum Phase {
    Free {
        events: EventStream,
        text: String,
        closed: bool,
        next: SecondPhase,
    },
    Constrained {
        events: EventStream,
        first: Done,
    },
    Over,
}

/// Runs the free (thinking) stream; when it stopped at the closing tag, continues from prompt +
/// reasoning with the schema, and ends with one `done` that counts both halves.
fn then_constrained(ep: Endpoint, events: EventStream, next: SecondPhase) -> EventStream {
    use futures_util::StreamExt;
    let state = Phase::Free {
        events,
        text: String::new(),
        closed: false,
        next,
    };
    Box::pin(futures_util::stream::unfold(state, move |state| {
        let ep = ep.clone();
        async move {
            match state {
                Phase::Over => None,
                Phase::Free {
                    mut events,
                    mut text,
                    mut closed,
                    next,
                } => match events.next().await? {
                    Ok(RunnerEvent::Chunk { content, logprobs }) => {
                        text.push_str(&content);
                        closed = content == next.close;
                        let item = Ok(RunnerEvent::Chunk { content, logprobs });
                        Some((
                            item,
                            Phase::Free {
                                events,
                                text,
                                closed,
                                next,
                            },
                        ))
                    }
                    Ok(RunnerEvent::Done(first)) if closed && first.done_reason == "stop" => {
                        match constrained(&ep, &text, &first, &next).await {
                            Ok(Some(events)) => {
                                let mut s = Phase::Constrained { events, first };
                                // Forward the second stream's first item.
                                let Phase::Constrained { events, first } = &mut s else {
                                    unreachable!()
                                };
                                let item = events.next().await?;
                                let done = matches!(item, Ok(RunnerEvent::Done(_)));
                                let item = item.map(|e| merge_done(e, first));
                                Some((item, if done { Phase::Over } else { s }))
                            }
                            Ok(None) => {
                                let mut d = first;
                                d.done_reason = "length".into();
                                Some((Ok(RunnerEvent::Done(d)), Phase::Over))
                            }
                            Err(e) => Some((Err(e), Phase::Over)),
                        }
                    }
                    other => {
                        let end = !matches!(other, Ok(RunnerEvent::Start { .. }));
                        let state = if end {
                            Phase::Over
                        } else {
                            Phase::Free {
                                events,
                                text,
                                closed,
                                next,
                            }
                        };
                        Some((other, state))
                    }
                },
                Phase::Constrained { mut events, first } => {
                    let item = events.next().await?;
                    let done = matches!(item, Ok(RunnerEvent::Done(_)) | Err(_));
                    let item = item.map(|e| merge_done(e, &first));
                    Some((
                        item,
                        if done {
                            Phase::Over
                        } else {
                            Phase::Constrained { events, first }
                        },
                    ))
                }
            }
        }
    }))
}

/// Starts the constrained half: `None` when the token budget is already spent.
async fn constrained(
    ep: &Endpoint,
    text: &str,
    first: &Done,
    next: &SecondPhase,
) -> Result<Option<EventStream>, RunnerError> {
    let left = next.n_predict - first.eval_count as i64;
    if left <= 0 {
        return Ok(None);
    }
    let v: Value = ep
        .post_json(
            "/tokenize",
            &json!({"content": text, "add_special": false, "parse_special": true}),
        )
        .await?;
    let mut prompt = next.prompt.clone();
    prompt.extend(
        v["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64),
    );
    let mut body = next.body.clone();
    body["prompt"] = wire_prompt(&next.media, &prompt, text);
    body["n_predict"] = json!(left);
    let resp = ep.post("/completion", &body).await?;
    Ok(Some(ep.events(
        resp,
        sse_parser(SseOptions {
            prompt,
            return_context: next.return_context,
            top_n: next.top_n,
            thinking: None,
            reveal_stop: None,
        }),
    )))
}

/// The second half's end event, counting the first half's prompt and tokens too.
fn merge_done(e: RunnerEvent, first: &Done) -> RunnerEvent {
    match e {
        RunnerEvent::Done(d) => RunnerEvent::Done(Done {
            done_reason: d.done_reason,
            prompt_eval_count: first.prompt_eval_count,
            prompt_eval_duration: first.prompt_eval_duration,
            eval_count: first.eval_count + d.eval_count,
            eval_duration: first.eval_duration + d.prompt_eval_duration + d.eval_duration,
            context: d.context,
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{openai_message, place_images, PLACEHOLDER_IMAGE};
    use crate::api::Message;
    use serde_json::json;

    #[test]
    fn ollama_image_markers_become_media_markers_in_their_order() {
        let images = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let (text, order) = place_images("x[img-2] y [img-0] [img-9] [img-x]", &images, "<M>");
        // Image 1 is not mentioned: it goes first. Unknown ids stay text.
        assert_eq!(text, "<M>x<M> y <M> [img-9] [img-x]");
        assert_eq!(order, ["b", "c", "a"]);
        let (text, order) = place_images("plain", &[], "<M>");
        assert_eq!((text.as_str(), order.len()), ("plain", 0));
    }

    #[test]
    fn images_become_content_parts_before_the_text() {
        let mut m = Message::new("user", "what is it?");
        m.images = vec!["aGk=".into()];
        let part = json!({"type": "image_url", "image_url": {"url": PLACEHOLDER_IMAGE}});
        assert_eq!(
            openai_message(&m)["content"],
            json!([part, {"type": "text", "text": "what is it?"}])
        );
        m.content.clear();
        assert_eq!(openai_message(&m)["content"], json!([part]));
        assert_eq!(openai_message(&Message::new("user", "hi"))["content"], "hi");
    }
}
