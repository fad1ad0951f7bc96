//! `POST /v1/responses`: OpenAI's Responses API, stateless (as Ollama's). Input items become
//! native messages; the reply's thinking, text and tool calls become `reasoning`, `message` and
//! `function_call` output items, and a stream is the Responses event sequence, each event with its
//! `sequence_number`. Errors before a stream use OpenAI's error object; after, `response.failed`.

use crate::api::responses::ResponsesRequest;
use crate::api::{Message, Options, ToolCall};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::infer::{self, Delta, DoneInfo, Job, Piece, PieceStream};
use crate::server::ndjson::merge;
use crate::server::routes::common::{self, random_id};
use crate::server::routes::openai::{effort_to_think, find, now, parse, OpenAiError};
use crate::server::sse;
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use std::time::Instant;

fn bad(message: impl Into<String>) -> ServerError {
    ServerError::BadRequest(message.into())
}

pub async fn responses(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: ResponsesRequest = parse(&body)?;
    if req.previous_response_id.is_some() || req.conversation.is_some() {
        return Err(bad(format!(
            "{} is not supported: ollmlx's /v1/responses is stateless",
            if req.previous_response_id.is_some() {
                "previous_response_id"
            } else {
                "conversation"
            }
        ))
        .into());
    }
    let messages = input(req.instructions.as_deref(), &req.input)?;
    let tools = tools(&req)?;
    let format = common::format(&text_format(req.text.as_ref())?)?;
    let effort = req.reasoning.as_ref().and_then(|r| r["effort"].as_str());
    let mut think = effort.map(effort_to_think).transpose()?;
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.unwrap_or(1.0)),
        num_predict: req.max_output_tokens,
        ..Options::default()
    };
    let model = find(&state, &req.model)?;
    // Agents send a reasoning effort to every model: one that cannot think just answers.
    common::check_features(&model, &req.model, &tools, &mut think, true)?;
    let mut job = Job::new(model, PromptInput::Messages(messages), options, started);
    job.tools = tools;
    job.think = think;
    job.format = format;
    job.tool_choice = common::tool_choice(req.tool_choice.as_ref());
    let pieces = infer::run(&state, job).await?;
    let echo = Echo::new(&req);
    if req.stream {
        stream_reply(pieces, echo).await
    } else {
        whole_reply(pieces, echo).await
    }
}

/// Function tools as native ones; `tool_choice: "none"` withholds them.
fn tools(req: &ResponsesRequest) -> Result<Vec<Value>, ServerError> {
    if req.tool_choice.as_ref().and_then(Value::as_str) == Some("none") {
        return Ok(Vec::new());
    }
    req.tools
        .iter()
        .flatten()
        .map(|t| match t["type"].as_str() {
            Some("function") => {
                let mut f = json!({"name": t["name"], "parameters": t["parameters"]});
                if let Some(d) = t["description"].as_str() {
                    f["description"] = json!(d);
                }
                Ok(json!({"type": "function", "function": f}))
            }
            other => Err(bad(format!(
                "tool type {} is not supported: only function tools are",
                other.map_or_else(|| t["type"].to_string(), |o| format!("{o:?}"))
            ))),
        })
        .collect()
}

/// `text.format`: `json_object` is Ollama's `"json"`, `json_schema` passes its schema on.
fn text_format(text: Option<&Value>) -> Result<Option<Value>, ServerError> {
    let f = match text {
        Some(t) if !t["format"].is_null() => &t["format"],
        _ => return Ok(None),
    };
    match f["type"].as_str() {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!("json"))),
        Some("json_schema") => match &f["schema"] {
            s @ Value::Object(_) => Ok(Some(s.clone())),
            _ => Err(bad("text.format json_schema needs a schema object")),
        },
        Some(other) => Err(bad(format!("invalid text.format type {other:?}"))),
    }
}

/// `instructions` and `input` as native messages. Function calls join the assistant message just
/// before them (or start one); a call's output becomes a `tool` message named after the call;
/// a reasoning item becomes the thinking of the next assistant message.
fn input(instructions: Option<&str>, input: &Value) -> Result<Vec<Message>, ServerError> {
    let mut out: Vec<Message> = Vec::new();
    if let Some(i) = instructions.filter(|i| !i.is_empty()) {
        out.push(Message::new("system", i));
    }
    let items = match input {
        Value::String(s) => {
            out.push(Message::new("user", s.clone()));
            return Ok(out);
        }
        Value::Array(items) if !items.is_empty() => items,
        Value::Null | Value::Array(_) => return Err(bad("input is required")),
        _ => return Err(bad("input: expected a string or a list of items")),
    };
    let mut names: Map<String, Value> = Map::new();
    let mut thinking = String::new();
    for (i, item) in items.iter().enumerate() {
        // Easy input messages (`{"role", "content"}`) have no type.
        let kind = item["type"]
            .as_str()
            .unwrap_or(if item.get("role").is_some() {
                "message"
            } else {
                ""
            });
        match kind {
            "message" => {
                let role = match item["role"].as_str().unwrap_or_default() {
                    "developer" | "system" => "system",
                    r @ ("user" | "assistant") => r,
                    other => return Err(bad(format!("input[{i}]: invalid role {other:?}"))),
                };
                let mut m = Message::new(role, content_text(&item["content"], i)?);
                if role == "assistant" {
                    m.thinking = std::mem::take(&mut thinking);
                }
                out.push(m);
            }
            "function_call" => {
                let name = item["name"].as_str().unwrap_or_default();
                let args = match &item["arguments"] {
                    Value::String(s) if s.trim().is_empty() => json!({}),
                    Value::String(s) => match serde_json::from_str::<Value>(s) {
                        Ok(v @ Value::Object(_)) => v,
                        _ => {
                            return Err(bad(format!("input[{i}]: invalid function_call arguments")))
                        }
                    },
                    v @ Value::Object(_) => v.clone(),
                    _ => return Err(bad(format!("input[{i}]: invalid function_call arguments"))),
                };
                let id = item["call_id"].as_str().unwrap_or_default();
                names.insert(id.to_owned(), json!(name));
                let joins = out
                    .last()
                    .is_some_and(|m| m.role == "assistant" && thinking.is_empty());
                if !joins {
                    let mut m = Message::new("assistant", "");
                    m.thinking = std::mem::take(&mut thinking);
                    out.push(m);
                }
                let last = out.last_mut().expect("an assistant message");
                let index = last.tool_calls.len();
                last.tool_calls.push(
                    json!({"id": id, "function": {"index": index, "name": name, "arguments": args}}),
                );
            }
            "function_call_output" => {
                let id = item["call_id"].as_str().unwrap_or_default();
                let content = match &item["output"] {
                    Value::String(s) => s.clone(),
                    v @ Value::Array(_) => content_text(v, i)?,
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                out.push(Message {
                    role: "tool".into(),
                    content,
                    tool_call_id: id.to_owned(),
                    tool_name: names
                        .get(id)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    ..Default::default()
                });
            }
            "reasoning" => {
                let parts = item["summary"]
                    .as_array()
                    .into_iter()
                    .chain(item["content"].as_array())
                    .flatten();
                for p in parts {
                    thinking.push_str(p["text"].as_str().unwrap_or_default());
                }
            }
            other => {
                return Err(bad(format!(
                    "input[{i}]: item type {other:?} is not supported"
                )))
            }
        }
    }
    Ok(out)
}

/// Message content: a string, or text parts joined with a blank line (images are refused).
fn content_text(content: &Value, i: usize) -> Result<String, ServerError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for p in parts {
                match p["type"].as_str() {
                    Some("input_text" | "output_text" | "text" | "refusal") => texts.push(
                        p["text"]
                            .as_str()
                            .or(p["refusal"].as_str())
                            .unwrap_or_default(),
                    ),
                    Some("input_image" | "input_file") => return Err(bad(
                        "image content is not supported: ollmlx does not serve vision models yet",
                    )),
                    _ => return Err(bad(format!("input[{i}]: unsupported content part {p}"))),
                }
            }
            Ok(texts.join("\n\n"))
        }
        other => Err(bad(format!("input[{i}]: invalid content {other}"))),
    }
}

/// The request fields a Response object echoes, and its id and creation time.
struct Echo {
    id: String,
    created_at: u64,
    fields: Map<String, Value>,
}

impl Echo {
    fn new(req: &ResponsesRequest) -> Echo {
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

async fn whole_reply(mut pieces: PieceStream, echo: Echo) -> Result<Response, OpenAiError> {
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
    fn emit(&mut self, out: &mut Vec<Bytes>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(sse::named(kind, &data));
    }

    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) {
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
    fn close(&mut self, out: &mut Vec<Bytes>) {
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
async fn stream_reply(mut pieces: PieceStream, echo: Echo) -> Result<Response, OpenAiError> {
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
    Ok(sse::response(stream::iter(head).chain(events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_items_translate_to_native_messages() {
        let items = json!([
            {"role": "developer", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Check it."}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": ""},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Mild."}]}
        ]);
        let m = input(Some("Sys."), &items).unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "system", "user", "assistant", "tool", "assistant"]
        );
        assert_eq!(
            (m[0].content.as_str(), m[1].content.as_str()),
            ("Sys.", "Be brief.")
        );
        assert_eq!(m[3].thinking, "Check it.");
        assert_eq!(
            m[3].tool_calls,
            vec![
                json!({"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}),
                json!({"id": "call_2", "function": {"index": 1, "name": "get_time", "arguments": {}}}),
            ]
        );
        assert_eq!(
            (
                m[4].tool_name.as_str(),
                m[4].tool_call_id.as_str(),
                m[4].content.as_str()
            ),
            ("get_weather", "call_1", "18C")
        );
        assert_eq!(m[5].content, "Mild.");
        assert_eq!(input(None, &json!("hi")).unwrap()[0].role, "user");
    }

    #[test]
    fn bad_inputs_are_refused() {
        for (v, msg) in [
            (json!([]), "input is required"),
            (
                json!([{"type": "message", "role": "tool", "content": "x"}]),
                "invalid role",
            ),
            (
                json!([{"type": "item_reference", "id": "x"}]),
                "not supported",
            ),
            (
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
                "vision",
            ),
            (
                json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]),
                "arguments",
            ),
        ] {
            let e = input(None, &v).unwrap_err();
            assert!(e.to_string().contains(msg), "{v}: {e}");
        }
    }

    #[test]
    fn formats_and_tools() {
        assert_eq!(text_format(None).unwrap(), None);
        assert_eq!(
            text_format(Some(&json!({"format": {"type": "json_object"}}))).unwrap(),
            Some(json!("json"))
        );
        let schema = json!({"type": "object"});
        assert_eq!(
            text_format(Some(
                &json!({"format": {"type": "json_schema", "name": "x", "schema": schema}})
            ))
            .unwrap(),
            Some(schema)
        );
        assert!(text_format(Some(&json!({"format": {"type": "json_schema"}}))).is_err());
        let req: ResponsesRequest = serde_json::from_value(json!({"tools": [
            {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}]}))
        .unwrap();
        assert_eq!(
            tools(&req).unwrap(),
            vec![
                json!({"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}})
            ]
        );
        let none = ResponsesRequest {
            tool_choice: Some(json!("none")),
            ..req.clone()
        };
        assert!(tools(&none).unwrap().is_empty());
        let web: ResponsesRequest =
            serde_json::from_value(json!({"tools": [{"type": "web_search"}]})).unwrap();
        assert!(tools(&web).is_err());
    }
}
