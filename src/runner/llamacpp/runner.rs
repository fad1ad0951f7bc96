//! `LlamaRunner`: one running llama-server, and the `Runner` calls it answers.

use super::media::{openai_message, place_images, Prompt};
use super::sse::{json_schema, sse_parser, SseOptions};
use super::two_phase::{then_constrained, SecondPhase};
use super::wire::{apply_template, tokenize, Completion};
use super::STOP_GRACE;
use crate::api::Message;
use crate::runner::endpoint::Endpoint;
use crate::runner::process::ChildProcess;
use crate::runner::{
    cut_prompt, exceeds_context, CompletionRequest, EmbedResult, EventStream, PromptInput, Runner,
    RunnerError, RunnerInfo, SamplingOptions, NO_SHIFT,
};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::sync::Arc;

pub struct LlamaRunner {
    pub(super) process: ChildProcess,
    pub(super) endpoint: Endpoint,
    pub(super) info: RunnerInfo,
    /// The physical batch: the longest input one embedding can take.
    pub(super) ubatch: u64,
    /// Where an image goes in a prompt (`LLAMA_MEDIA_MARKER`).
    pub(super) media_marker: String,
    /// The BOS token the tokenizer puts first, if it adds one (kept on truncation).
    pub(super) bos: Option<i64>,
    /// Whether llama-server was started with context shift (not for models whose cache cannot
    /// shift, nor with a projector).
    pub(super) can_shift: bool,
}

impl LlamaRunner {
    async fn tokens(&self, text: &str, add_special: bool) -> Result<Vec<i64>, RunnerError> {
        tokenize(&self.endpoint, text, add_special).await
    }

    /// Starts a `/completion`. This llama-server fails a prompt with images when the prompt it
    /// has cached diverges from it just after an image that another image follows (its
    /// `keep_first` looks for a chunk where none starts: "Chunk not found", a 500, before any
    /// output and with the cache untouched). That request is retried once without the cache.
    async fn start(&self, body: Completion<'_>) -> Result<reqwest::Response, RunnerError> {
        match self.endpoint.post("/completion", &body).await {
            Err(RunnerError::Failed(m)) if m.contains("Chunk not found") => {
                tracing::debug!("llama-server could not reuse its cached prompt; retrying without");
                let mut rest = body.rest.clone();
                rest["cache_prompt"] = json!(false);
                let body = Completion {
                    rest: &rest,
                    ..body
                };
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
        let n = tokens.len() + images * crate::runner::IMAGE_TOKENS;
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
            let prompt = apply_template(&self.endpoint, &body).await?;
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

impl LlamaRunner {
    /// The prompt's tokens (`context`, the rendered prompt, any `prefill`), its text, and its
    /// images in the order of their markers.
    async fn prompt<'a>(
        &self,
        req: &'a CompletionRequest,
    ) -> Result<(Vec<i64>, Cow<'a, str>, Vec<String>), RunnerError> {
        let num_ctx = req.options.num_ctx as usize;
        let context = req.context.as_deref().unwrap_or_default();
        // The prompt is never copied whole: it may be as large as a request body can be.
        let (tokens, text, images): (_, Cow<str>, _) = match &req.input {
            PromptInput::Raw(text) if req.images.is_empty() => (
                self.tokens(text, req.context.is_none()).await?,
                Cow::Borrowed(text.as_str()),
                Vec::new(),
            ),
            PromptInput::Raw(text) => {
                let (text, images) = place_images(text, &req.images, &self.media_marker);
                let (tokens, _) = self
                    .count(&text, images.len(), req.context.is_none())
                    .await?;
                (tokens, Cow::Owned(text), images)
            }
            PromptInput::Messages(m) => {
                let (tokens, text, images) = self
                    .render(m, req, num_ctx.saturating_sub(context.len()))
                    .await?;
                (tokens, Cow::Owned(text), images)
            }
        };
        let mut prompt = if context.is_empty() {
            tokens
        } else {
            [context, &tokens].concat()
        };
        if let Some(p) = &req.prefill {
            prompt.extend(self.tokens(p, false).await?);
        }
        if prompt.is_empty() {
            return Err(RunnerError::Rejected {
                status: 400,
                message: "the prompt is empty".into(),
            });
        }
        Ok((prompt, text, images))
    }

    /// `prompt` when it leaves room to generate; otherwise cut as Ollama cuts it (the first
    /// `num_keep` tokens after the BOS, and the end; see [`cut_prompt`]), or refused with
    /// Ollama's texts when `truncate` or `shift` is off. A prompt with images is never cut.
    fn fit(
        &self,
        prompt: Vec<i64>,
        media: bool,
        req: &CompletionRequest,
    ) -> Result<Vec<i64>, RunnerError> {
        let num_ctx = req.options.num_ctx;
        if (prompt.len() as u64) < num_ctx {
            return Ok(prompt);
        }
        let refuse = |message: String| {
            Err(RunnerError::Rejected {
                status: 400,
                message,
            })
        };
        if !req.truncate || media {
            return refuse(exceeds_context(prompt.len(), num_ctx));
        }
        if !req.shift {
            return refuse(NO_SHIFT.into());
        }
        let num_keep = req.options.num_keep;
        let keep = if num_keep < 0 {
            prompt.len()
        } else {
            num_keep as usize
        } + usize::from(self.bos.is_some() && prompt.first() == self.bos.as_ref());
        let cut = cut_prompt(&prompt, num_ctx as usize, keep);
        tracing::warn!(
            limit = cut.len(),
            prompt = prompt.len(),
            keep,
            "truncating input prompt"
        );
        Ok(cut)
    }

    /// How the prompt travels: as token ids, or (with images) as text with media markers.
    async fn media(
        &self,
        req: &CompletionRequest,
        text: &str,
        images: Vec<String>,
    ) -> Result<Prompt, RunnerError> {
        if images.is_empty() {
            return Ok(Prompt::Tokens);
        }
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
        Ok(Prompt::Media {
            text: before + &text,
            images,
        })
    }
}

/// Tokens to generate at most. With a context shift, `num_predict` (-1: 10 x num_ctx, Ollama's
/// bound); without, also no further than the end of the context, where generation stops with
/// done_reason "length", as on MLX (with images llama-server stops there by itself: their
/// tokens are not counted here).
fn n_predict(o: &SamplingOptions, prompt: usize, shifting: bool) -> i64 {
    if shifting {
        return if o.num_predict > 0 {
            o.num_predict
        } else {
            10 * o.num_ctx as i64
        };
    }
    let room = o.num_ctx as i64 - prompt as i64;
    if o.num_predict > 0 {
        o.num_predict.min(room)
    } else {
        room
    }
}

/// Everything in a `/completion` body but the prompt, which is written straight from the ids
/// (see `wire`).
fn sampling_body(req: &CompletionRequest, n_predict: i64) -> Value {
    let o = &req.options;
    let mut body = json!({
        "stream": true,
        "n_predict": n_predict,
        "n_keep": o.num_keep,
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
    body
}

#[async_trait::async_trait]
impl Runner for LlamaRunner {
    async fn count_chat(
        &self,
        messages: &[Message],
        tools: &[Value],
        template_kwargs: &serde_json::Map<String, Value>,
    ) -> Result<u64, RunnerError> {
        let mut req = CompletionRequest::new(
            String::new(),
            super::super::PromptInput::Messages(Vec::new()),
            Default::default(),
        );
        req.tools = tools.to_vec();
        req.template_kwargs = template_kwargs.clone();
        req.truncate = false;
        let (tokens, _, images) = self.render(messages, &req, usize::MAX).await?;
        Ok((tokens.len() + images.len() * crate::runner::IMAGE_TOKENS) as u64)
    }

    async fn completion(&self, req: CompletionRequest) -> Result<EventStream, RunnerError> {
        if let Some(word) = req.format.as_ref().and_then(super::schema::unenforced) {
            return Err(RunnerError::Rejected {
                status: 400,
                message: format!(
                    "unsupported JSON schema: {word} is not enforced by llama.cpp's grammars (GGUF models); remove it, or use an MLX model"
                ),
            });
        }
        let (prompt, text, images) = self.prompt(&req).await?;
        let thinking = req
            .think_tags
            .as_ref()
            .is_some_and(|(open, _)| text.trim_end().ends_with(open.as_str()));
        let prompt = self.fit(prompt, !images.is_empty(), &req)?;
        let shifting = req.shift && self.can_shift && images.is_empty();
        let n_predict = n_predict(&req.options, prompt.len(), shifting);
        let media = self.media(&req, &text, images).await?;
        let body = sampling_body(&req, n_predict);
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
            let mut stop = req.options.stop.clone();
            stop.push(close.clone());
            first_body["stop"] = json!(stop);
        }
        let resp = self
            .start(Completion {
                rest: &first_body,
                media: &media,
                tokens: &prompt,
                more: "",
            })
            .await?;
        let prompt = Arc::new(prompt);
        let top_n = req.logprobs.unwrap_or(0) as usize;
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
                        message: "the input length exceeds the context length".into(),
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

    /// The server's resident memory (Linux `/proc`; weights are mapped, so only the pages
    /// read count, as for Ollama's own accounting on the CPU).
    async fn memory(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.info.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
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
