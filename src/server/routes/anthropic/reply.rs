//! Anthropic replies from a completion's pieces: one `message` object, or the event stream with
//! its content-block state machine (thinking, text and `tool_use` blocks, each opened and closed
//! in order with its index).

use super::{error_body, AnthropicError};
use crate::api::ToolCall;
use crate::server::error::ServerError;
use crate::server::infer::{Delta, DoneInfo, Piece, PieceStream};
use crate::server::ndjson::merge;
use crate::server::routes::common::random_id;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;

fn stop_reason(d: &DoneInfo, called: bool) -> &'static str {
    match d.done_reason.as_str() {
        _ if called => "tool_use",
        "length" => "max_tokens",
        _ if d.stop_sequence.is_some() => "stop_sequence",
        _ => "end_turn",
    }
}

/// A `tool_use` block: the call's own id (`call_...`), or a fresh `toolu_` one.
fn tool_use(c: &ToolCall) -> Value {
    let id = if c.id.is_empty() {
        random_id("toolu")
    } else {
        c.id.clone()
    };
    json!({"type": "tool_use", "id": id, "name": c.function.name,
           "input": Value::Object(c.function.arguments.clone())})
}

pub(super) async fn whole_reply(
    mut pieces: PieceStream,
    model: String,
) -> Result<Response, AnthropicError> {
    let mut all = Delta::default();
    while let Some(p) = pieces.next().await {
        match p? {
            Piece::Delta(d) => merge(&mut all, d),
            Piece::Done(d) => {
                let mut content = Vec::new();
                if !all.thinking.is_empty() {
                    content.push(
                        json!({"type": "thinking", "thinking": all.thinking, "signature": ""}),
                    );
                }
                if !all.content.is_empty() {
                    content.push(json!({"type": "text", "text": all.content}));
                }
                content.extend(all.tool_calls.iter().map(tool_use));
                return Ok(Json(json!({
                    "id": random_id("msg"), "type": "message", "role": "assistant",
                    "model": model, "content": content,
                    "stop_reason": stop_reason(&d, !all.tool_calls.is_empty()),
                    "stop_sequence": d.stop_sequence,
                    "usage": {"input_tokens": d.metrics.prompt_eval_count,
                              "output_tokens": d.metrics.eval_count},
                }))
                .into_response());
            }
        }
    }
    Err(ServerError::Internal("the model stopped without finishing".into()).into())
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Thinking,
    Text,
}

/// The content blocks of a stream: which one is open and the next block's index.
#[derive(Default)]
struct Blocks {
    index: usize,
    open: Option<Open>,
    called: bool,
}

impl Blocks {
    fn event(name: &str, data: Value) -> Event {
        named(name, &data)
    }

    fn delta(&mut self, d: Delta, out: &mut Vec<Event>) {
        if !d.thinking.is_empty() {
            self.start(Open::Thinking, out);
            out.push(self.block_delta(json!({"type": "thinking_delta", "thinking": d.thinking})));
        }
        if !d.content.is_empty() {
            self.start(Open::Text, out);
            out.push(self.block_delta(json!({"type": "text_delta", "text": d.content})));
        }
        for c in &d.tool_calls {
            self.stop(out);
            self.called = true;
            let mut block = tool_use(c);
            let args = block["input"].to_string();
            block["input"] = json!({});
            out.push(Self::event(
                "content_block_start",
                json!({"type": "content_block_start", "index": self.index, "content_block": block}),
            ));
            out.push(self.block_delta(json!({"type": "input_json_delta", "partial_json": args})));
            out.push(Self::event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.index += 1;
        }
    }

    fn block_delta(&self, delta: Value) -> Event {
        Self::event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        )
    }

    /// Opens a thinking or text block, closing another kind first.
    fn start(&mut self, kind: Open, out: &mut Vec<Event>) {
        if self.open == Some(kind) {
            return;
        }
        self.stop(out);
        let block = match kind {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Open::Text => json!({"type": "text", "text": ""}),
        };
        out.push(Self::event(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        ));
        self.open = Some(kind);
    }

    fn stop(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push(Self::event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.index += 1;
        }
    }
}

/// Anthropic's event stream: `message_start`, `ping`, the content blocks, `message_delta` with
/// the stop reason and usage, `message_stop`. The first piece is awaited before answering, so
/// that an early failure keeps its status code.
pub(super) async fn stream_reply(
    mut pieces: PieceStream,
    model: String,
) -> Result<Response, AnthropicError> {
    let first = match pieces.next().await {
        Some(p) => p?,
        None => {
            return Err(ServerError::Internal("the model stopped without finishing".into()).into())
        }
    };
    let start = json!({"type": "message_start", "message": {
        "id": random_id("msg"), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0}}});
    let head = vec![
        named("message_start", &start),
        named("ping", &json!({"type": "ping"})),
    ];
    let mut blocks = Blocks::default();
    let events = stream::once(async move { Ok(first) })
        .chain(pieces)
        .flat_map(move |p| {
            let mut out = Vec::new();
            match p {
                Ok(Piece::Delta(d)) => blocks.delta(d, &mut out),
                Ok(Piece::Done(d)) => {
                    blocks.stop(&mut out);
                    // input_tokens here too: the prompt is only counted once it was read.
                    let delta = json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(&d, blocks.called), "stop_sequence": d.stop_sequence},
                        "usage": {"input_tokens": d.metrics.prompt_eval_count,
                                  "output_tokens": d.metrics.eval_count}});
                    out.push(named("message_delta", &delta));
                    out.push(named("message_stop", &json!({"type": "message_stop"})));
                }
                Err(e) => {
                    tracing::error!(error = %e, "stream failed");
                    out.push(named("error", &json!(error_body(&e))));
                }
            }
            stream::iter(out)
        });
    let events = stream::iter(head).chain(events).map(Ok::<_, Infallible>);
    Ok(Sse::new(events).into_response())
}

/// One named event: `event: <name>` and its JSON data.
fn named(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
