//! Runners: the processes that hold a model and generate tokens. The scheduler and the routes see
//! only the [`Runner`] trait and create runners through a [`RunnerFactory`], so the MLX runner
//! (a Python `mlx_lm` process) and the llama.cpp runner (`llama-server`) are interchangeable, and
//! tests swap in a fake.

pub mod cluster;
pub mod embedded;
pub mod endpoint;
#[cfg(test)]
pub mod fake;
pub mod leftovers;
pub mod llamacpp;
pub mod mlx;
pub mod process;
pub mod protocol;
pub mod python;
pub mod ready;

use crate::api::{Logprob, Message};
use crate::store::LocalModel;
use futures_util::Stream;
pub use protocol::PrefixCacheStats;
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;

/// Sampling and length options, fully resolved (request over model over defaults) and validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SamplingOptions {
    /// Tokens kept at the start when a prompt is cut or the context shifts (after the BOS).
    pub num_keep: i64,
    pub num_predict: i64,
    pub temperature: f64,
    pub top_k: i64,
    pub top_p: f64,
    pub min_p: f64,
    pub seed: i64,
    pub stop: Vec<String>,
    pub repeat_penalty: f64,
    pub repeat_last_n: i64,
    pub presence_penalty: f64,
    pub frequency_penalty: f64,
    pub num_ctx: u64,
}

/// What an image is taken to cost when fitting a chat into `num_ctx` (Ollama's figure): the real
/// cost is known only once the runner has read the image.
pub const IMAGE_TOKENS: usize = 768;

/// Ollama's refusal of a prompt that does not fit when `shift` is off (llm/llama_server.go).
pub const NO_SHIFT: &str = "the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length";

/// llama-server's refusal of a prompt that does not fit, which Ollama passes on when
/// `truncate` is off (both runners answer it).
pub fn exceeds_context(tokens: usize, num_ctx: u64) -> String {
    format!(
        "request ({tokens} tokens) exceeds the available context size ({num_ctx} tokens), try increasing it"
    )
}

/// Ollama's cut of an over-long prompt: the first `keep` tokens and the end, freeing half of
/// the rest of the context for the reply (as its first context shift would). `keep` counts the
/// BOS; it is at most `num_ctx - 1`.
pub fn cut_prompt<T: Clone>(prompt: &[T], num_ctx: usize, keep: usize) -> Vec<T> {
    let keep = keep.min(num_ctx.saturating_sub(1));
    let limit = num_ctx - ((num_ctx - keep) / 2).max(1);
    let mut out = prompt[..keep].to_vec();
    out.extend_from_slice(&prompt[prompt.len() - (limit - keep)..]);
    out
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// Rendered with the model's own chat template.
    Messages(Vec<Message>),
    /// Used as is (`raw: true`).
    Raw(String),
}

/// A validated completion request (the only kind a runner accepts).
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub id: String,
    pub input: PromptInput,
    /// Tokens put before the prompt (Ollama's deprecated `context`).
    pub context: Option<Vec<i64>>,
    pub options: SamplingOptions,
    /// Fit an over-long prompt into `num_ctx` (drop old messages, then cut tokens, keeping
    /// `num_keep` and the end) instead of refusing the request.
    pub truncate: bool,
    /// When generation fills `num_ctx`, drop half of the context after `num_keep` and go on
    /// (a context shift) instead of ending with `length`.
    pub shift: bool,
    /// Return prompt + output tokens in the final event (generate's `context`).
    pub return_context: bool,
    /// Tool definitions for the chat template (messages input only).
    pub tools: Vec<serde_json::Value>,
    /// Extra chat-template variables (`enable_thinking`, `reasoning_effort`).
    pub template_kwargs: serde_json::Map<String, serde_json::Value>,
    /// Constrained decoding: `"json"` (any JSON object) or a JSON schema.
    pub format: Option<serde_json::Value>,
    /// The constraint applies only after the model has generated this text (its thinking).
    pub constrain_after: Option<String>,
    /// Per-token log probabilities with this many alternatives (`None`: not asked for).
    pub logprobs: Option<u32>,
    /// The thinking tags: the runner reports whether the prompt ends inside the reasoning.
    pub think_tags: Option<(String, String)>,
    /// Texts the runner must keep in its output even when they are special tokens.
    pub keep_markers: Vec<String>,
    /// Text put after the rendered prompt as the start of the reply (a forced tool call opens
    /// with its marker).
    pub prefill: Option<String>,
    /// Images (base64) of a [`PromptInput::Raw`] prompt, which refers to them as Ollama's
    /// `[img-N]` markers (N indexes this list; images it does not mention go first). Message
    /// input carries its images in the messages.
    pub images: Vec<String>,
}

impl CompletionRequest {
    /// A plain request: no tools, no constraint, no logprobs.
    pub fn new(id: String, input: PromptInput, options: SamplingOptions) -> CompletionRequest {
        CompletionRequest {
            id,
            input,
            context: None,
            options,
            truncate: true,
            shift: true,
            return_context: false,
            tools: Vec::new(),
            template_kwargs: serde_json::Map::new(),
            format: None,
            constrain_after: None,
            logprobs: None,
            think_tags: None,
            keep_markers: Vec::new(),
            prefill: None,
            images: Vec::new(),
        }
    }
}

/// The final event of a completion, with metrics measured by the runner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Done {
    /// `stop`, `length` or `cancel`.
    pub done_reason: String,
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
    pub context: Option<Vec<i64>>,
    /// The request's stop string that ended generation, when one did.
    pub stop_sequence: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    /// The prompt was accepted. `thinking`: it ends with the opening thinking tag, so the output
    /// starts inside the reasoning.
    Start {
        prompt_tokens: u64,
        thinking: bool,
    },
    /// Raw generated text (marker tokens included) and, when asked, the log probabilities of the
    /// tokens it came from.
    Chunk {
        content: String,
        logprobs: Vec<Logprob>,
    },
    Done(Done),
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<RunnerEvent, RunnerError>> + Send>>;

/// Embedding vectors (as the runner computed them; the server normalises) and the tokens read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedResult {
    pub embeddings: Vec<Vec<f32>>,
    pub prompt_tokens: u64,
}

/// Facts a runner learned while loading.
#[derive(Debug, Clone, Default)]
pub struct RunnerInfo {
    pub pid: Option<u32>,
    /// The model's own context limit.
    pub context_length: Option<u64>,
    /// `cpu`, `metal` or `cuda`: decides how `/api/ps` splits memory between CPU and GPU.
    pub backend: String,
    /// The load-time options the runner was started with. `None`: the runner takes any (MLX
    /// runners size their cache per request), so option changes never force a reload.
    pub load: Option<LoadOptions>,
    /// Where the model runs when it is split across machines (`None`: here alone).
    pub distributed: Option<crate::api::Distributed>,
}

/// Options fixed when a runner starts; a request asking for different ones reloads it (Ollama's
/// `needsReload`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Context per parallel slot.
    pub num_ctx: u64,
    pub num_batch: Option<u64>,
    pub num_gpu: Option<i64>,
    pub num_thread: Option<u64>,
    pub use_mmap: Option<bool>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RunnerError {
    /// The runner could not be started at all (no Python, no binary).
    #[error("{0}")]
    Spawn(String),
    /// Not available yet, try again (the Python runtime is being installed).
    #[error("{0}")]
    Unavailable(String),
    /// The model failed to load.
    #[error("{message}")]
    Load { message: String },
    /// The runner process died.
    #[error("model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollmlx server logs for details{}", detail(.last_error))]
    Exited { last_error: String },
    /// The runner refused the request (bad options, prompt too long): a client error.
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// The runner failed while generating.
    #[error("an error was encountered while running the model: {0}")]
    Failed(String),
}

fn detail(last: &str) -> String {
    if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    }
}

/// A loaded model in a runner process.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    /// Starts a completion. Errors before the first event (a refused request) come back here;
    /// errors after it come as the stream's last item. Dropping the stream cancels generation.
    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError>;
    async fn tokenize(&self, text: &str) -> Result<Vec<i64>, RunnerError>;
    /// The number of tokens of a chat rendered with the model's own (Jinja) template.
    async fn count_chat(
        &self,
        messages: &[Message],
        tools: &[serde_json::Value],
        template_kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, RunnerError> {
        let _ = (messages, tools, template_kwargs);
        Err(RunnerError::Rejected {
            status: 400,
            message: "this model cannot count a chat's tokens".into(),
        })
    }
    async fn detokenize(&self, tokens: &[i64]) -> Result<String, RunnerError>;
    /// Embeds each input (mean-pooled or the model's own pooling). Inputs longer than `num_ctx`
    /// tokens are cut when `truncate`, refused (400) otherwise.
    async fn embed(
        &self,
        inputs: &[String],
        truncate: bool,
        num_ctx: u64,
    ) -> Result<EmbedResult, RunnerError> {
        let _ = (inputs, truncate, num_ctx);
        Err(RunnerError::Rejected {
            status: 400,
            message: "this model does not support embeddings".into(),
        })
    }
    fn info(&self) -> &RunnerInfo;
    /// The memory the runner uses now, as it measures it (MLX: its allocator's active plus
    /// cached bytes); `None` when it cannot say.
    async fn memory(&self) -> Option<u64> {
        None
    }
    /// What the runner reports about itself now, for `/metrics`. The default asks only for
    /// [`Runner::memory`]; runners with more to say (MLX's prefix cache) answer in one call.
    async fn status(&self) -> RunnerStatus {
        RunnerStatus {
            memory: self.memory().await,
            prefix_cache: None,
        }
    }
    /// Lowers the runner's prefix-cache budget, dropping least recently used entries.
    async fn shrink_cache(&self, _max_bytes: u64) -> Result<(), RunnerError> {
        Ok(())
    }
    /// False once the process has exited.
    fn is_alive(&self) -> bool;
    /// Resolves when the process exits (for whatever reason).
    async fn exited(&self);
    /// Stops the process: SIGTERM, a grace period, then SIGKILL.
    async fn close(&self);
}

/// A runner's own report on itself (see [`Runner::status`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerStatus {
    /// As [`Runner::memory`].
    pub memory: Option<u64>,
    pub prefix_cache: Option<PrefixCacheStats>,
}

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub model: LocalModel,
    pub num_parallel: usize,
    pub options: LoadOptions,
    /// The MLX prefix-cache budget the scheduler gives this runner; `None`: the factory's.
    pub prefix_cache_bytes: Option<u64>,
}

/// Creates runners; the test seam of the scheduler.
#[async_trait::async_trait]
pub trait RunnerFactory: Send + Sync {
    async fn start(&self, spec: LoadSpec) -> Result<Arc<dyn Runner>, RunnerError>;
}

/// Picks the runner for a model's format: the one seam where GGUF and MLX part ways.
pub struct DispatchFactory {
    pub mlx: Arc<dyn RunnerFactory>,
    pub gguf: Arc<dyn RunnerFactory>,
}

#[async_trait::async_trait]
impl RunnerFactory for DispatchFactory {
    async fn start(&self, spec: LoadSpec) -> Result<Arc<dyn Runner>, RunnerError> {
        match spec.model.format {
            crate::store::format::Format::Mlx(_) => self.mlx.start(spec).await,
            crate::store::format::Format::Gguf(_) => self.gguf.start(spec).await,
        }
    }
}

#[cfg(test)]
mod cut_tests {
    use super::cut_prompt;

    #[test]
    fn cut_keeps_the_start_and_frees_half_of_the_rest() {
        let prompt: Vec<u32> = (0..100).collect();
        // 32 - (32 - 4) / 2 = 18 tokens: the first 4 and the last 14.
        let cut = cut_prompt(&prompt, 32, 4);
        assert_eq!(cut[..4], prompt[..4]);
        assert_eq!(cut[4..], prompt[86..]);
        // A prompt exactly num_ctx long is cut too: it leaves no room to generate.
        assert_eq!(cut_prompt(&prompt[..32], 32, 0).len(), 16);
        // keep is at most num_ctx - 1, and at least one token is freed.
        assert_eq!(cut_prompt(&prompt, 8, 100), prompt[..7]);
    }
}
