//! OpenAI replies from a completion's pieces: one object, or server-sent events (`data: {..}`)
//! with the role first, reasoning and content in separate chunks, each tool call whole in its own
//! chunk (with its `index` and `id`), a separate finish chunk, the usage chunk when asked, and
//! `[DONE]`. An error after the stream began is an SSE error event, then `[DONE]`.

use super::{error_body, now, OpenAiError};
use crate::api::openai::Usage;
use crate::api::{Logprob, ToolCall};
use crate::server::error::ServerError;
use crate::server::infer::{Delta, DoneInfo, Piece, PieceStream};
use crate::server::ndjson::merge;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::convert::Infallible;

/// Which OpenAI endpoint a reply is for.
#[derive(Clone, Copy)]
pub enum Kind {
    Chat,
    Text,
}

pub struct Reply {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub kind: Kind,
}

/// Turns a completion's pieces into an OpenAI reply.
pub async fn reply(mut pieces: PieceStream, r: Reply) -> Result<Response, OpenAiError> {
    let kind = r.kind;
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Text => "cmpl",
    };
    let id = format!("{prefix}-{}", rand::random::<u32>() % 999);
    let created = now();
    let object = move |chunk: bool| match (kind, chunk) {
        (Kind::Chat, false) => "chat.completion",
        (Kind::Chat, true) => "chat.completion.chunk",
        (Kind::Text, _) => "text_completion",
    };

    if !r.stream {
        let mut all = Delta::default();
        while let Some(p) = pieces.next().await {
            match p? {
                Piece::Delta(d) => merge(&mut all, d),
                Piece::Done(d) => {
                    let finish = finish_reason(&d, !all.tool_calls.is_empty());
                    let choice = match kind {
                        Kind::Chat => {
                            let mut c = json!({"index": 0, "message": message(&all, true),
                                               "finish_reason": finish});
                            if !all.logprobs.is_empty() {
                                c["logprobs"] = chat_logprobs(&all.logprobs);
                            }
                            c
                        }
                        Kind::Text => text_choice(&all, finish),
                    };
                    return Ok(Json(json!({
                        "id": id, "object": object(false), "created": created, "model": r.model,
                        "system_fingerprint": "fp_ollama", "choices": [choice], "usage": usage(&d),
                    }))
                    .into_response());
                }
            }
        }
        return Err(ServerError::Internal("the model stopped without finishing".into()).into());
    }

    let model = r.model;
    let chunk = move |choice: Value| {
        json!({"id": id, "object": object(true), "created": created, "model": model,
               "system_fingerprint": "fp_ollama", "choices": [choice]})
    };
    let mut first = true;
    let mut called = false;
    let include_usage = r.include_usage;
    let events = pieces.flat_map(move |p| {
        let mut out: Vec<Value> = Vec::new();
        let mut end = false;
        match p {
            Ok(Piece::Delta(d)) => {
                called |= !d.tool_calls.is_empty();
                for choice in stream_choices(kind, d, &mut first) {
                    out.push(chunk(choice));
                }
            }
            Ok(Piece::Done(d)) => {
                if first {
                    out.extend(stream_choices(kind, Delta::default(), &mut first).map(&chunk));
                }
                let finish = finish_reason(&d, called);
                out.push(chunk(match kind {
                    Kind::Chat => json!({"index": 0, "delta": {}, "finish_reason": finish}),
                    Kind::Text => json!({"index": 0, "text": "", "finish_reason": finish}),
                }));
                if include_usage {
                    let mut u = chunk(Value::Null);
                    u["choices"] = json!([]);
                    u["usage"] = json!(usage(&d));
                    out.push(u);
                }
                end = true;
            }
            Err(e) => {
                out.push(json!(error_body(&e)));
                end = true;
            }
        }
        // `data: <json>` events, then `data: [DONE]` at the end.
        let done = end.then(|| Event::default().data("[DONE]"));
        let events = out
            .into_iter()
            .map(|v| Event::default().data(v.to_string()));
        futures_util::stream::iter(events.chain(done).map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(events).into_response())
}

/// The stream choices for one delta: reasoning, content and each tool call apart.
fn stream_choices(kind: Kind, d: Delta, first: &mut bool) -> impl Iterator<Item = Value> {
    let mut out = Vec::new();
    match kind {
        Kind::Text => {
            if !d.content.is_empty() || !d.logprobs.is_empty() || *first {
                let mut c = json!({"index": 0, "text": d.content, "finish_reason": null});
                if !d.logprobs.is_empty() {
                    c["logprobs"] = text_logprobs(&d.logprobs);
                }
                out.push(c);
            }
        }
        Kind::Chat => {
            let mut deltas: Vec<Value> = Vec::new();
            if !d.thinking.is_empty() {
                deltas.push(json!({"reasoning": d.thinking, "reasoning_content": d.thinking}));
            }
            if !d.content.is_empty() || (deltas.is_empty() && d.tool_calls.is_empty()) {
                deltas.push(json!({"content": d.content}));
            }
            for c in &d.tool_calls {
                deltas.push(json!({"tool_calls": [openai_call(c)]}));
            }
            let last = deltas.len() - 1;
            for (i, mut delta) in deltas.into_iter().enumerate() {
                if *first {
                    delta["role"] = json!("assistant");
                    *first = false;
                }
                let mut c = json!({"index": 0, "delta": delta, "finish_reason": null});
                if i == last && !d.logprobs.is_empty() {
                    c["logprobs"] = chat_logprobs(&d.logprobs);
                }
                out.push(c);
            }
        }
    }
    *first = false;
    out.into_iter()
}

/// The assistant message of a whole reply: `content` is null when the model only called tools.
fn message(d: &Delta, whole: bool) -> Value {
    let mut m = json!({"role": "assistant", "content": d.content});
    if whole && d.content.is_empty() && !d.tool_calls.is_empty() {
        m["content"] = Value::Null;
    }
    if !d.thinking.is_empty() {
        m["reasoning"] = json!(d.thinking);
        m["reasoning_content"] = json!(d.thinking);
    }
    if !d.tool_calls.is_empty() {
        m["tool_calls"] = d.tool_calls.iter().map(openai_call).collect();
    }
    m
}

/// A tool call in OpenAI's shape: typed, with `arguments` as a JSON string.
pub(crate) fn openai_call(c: &ToolCall) -> Value {
    json!({
        "index": c.function.index,
        "id": c.id,
        "type": "function",
        "function": {
            "name": c.function.name,
            "arguments": Value::Object(c.function.arguments.clone()).to_string(),
        },
    })
}

fn finish_reason(d: &DoneInfo, called: bool) -> &'static str {
    match d.done_reason.as_str() {
        "length" => "length",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

fn usage(d: &DoneInfo) -> Usage {
    Usage {
        prompt_tokens: d.metrics.prompt_eval_count,
        completion_tokens: d.metrics.eval_count,
        total_tokens: d.metrics.prompt_eval_count + d.metrics.eval_count,
    }
}

/// Chat logprobs: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
fn chat_logprobs(lps: &[Logprob]) -> Value {
    let entry = |token: &str, logprob: f64, bytes: &[u8]| json!({"token": token, "logprob": logprob, "bytes": bytes});
    let content: Vec<Value> = lps
        .iter()
        .map(|l| {
            let mut e = entry(&l.token, l.logprob, &l.bytes);
            e["top_logprobs"] = l
                .top_logprobs
                .iter()
                .map(|t| entry(&t.token, t.logprob, &t.bytes))
                .collect();
            e
        })
        .collect();
    json!({"content": content})
}

/// Legacy completions logprobs: parallel lists, alternatives as `{token: logprob}` maps.
fn text_logprobs(lps: &[Logprob]) -> Value {
    let tokens: Vec<&str> = lps.iter().map(|l| l.token.as_str()).collect();
    let values: Vec<f64> = lps.iter().map(|l| l.logprob).collect();
    let top: Vec<Value> = lps
        .iter()
        .map(|l| {
            let m: serde_json::Map<String, Value> = l
                .top_logprobs
                .iter()
                .map(|t| (t.token.clone(), json!(t.logprob)))
                .collect();
            Value::Object(m)
        })
        .collect();
    let mut offset = 0;
    let offsets: Vec<usize> = lps
        .iter()
        .map(|l| {
            let at = offset;
            offset += l.token.len();
            at
        })
        .collect();
    json!({"tokens": tokens, "token_logprobs": values, "top_logprobs": top, "text_offset": offsets})
}

fn text_choice(d: &Delta, finish: &str) -> Value {
    let mut c = json!({"index": 0, "text": d.content, "finish_reason": finish});
    if !d.logprobs.is_empty() {
        c["logprobs"] = text_logprobs(&d.logprobs);
    }
    c
}
