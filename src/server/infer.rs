//! The inference service behind `/api/generate` and `/api/chat`: resolve options, get a runner
//! from the scheduler, start the completion, and turn runner events into endpoint-neutral
//! [`Piece`]s. The stream it returns owns the scheduler lease and the runner connection, so
//! dropping it (the client went away) cancels generation and frees the runner.

use super::error::ServerError;
use super::state::AppState;
use crate::api::{KeepAlive, Logprob, Message, Metrics, Options, Think, ToolCall, ToolChoice};
use crate::output::OutputParser;
use crate::runner::{
    CompletionRequest, LoadOptions, PromptInput, RunnerEvent, SamplingOptions, IMAGE_TOKENS,
};
use crate::store::{LocalModel, ModelConfig};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Instant;

/// The end of a completion, in Ollama's terms.
#[derive(Debug, Clone, Default)]
pub struct DoneInfo {
    pub done_reason: String,
    pub metrics: Metrics,
    pub context: Option<Vec<i64>>,
    /// The request's stop string that ended generation, when one did.
    pub stop_sequence: Option<String>,
}

/// Output of one step, already split into Ollama's channels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub content: String,
    pub thinking: String,
    /// Whole calls, each once, in order.
    pub tool_calls: Vec<ToolCall>,
    pub logprobs: Vec<Logprob>,
}

impl Delta {
    pub fn text(content: impl Into<String>) -> Delta {
        Delta {
            content: content.into(),
            ..Default::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.content.is_empty()
            && self.thinking.is_empty()
            && self.tool_calls.is_empty()
            && self.logprobs.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum Piece {
    Delta(Delta),
    Done(DoneInfo),
}

pub type PieceStream = BoxStream<'static, Result<Piece, ServerError>>;

/// A request, validated by its route.
pub struct Job {
    pub model: LocalModel,
    pub input: PromptInput,
    pub context: Option<Vec<i64>>,
    pub options: Options,
    pub keep_alive: Option<KeepAlive>,
    pub truncate: bool,
    /// Context shift when generation fills `num_ctx` (Ollama's `shift`, default true).
    pub shift: bool,
    pub return_context: bool,
    /// When the HTTP request arrived (for `total_duration`).
    pub started: Instant,
    /// Tool definitions (chat only; checked against the model's capabilities by the route).
    pub tools: Vec<Value>,
    /// `think` as asked (`None`: the model's default, which is on for thinking models).
    pub think: Option<Think>,
    /// `"json"` or a JSON schema: constrained decoding.
    pub format: Option<Value>,
    /// Log probabilities with this many alternatives.
    pub logprobs: Option<u32>,
    /// Whether a tool call is required (the compatibility layers' `tool_choice`).
    pub tool_choice: ToolChoice,
    /// What the model's template can do, when the route already worked it out (checking the
    /// request against it); worked out here otherwise.
    pub traits: Option<super::plan::TemplateTraits>,
    /// Images of a raw prompt (as `[img-N]` in its text); messages carry their own.
    pub images: Vec<String>,
}

impl Job {
    pub fn new(model: LocalModel, input: PromptInput, options: Options, started: Instant) -> Job {
        Job {
            model,
            input,
            context: None,
            options,
            keep_alive: None,
            truncate: true,
            shift: true,
            return_context: false,
            started,
            tools: Vec::new(),
            think: None,
            format: None,
            logprobs: None,
            tool_choice: ToolChoice::Auto,
            traits: None,
            images: Vec::new(),
        }
    }
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What every request resolves first: its plan (template, thinking, constraint), its options
/// (the request's over the model's over Ollama's defaults) and the load-time options.
fn prepare(
    state: &AppState,
    job: &Job,
) -> Result<(super::plan::Plan, Options, LoadOptions), ServerError> {
    let traits = match &job.traits {
        Some(t) => t.clone(),
        None => super::plan::TemplateTraits::of(&job.model),
    };
    let plan = super::plan::plan(job, &traits)?;
    let o = job
        .options
        .clone()
        .or(&job.model.config.params)
        .or(&Options::ollama_defaults());
    let load = load_options(state, &job.model, &o);
    Ok((plan, o, load))
}

/// Runs a completion.
pub async fn run(state: &AppState, job: Job) -> Result<PieceStream, ServerError> {
    let (plan, o, load) = prepare(state, &job)?;
    let num_ctx = load.num_ctx;
    let lease = state
        .scheduler
        .acquire(job.model.clone(), job.keep_alive, load)
        .await?;
    let started = job.started;
    let meter = state
        .metrics
        .meter(&job.model.name.display_shortest(), started);
    let req = completion_request(lease.runner.as_ref(), job, &plan, &o, num_ctx).await?;
    let events = lease.runner.completion(req).await?;
    let mut pieces = Pieces {
        parser: OutputParser::new(&plan.spec, false),
        spec: plan.spec,
        prefill: plan.prefill,
        started,
        load_duration: lease.load_duration.as_nanos() as u64,
        meter,
    };
    let stream = events.flat_map(move |ev| {
        // The lease lives exactly as long as this stream.
        let _hold = &lease;
        futures_util::stream::iter(pieces.take(ev))
    });
    Ok(until_shutdown(stream.boxed(), state.shutdown.clone()))
}

/// The sampling options of a request whose options are resolved down to Ollama's defaults
/// ([`Options::ollama_defaults`], the one place they are written), so every field is set.
fn sampling_options(o: &Options, num_ctx: u64) -> SamplingOptions {
    let o = o.clone().or(&Options::ollama_defaults());
    SamplingOptions {
        num_keep: o.num_keep.unwrap_or_default(),
        num_predict: o.num_predict.unwrap_or_default(),
        temperature: o.temperature.unwrap_or_default(),
        top_k: o.top_k.unwrap_or_default(),
        top_p: o.top_p.unwrap_or_default(),
        min_p: o.min_p.unwrap_or_default(),
        seed: o.seed.unwrap_or_default(),
        stop: o.stop.unwrap_or_default(),
        repeat_penalty: o.repeat_penalty.unwrap_or_default(),
        repeat_last_n: o.repeat_last_n.unwrap_or_default(),
        presence_penalty: o.presence_penalty.unwrap_or_default(),
        frequency_penalty: o.frequency_penalty.unwrap_or_default(),
        num_ctx,
    }
}

/// The runner's request: the prompt (messages, or the text an Ollama Go TEMPLATE layer renders
/// them to, here), the resolved options and the plan's constraint, tools and thinking.
async fn completion_request(
    runner: &dyn crate::runner::Runner,
    job: Job,
    plan: &super::plan::Plan,
    o: &Options,
    num_ctx: u64,
) -> Result<CompletionRequest, ServerError> {
    let config = &job.model.config;
    let mut images = job.images;
    let input = match job.input {
        PromptInput::Messages(m) => {
            let m = with_model_messages(config, m);
            match &config.template {
                // An Ollama TEMPLATE layer: rendered here, in Go-template semantics.
                Some(t) => {
                    let think = super::plan::go_think(plan.think.as_ref());
                    let rendered =
                        render_go(runner, t, m, (&job.tools, &think), num_ctx, job.truncate)
                            .await?;
                    images = rendered.images.into_iter().map(|i| i.data).collect();
                    PromptInput::Raw(rendered.prompt)
                }
                None => PromptInput::Messages(m),
            }
        }
        raw => raw,
    };
    Ok(CompletionRequest {
        id: format!(
            "r{}",
            NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
        input,
        context: job.context,
        options: sampling_options(o, num_ctx),
        truncate: job.truncate,
        shift: job.shift,
        return_context: job.return_context,
        tools: job.tools,
        template_kwargs: plan.template_kwargs.clone(),
        format: plan.format.clone(),
        constrain_after: plan.constrain_after.clone(),
        logprobs: job.logprobs,
        think_tags: plan.spec.think.clone(),
        keep_markers: plan.spec.markers(),
        prefill: plan.prefill.clone(),
        images,
    })
}

/// Turns runner events into [`Piece`]s: output split into content, thinking and tool calls by
/// the model's output parser, and the final metrics.
struct Pieces {
    parser: OutputParser,
    spec: crate::output::OutputSpec,
    /// The given start of the reply (a forced call's marker): part of what the model said.
    prefill: Option<String>,
    started: Instant,
    load_duration: u64,
    meter: crate::metrics::TokenMeter,
}

impl Pieces {
    fn take(
        &mut self,
        ev: Result<RunnerEvent, crate::runner::RunnerError>,
    ) -> Vec<Result<Piece, ServerError>> {
        match ev {
            Ok(RunnerEvent::Start { thinking, .. }) => {
                self.parser = OutputParser::new(&self.spec, thinking);
                if let Some(p) = &self.prefill {
                    let _ = self.parser.feed(p);
                }
                Vec::new()
            }
            Ok(RunnerEvent::Chunk { content, logprobs }) => {
                self.meter.output();
                let p = self.parser.feed(&content);
                let d = Delta {
                    content: p.content,
                    thinking: p.thinking,
                    tool_calls: p.tool_calls,
                    logprobs,
                };
                if d.is_empty() {
                    Vec::new()
                } else {
                    vec![Ok(Piece::Delta(d))]
                }
            }
            Ok(RunnerEvent::Done(d)) if d.done_reason == "cancel" => {
                vec![Err(ServerError::Internal(
                    "generation was cancelled because the model runner is stopping".into(),
                ))]
            }
            Ok(RunnerEvent::Done(d)) => self.done(d),
            Err(e) => vec![Err(ServerError::Runner(e))],
        }
    }

    fn done(&mut self, d: crate::runner::Done) -> Vec<Result<Piece, ServerError>> {
        self.meter.done(d.prompt_eval_count, d.eval_count);
        let p = self.parser.finish();
        let rest = Delta {
            content: p.content,
            thinking: p.thinking,
            tool_calls: p.tool_calls,
            logprobs: Vec::new(),
        };
        let mut out = Vec::new();
        if !rest.is_empty() {
            out.push(Ok(Piece::Delta(rest)));
        }
        out.push(Ok(Piece::Done(DoneInfo {
            done_reason: d.done_reason,
            metrics: Metrics {
                total_duration: self.started.elapsed().as_nanos() as u64,
                load_duration: self.load_duration,
                prompt_eval_count: d.prompt_eval_count,
                prompt_eval_duration: d.prompt_eval_duration,
                eval_count: d.eval_count,
                eval_duration: d.eval_duration,
            },
            context: d.context,
            stop_sequence: d.stop_sequence,
        })));
        out
    }
}

/// The number of prompt tokens a chat job would read: rendered as `run` renders it (the model's
/// SYSTEM and MESSAGE layers, its template, tools and thinking setting), counted by the model's
/// tokenizer. Loads the model if needed.
pub async fn count_prompt(state: &AppState, job: Job) -> Result<u64, ServerError> {
    let (plan, _, load) = prepare(state, &job)?;
    let config = job.model.config.clone();
    let lease = state.scheduler.acquire(job.model, None, load).await?;
    let PromptInput::Messages(messages) = job.input else {
        return Err(ServerError::BadRequest("only a chat can be counted".into()));
    };
    let messages = with_model_messages(&config, messages);
    let runner = lease.runner.as_ref();
    let n = match &config.template {
        Some(t) => {
            let think = super::plan::go_think(plan.think.as_ref());
            let text =
                render_go(runner, t, messages, (&job.tools, &think), u64::MAX, false).await?;
            runner.tokenize(&text.prompt).await?.len() as u64
        }
        None => {
            runner
                .count_chat(&messages, &job.tools, &plan.template_kwargs)
                .await?
        }
    };
    Ok(n)
}

/// Renders messages with an Ollama Go template. With `truncate`, drops the oldest messages
/// (never system messages, never the last one) until the prompt fits in `num_ctx`, counting
/// tokens with the runner's tokenizer and each image as [`IMAGE_TOKENS`], as Ollama's
/// `chatPrompt` does. The kept messages' images become `[img-N]` markers in the prompt.
async fn render_go(
    runner: &dyn crate::runner::Runner,
    template: &str,
    mut messages: Vec<Message>,
    (tools, think): (&[Value], &crate::template::prompt::Think),
    num_ctx: u64,
    truncate: bool,
) -> Result<crate::template::prompt::ChatPrompt, ServerError> {
    use crate::template::prompt;
    let tmpl = prompt::parse(template)
        .map_err(|e| ServerError::Internal(format!("the model's template is invalid: {e}")))?;
    let failed = |e| ServerError::Internal(format!("rendering the model's template failed: {e}"));
    // Truncation: drop the oldest non-system message while the prompt does not fit.
    while truncate && !messages.is_empty() {
        let text = prompt::render_chat(&tmpl, &messages, tools, think).map_err(failed)?;
        let images: usize = messages.iter().map(|m| m.images.len()).sum();
        let n = (runner.tokenize(&text).await?.len() + images * IMAGE_TOKENS) as u64;
        let last = messages.len() - 1;
        let Some(i) = messages
            .iter()
            .position(|m| m.role != "system")
            .filter(|i| n >= num_ctx && *i < last)
        else {
            break;
        };
        tracing::warn!(
            tokens = n,
            num_ctx,
            "prompt too long; dropping the oldest message"
        );
        messages.remove(i);
    }
    prompt::chat_prompt(&tmpl, &messages, tools, think, None).map_err(failed)
}

/// Puts the model's own SYSTEM and MESSAGE layers around a request's messages, as Ollama does:
/// the request's leading system messages (else the model's SYSTEM), then the model's messages,
/// then the rest of the request.
fn with_model_messages(config: &ModelConfig, messages: Vec<Message>) -> Vec<Message> {
    if config.system.is_none() && config.messages.is_empty() {
        return messages;
    }
    let lead = messages.iter().take_while(|m| m.role == "system").count();
    let mut out: Vec<Message> = messages[..lead].to_vec();
    if lead == 0 {
        if let Some(sys) = &config.system {
            out.push(Message::new("system", sys.clone()));
        }
    }
    out.extend(config.messages.iter().cloned());
    out.extend(messages.into_iter().skip(lead));
    out
}

/// Ends a stream with an error item when the server starts shutting down, so in-flight
/// responses finish with a final line instead of being cut.
fn until_shutdown(s: PieceStream, token: tokio_util::sync::CancellationToken) -> PieceStream {
    futures_util::stream::unfold((s, token, false), |(mut s, token, over)| async move {
        if over {
            return None;
        }
        tokio::select! {
            biased;
            item = s.next() => {
                let item = item?;
                let last = matches!(item, Ok(Piece::Done(_)) | Err(_));
                Some((item, (s, token, last)))
            }
            _ = token.cancelled() => {
                Some((Err(ServerError::Scheduler(crate::scheduler::SchedulerError::ShuttingDown)), (s, token, true)))
            }
        }
    })
    .boxed()
}

/// Embeds texts with a model: the runner's vectors, the tokens read and the load time.
pub async fn embed(
    state: &AppState,
    model: LocalModel,
    inputs: Vec<String>,
    truncate: bool,
    options: &Options,
    keep_alive: Option<KeepAlive>,
) -> Result<(crate::runner::EmbedResult, u64), ServerError> {
    let o = options
        .clone()
        .or(&model.config.params)
        .or(&Options::ollama_defaults());
    let load = load_options(state, &model, &o);
    let num_ctx = load.num_ctx;
    let model_name = model.name.display_shortest();
    let lease = state.scheduler.acquire(model, keep_alive, load).await?;
    let load_ns = lease.load_duration.as_nanos() as u64;
    if inputs.is_empty() {
        return Ok((crate::runner::EmbedResult::default(), load_ns));
    }
    let result = lease.runner.embed(&inputs, truncate, num_ctx).await?;
    let name = [model_name.as_str()];
    state
        .metrics
        .prompt_tokens
        .get(&name)
        .add(result.prompt_tokens);
    Ok((result, load_ns))
}

/// L2-normalises a vector; with `dimensions` below its length, cuts it first and normalises the
/// rest (Ollama's `/api/embed`). NaN or infinite values are an error.
pub fn normalize(mut v: Vec<f32>, dimensions: Option<usize>) -> Result<Vec<f32>, ServerError> {
    if let Some(d) = dimensions.filter(|d| *d > 0 && *d < v.len()) {
        v.truncate(d);
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(ServerError::Internal(
            "the model produced an invalid embedding (NaN or Inf)".into(),
        ));
    }
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x = (*x as f64 / norm) as f32;
        }
    }
    Ok(v)
}

/// The load-time options a request asks for, within what the machine and model allow: `num_ctx`
/// capped at what the model was trained for, `num_batch` at `num_ctx` (a larger batch only
/// allocates more), `num_thread` at this machine's cores (more threads than cores only slows
/// llama.cpp down: 300 threads made it 600x slower).
pub fn load_options(state: &AppState, model: &LocalModel, o: &Options) -> LoadOptions {
    let (model_max, _) = model.limits();
    let num_ctx = resolve_num_ctx(o.num_ctx, state.config.default_num_ctx, model_max);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    LoadOptions {
        num_ctx,
        num_batch: o
            .num_batch
            .filter(|n| *n > 0)
            .map(|n| (n as u64).min(num_ctx)),
        num_gpu: o.num_gpu,
        num_thread: o
            .num_thread
            .filter(|n| *n > 0)
            .map(|n| (n as u64).min(cores)),
        use_mmap: o.use_mmap,
    }
}

/// `num_ctx`: the request's (or model's) value, else the server default; never more than the
/// model was trained for, and never less than 4 (as Ollama).
pub fn resolve_num_ctx(requested: Option<i64>, default: u64, model_max: Option<u64>) -> u64 {
    let n = requested
        .filter(|n| *n > 0)
        .map(|n| n as u64)
        .unwrap_or(default);
    let n = model_max.map_or(n, |m| n.min(m));
    n.max(4)
}

#[cfg(test)]
mod tests {
    use super::resolve_num_ctx;

    #[test]
    fn model_system_and_messages_wrap_the_request() {
        use super::{with_model_messages, Message, ModelConfig};
        let config = ModelConfig {
            system: Some("be kind".into()),
            messages: vec![
                Message::new("user", "hi"),
                Message::new("assistant", "hello"),
            ],
            ..Default::default()
        };
        let roles = |m: Vec<Message>| {
            m.iter()
                .map(|m| format!("{}:{}", m.role, m.content))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            roles(with_model_messages(
                &config,
                vec![Message::new("user", "q")]
            )),
            ["system:be kind", "user:hi", "assistant:hello", "user:q"]
        );
        // A request's own system message wins over the model's.
        assert_eq!(
            roles(with_model_messages(
                &config,
                vec![Message::new("system", "mine"), Message::new("user", "q")]
            )),
            ["system:mine", "user:hi", "assistant:hello", "user:q"]
        );
    }

    #[test]
    fn normalizes_and_cuts() {
        let v = super::normalize(vec![3.0, 4.0, 12.0], None).unwrap();
        assert!((v[0] - 3.0 / 13.0).abs() < 1e-6);
        let cut = super::normalize(vec![3.0, 4.0, 12.0], Some(2)).unwrap();
        assert_eq!(cut.len(), 2);
        assert!((cut[0] - 0.6).abs() < 1e-6 && (cut[1] - 0.8).abs() < 1e-6);
        assert!(super::normalize(vec![f32::NAN], None).is_err());
    }

    #[test]
    fn num_ctx_is_clamped() {
        assert_eq!(resolve_num_ctx(None, 4096, Some(2048)), 2048);
        assert_eq!(resolve_num_ctx(Some(512), 4096, Some(2048)), 512);
        assert_eq!(resolve_num_ctx(Some(0), 4096, None), 4096);
        assert_eq!(resolve_num_ctx(Some(1), 4096, None), 4);
    }
}

#[cfg(test)]
mod go_template_tests {
    use crate::api::Message;
    use crate::template::prompt;

    #[test]
    fn qwen3_go_template_thinks_and_takes_tools() {
        let src = include_str!("../../tests/fixtures/templates/qwen3.gotmpl");
        let t = prompt::parse(src).unwrap();
        assert_eq!(
            prompt::thinking_tags(&t),
            Some(("<think>".to_owned(), "</think>".to_owned()))
        );
        assert!(prompt::capabilities(&t).tools);
        let msgs = [Message::new("user", "Hi")];
        let on = crate::server::plan::go_think(Some(&crate::api::Think::On));
        let text = prompt::render_chat(&t, &msgs, &[], &on).unwrap();
        assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
        let off = crate::server::plan::go_think(Some(&crate::api::Think::Off));
        let text = prompt::render_chat(&t, &msgs, &[], &off).unwrap();
        assert!(text.ends_with("<think>\n\n</think>\n\n"), "{text:?}");
    }
}
