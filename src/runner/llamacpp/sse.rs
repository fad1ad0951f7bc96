//! Reading llama-server's `/completion` SSE stream as runner events.

use crate::runner::endpoint::LineParser;
use crate::runner::{Done, RunnerError, RunnerEvent};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The JSON schema llama-server is to enforce: Ollama's `"json"` is any JSON object.
pub(super) fn json_schema(format: &Value) -> Value {
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

/// How to read one llama-server `/completion` SSE stream.
pub(super) struct SseOptions {
    /// Shared, not copied: it is as long as the prompt.
    pub(super) prompt: Arc<Vec<i64>>,
    pub(super) return_context: bool,
    /// Alternatives kept per token when logprobs were asked for.
    pub(super) top_n: usize,
    /// `Some`: emit the start event (whether the prompt opened the reasoning).
    pub(super) thinking: Option<bool>,
    /// When generation stops on this stop word, emit it as text before the end.
    pub(super) reveal_stop: Option<String>,
}

/// Turns llama-server's SSE lines into runner events.
pub(super) fn sse_parser(o: SseOptions) -> LineParser {
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
            let revealed = v["stop_type"] == "word" && o.reveal_stop.as_deref() == Some(word);
            if revealed {
                out.push(RunnerEvent::Chunk {
                    content: word.to_owned(),
                    logprobs: Vec::new(),
                });
            }
            // A stop string of the request's (not the one this runner added itself).
            let stop_sequence = (v["stop_type"] == "word" && !revealed && !word.is_empty())
                .then(|| word.to_owned());
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
                context: context_prefix.as_ref().map(|c| {
                    let generated = generated.lock().unwrap();
                    c.iter().chain(generated.iter()).copied().collect()
                }),
                stop_sequence,
            }));
        }
        Ok(out)
    })
}
