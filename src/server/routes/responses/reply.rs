//! Responses replies from a completion's pieces: the Response object (echoing the request's
//! fields) with its output items, or the event stream with its open-item state machine and
//! `sequence_number`s.

use super::ResponsesRequest;
use crate::api::ToolCall;
use crate::server::error::ServerError;
use crate::server::infer::{Delta, DoneInfo, Piece, PieceStream};
use crate::server::ndjson::merge;
use crate::server::routes::common::random_id;
use crate::server::routes::openai::{now, OpenAiError};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use std::convert::Infallible;

/// The request fields a Response object echoes, and its id and creation time.
pub(super) struct Echo {
    id: String,
    created_at: u64,
    fields: Map<String, Value>,
}

impl Echo {
    pub(super) fn new(req: &ResponsesRequest) -> Echo {
        let effort = req
            .reasoning
            .as_ref()
            .map_or(Value::Null, |r| r["effort"].clone());
        let fields = json!({
            "model": req.model,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": null,
            "reasoning": {"effort": effort, "summary": null},
            "store": false,
            "temperature": req.temperature.unwrap_or(1.0),
            "text": req.text.clone().unwrap_or_else(|| json!({"format": {"type": "text"}})),
            "tool_choice": req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            "tools": req.tools.clone().unwrap_or_default(),
            "top_p": req.top_p.unwrap_or(1.0),
            "truncation": "disabled",
            "metadata": req.metadata.clone().unwrap_or_else(|| json!({})),
        });
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        Echo {
            id: random_id("resp"),
            created_at: now(),
            fields,
        }
    }

    /// The Response object: `in_progress` (no `done`), `completed`, `incomplete` or `failed`.
    fn response(
        &self,
        output: &[Value],
        done: Option<&DoneInfo>,
        error: Option<&ServerError>,
    ) -> Value {
        let (status, incomplete) = match (done, error) {
            (_, Some(_)) => ("failed", Value::Null),
            (Some(d), _) if d.done_reason == "length" => {
                ("incomplete", json!({"reason": "max_output_tokens"}))
            }
            (Some(_), _) => ("completed", Value::Null),
            (None, None) => ("in_progress", Value::Null),
        };
        let mut r = json!({
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "error": null, "incomplete_details": incomplete,
            "output": output, "usage": null,
        });
        if let Some(e) = error {
            r["error"] = json!({"code": "server_error", "message": e.to_string()});
        }
        if let Some(d) = done {
            let (i, o) = (d.metrics.prompt_eval_count, d.metrics.eval_count);
            r["usage"] = json!({
                "input_tokens": i, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": o, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": i + o,
            });
        }
        let obj = r.as_object_mut().expect("an object");
        for (k, v) in &self.fields {
            obj.insert(k.clone(), v.clone());
        }
        r
    }
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [text_part(text)]})
}

fn call_item(c: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": random_id("fc"), "call_id": c.id,
           "name": c.function.name,
           "arguments": Value::Object(c.function.arguments.clone()).to_string(),
           "status": status})
}

pub(super) async fn whole_reply(
    mut pieces: PieceStream,
    echo: Echo,
) -> Result<Response, OpenAiError> {
    let mut all = Delta::default();
    while let Some(p) = pieces.next().await {
        match p? {
            Piece::Delta(d) => merge(&mut all, d),
            Piece::Done(d) => {
                let mut output = Vec::new();
                if !all.thinking.is_empty() {
                    output.push(reasoning_item(&random_id("rs"), &all.thinking));
                }
                if !all.content.is_empty() {
                    let status = if d.done_reason == "length" {
                        "incomplete"
                    } else {
                        "completed"
                    };
                    output.push(message_item(&random_id("msg"), &all.content, status));
                }
                output.extend(all.tool_calls.iter().map(|c| call_item(c, "completed")));
                return Ok(Json(echo.response(&output, Some(&d), None)).into_response());
            }
        }
    }
    Err(ServerError::Internal("the model stopped without finishing".into()).into())
}

/// The output item being streamed: its index in `output`, id and text so far.
enum Open {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
}

/// The state of a Responses stream: the events' sequence numbers and the output so far.
struct Events {
    echo: Echo,
    seq: u64,
    output: Vec<Value>,
    open: Option<Open>,
}

impl Events {
    fn emit(&mut self, out: &mut Vec<Event>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(named(kind, &data));
    }

    fn delta(&mut self, d: Delta, out: &mut Vec<Event>) {
        if !d.thinking.is_empty() {
            if !matches!(self.open, Some(Open::Reasoning { .. })) {
                self.close(out);
                let id = random_id("rs");
                let idx = self.output.len();
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": idx,
                    "item": {"type": "reasoning", "id": id, "summary": []}}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id,
                    "output_index": idx, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
                );
                self.open = Some(Open::Reasoning {
                    id,
                    text: String::new(),
                });
            }
            let Some(Open::Reasoning { id, text }) = &mut self.open else {
                unreachable!()
            };
            text.push_str(&d.thinking);
            let data = json!({"item_id": id, "output_index": self.output.len(),
                              "summary_index": 0, "delta": d.thinking});
            self.emit(out, "response.reasoning_summary_text.delta", data);
        }
        if !d.content.is_empty() {
            if !matches!(self.open, Some(Open::Message { .. })) {
                self.close(out);
                let id = random_id("msg");
                let idx = self.output.len();
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": idx,
                    "item": {"type": "message", "id": id, "status": "in_progress",
                             "role": "assistant", "content": []}}),
                );
                self.emit(
                    out,
                    "response.content_part.added",
                    json!({"item_id": id,
                    "output_index": idx, "content_index": 0, "part": text_part("")}),
                );
                self.open = Some(Open::Message {
                    id,
                    text: String::new(),
                });
            }
            let Some(Open::Message { id, text }) = &mut self.open else {
                unreachable!()
            };
            text.push_str(&d.content);
            let data = json!({"item_id": id, "output_index": self.output.len(),
                              "content_index": 0, "delta": d.content, "logprobs": []});
            self.emit(out, "response.output_text.delta", data);
        }
        for c in &d.tool_calls {
            self.close(out);
            let idx = self.output.len();
            let mut item = call_item(c, "in_progress");
            let (id, args) = (item["id"].clone(), item["arguments"].clone());
            item["arguments"] = json!("");
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": idx, "item": item}),
            );
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": idx, "delta": args}),
            );
            self.emit(
                out,
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": idx, "arguments": args,
                             "name": c.function.name}),
            );
            item["arguments"] = args;
            item["status"] = json!("completed");
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": idx, "item": item}),
            );
            self.output.push(item);
        }
    }

    /// Finishes the open reasoning or message item.
    fn close(&mut self, out: &mut Vec<Event>) {
        let idx = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning { id, text }) => {
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id,
                    "output_index": idx, "summary_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id,
                    "output_index": idx, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}}),
                );
                reasoning_item(&id, &text)
            }
            Some(Open::Message { id, text }) => {
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id,
                    "output_index": idx, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": idx, "content_index": 0, "part": text_part(&text)}),
                );
                message_item(&id, &text, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": idx, "item": item}),
        );
        self.output.push(item);
    }
}

/// The Responses event stream. The first piece is awaited before answering, so that an early
/// failure keeps its status code.
pub(super) async fn stream_reply(
    mut pieces: PieceStream,
    echo: Echo,
) -> Result<Response, OpenAiError> {
    let first = match pieces.next().await {
        Some(p) => p?,
        None => {
            return Err(ServerError::Internal("the model stopped without finishing".into()).into())
        }
    };
    let mut ev = Events {
        echo,
        seq: 0,
        output: Vec::new(),
        open: None,
    };
    let mut head = Vec::new();
    let r = ev.echo.response(&[], None, None);
    ev.emit(&mut head, "response.created", json!({"response": r}));
    ev.emit(&mut head, "response.in_progress", json!({"response": r}));
    let events = stream::once(async move { Ok(first) })
        .chain(pieces)
        .flat_map(move |p| {
            let mut out = Vec::new();
            match p {
                Ok(Piece::Delta(d)) => ev.delta(d, &mut out),
                Ok(Piece::Done(d)) => {
                    ev.close(&mut out);
                    let r = ev.echo.response(&ev.output, Some(&d), None);
                    let kind = if d.done_reason == "length" {
                        "response.incomplete"
                    } else {
                        "response.completed"
                    };
                    ev.emit(&mut out, kind, json!({"response": r}));
                }
                Err(e) => {
                    tracing::error!(error = %e, "stream failed");
                    let r = ev.echo.response(&ev.output, None, Some(&e));
                    ev.emit(&mut out, "response.failed", json!({"response": r}));
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
