//! `POST /v1/messages`: the Anthropic Messages API, translated onto the native inference service
//! as Ollama translates it. Content blocks become native messages (tool results their own `tool`
//! messages), thinking and tool calls come back as `thinking` and `tool_use` blocks, and a stream
//! is Anthropic's exact event sequence. Errors use Anthropic's error object with the status the
//! native error has; an error after a stream began is an `error` event.

use crate::api::anthropic::{ErrorDetail, ErrorResponse, MessageParam, MessagesRequest};
use crate::api::{Message, Options, Think, ToolCall};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::infer::{self, Delta, DoneInfo, Job, Piece, PieceStream};
use crate::server::ndjson::merge;
use crate::server::routes::common::{self, random_id};
use crate::server::routes::openai::{effort_to_think, find, parse};
use crate::server::sse;
use crate::server::state::AppState;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// A `ServerError` in Anthropic's error shape, with the same status code.
pub struct AnthropicError(pub ServerError);

impl From<ServerError> for AnthropicError {
    fn from(e: ServerError) -> Self {
        AnthropicError(e)
    }
}

impl From<StoreError> for AnthropicError {
    fn from(e: StoreError) -> Self {
        AnthropicError(e.into())
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.0, "request failed");
        }
        (status, Json(error_body(&self.0))).into_response()
    }
}

/// Anthropic's error object; the type follows the status code.
fn error_body(e: &ServerError) -> ErrorResponse {
    let kind = match e.status().as_u16() {
        400 => "invalid_request_error",
        404 => "not_found_error",
        503 => "overloaded_error",
        _ => "api_error",
    };
    ErrorResponse {
        kind: "error",
        error: ErrorDetail {
            kind,
            message: e.to_string(),
        },
        request_id: random_id("req"),
    }
}

fn bad(message: impl Into<String>) -> ServerError {
    ServerError::BadRequest(message.into())
}

pub async fn messages(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, AnthropicError> {
    let started = Instant::now();
    let req: MessagesRequest = parse(&body)?;
    if req.model.is_empty() {
        return Err(bad("model: Field required").into());
    }
    let num_predict = match req.max_tokens {
        Some(n) if n > 0 => n,
        Some(_) => return Err(bad("max_tokens: must be greater than or equal to 1").into()),
        None => return Err(bad("max_tokens: Field required").into()),
    };
    if req.messages.is_empty() {
        return Err(bad("messages: at least one message is required").into());
    }
    let messages = native_messages(req.system.as_ref(), &req.messages)?;
    let tools = tools(&req)?;
    let mut think = thinking(req.thinking.as_ref())?;
    let config = req.output_config.clone().unwrap_or_default();
    if let Some(effort) = config["effort"].as_str() {
        if think != Some(Think::Off) {
            think = Some(effort_to_think(effort)?);
        }
    }
    let format = output_format(&config["format"])?;
    // Sampling options only when given: the model's own defaults otherwise, as Ollama does.
    let options = Options {
        num_predict: Some(num_predict),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.clone().filter(|s| !s.is_empty()),
        ..Options::default()
    };
    let model = find(&state, &req.model)?;
    // A model that cannot think just answers (Ollama's relaxed thinking for this API).
    common::check_features(&model, &req.model, &tools, &mut think, true)?;
    let mut job = Job::new(model, PromptInput::Messages(messages), options, started);
    job.tools = tools;
    job.think = think;
    job.format = format;
    job.tool_choice = common::tool_choice(req.tool_choice.as_ref());
    let pieces = infer::run(&state, job).await?;
    if req.stream {
        stream_reply(pieces, req.model).await
    } else {
        whole_reply(pieces, req.model).await
    }
}

/// `thinking`: enabled is on (the budget is not enforced), disabled is off, anything else (or
/// nothing) leaves the model's default.
fn thinking(v: Option<&Value>) -> Result<Option<Think>, ServerError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v["type"].as_str() {
        Some("enabled") => Ok(Some(Think::On)),
        Some("disabled") => Ok(Some(Think::Off)),
        Some("adaptive") => Ok(None),
        _ => Err(bad(format!(
            "thinking: invalid type {}: expected \"enabled\" or \"disabled\"",
            v["type"]
        ))),
    }
}

/// `output_config.format`: a JSON schema constrains the answer (structured outputs).
fn output_format(f: &Value) -> Result<Option<Value>, ServerError> {
    match (f, f["type"].as_str()) {
        (Value::Null, _) => Ok(None),
        (_, Some("json_schema")) => match &f["schema"] {
            s @ Value::Object(_) => Ok(Some(s.clone())),
            _ => Err(bad(
                "output_config.format: json_schema needs a schema object",
            )),
        },
        _ => Err(bad(format!(
            "output_config.format: invalid type {}: expected \"json_schema\"",
            f["type"]
        ))),
    }
}

/// Client tools as native function tools; `tool_choice: {"type": "none"}` withholds them.
fn tools(req: &MessagesRequest) -> Result<Vec<Value>, ServerError> {
    if req
        .tool_choice
        .as_ref()
        .is_some_and(|c| c["type"] == "none")
    {
        return Ok(Vec::new());
    }
    req.tools
        .iter()
        .flatten()
        .map(|t| {
            if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
                return Err(bad(format!(
                    "tool {:?}: server tools ({kind}) are not supported",
                    t.name
                )));
            }
            if t.name.is_empty() {
                return Err(bad("tools: every tool needs a name"));
            }
            let mut f = json!({"name": t.name, "parameters": t.input_schema});
            if let Some(d) = &t.description {
                f["description"] = json!(d);
            }
            Ok(json!({"type": "function", "function": f}))
        })
        .collect()
}

/// `system` and the messages as native messages. Text blocks of one message are joined with a
/// blank line; `tool_use` blocks become the assistant's tool calls; each `tool_result` becomes a
/// `tool` message (before the user's text, as it answers the previous turn) named after the call
/// it answers; `thinking` blocks become the assistant's thinking.
fn native_messages(
    system: Option<&Value>,
    input: &[MessageParam],
) -> Result<Vec<Message>, ServerError> {
    let mut out = Vec::new();
    if let Some(sys) = system.filter(|s| !s.is_null()) {
        let text = text_of(sys, "system")?;
        if !text.is_empty() {
            out.push(Message::new("system", text));
        }
    }
    // Tool names by call id, for the results that answer them.
    let mut names: Map<String, Value> = Map::new();
    for (i, m) in input.iter().enumerate() {
        let role = match m.role.as_str() {
            r @ ("user" | "assistant") => r,
            other => {
                return Err(bad(format!(
                    "messages.{i}.role: invalid role {other:?}: expected \"user\" or \"assistant\""
                )))
            }
        };
        let blocks = match &m.content {
            Value::String(s) => {
                out.push(Message::new(role, s.clone()));
                continue;
            }
            Value::Array(blocks) => blocks,
            _ => {
                return Err(bad(format!(
                    "messages.{i}.content: expected a string or a list of content blocks"
                )))
            }
        };
        let mut texts: Vec<&str> = Vec::new();
        let mut thinking = String::new();
        let mut calls: Vec<Value> = Vec::new();
        let mut results: Vec<Message> = Vec::new();
        for b in blocks {
            match b["type"].as_str().unwrap_or_default() {
                "text" => texts.push(b["text"].as_str().unwrap_or_default()),
                "image" | "document" => {
                    return Err(bad(
                        "image content is not supported: ollmlx does not serve vision models yet",
                    ))
                }
                "tool_use" => {
                    let name = b["name"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| {
                            bad(format!(
                                "messages.{i}: tool_use block missing required 'name' field"
                            ))
                        })?;
                    let args = match &b["input"] {
                        Value::Null => json!({}),
                        v @ Value::Object(_) => v.clone(),
                        _ => {
                            return Err(bad(format!(
                                "messages.{i}: tool_use input must be an object"
                            )))
                        }
                    };
                    let mut call = json!({"function": {"index": calls.len(), "name": name, "arguments": args}});
                    if let Some(id) = b["id"].as_str() {
                        call["id"] = json!(id);
                        names.insert(id.to_owned(), json!(name));
                    }
                    calls.push(call);
                }
                "tool_result" => {
                    let id = b["tool_use_id"].as_str().unwrap_or_default();
                    let content = match &b["content"] {
                        Value::Null => String::new(),
                        c => text_of(c, "tool_result content")?,
                    };
                    results.push(Message {
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
                "thinking" => thinking.push_str(b["thinking"].as_str().unwrap_or_default()),
                // Redacted thinking is opaque to any model but Claude.
                "redacted_thinking" => {}
                other => {
                    return Err(bad(format!(
                        "messages.{i}: unsupported content block type {other:?}"
                    )))
                }
            }
        }
        let answers_first = role == "user";
        if answers_first {
            out.append(&mut results);
        }
        if !texts.is_empty() || !calls.is_empty() || !thinking.is_empty() {
            out.push(Message {
                role: role.into(),
                content: texts.join("\n\n"),
                thinking,
                tool_calls: calls,
                ..Default::default()
            });
        }
        out.append(&mut results);
    }
    Ok(out)
}

/// A string, or the text of a list of text blocks (images are refused).
fn text_of(v: &Value, what: &str) -> Result<String, ServerError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for b in blocks {
                match b["type"].as_str() {
                    Some("text") => texts.push(b["text"].as_str().unwrap_or_default()),
                    Some("image" | "document") => return Err(bad(
                        "image content is not supported: ollmlx does not serve vision models yet",
                    )),
                    _ => return Err(bad(format!("{what}: expected text blocks, got {b}"))),
                }
            }
            Ok(texts.join("\n\n"))
        }
        other => Err(bad(format!(
            "{what}: expected a string or text blocks, got {other}"
        ))),
    }
}

fn stop_reason(d: &DoneInfo, called: bool) -> &'static str {
    match d.done_reason.as_str() {
        _ if called => "tool_use",
        "length" => "max_tokens",
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

async fn whole_reply(mut pieces: PieceStream, model: String) -> Result<Response, AnthropicError> {
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
                    "stop_sequence": null,
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
    fn event(name: &str, data: Value) -> Bytes {
        sse::named(name, &data)
    }

    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) {
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

    fn block_delta(&self, delta: Value) -> Bytes {
        Self::event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        )
    }

    /// Opens a thinking or text block, closing another kind first.
    fn start(&mut self, kind: Open, out: &mut Vec<Bytes>) {
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

    fn stop(&mut self, out: &mut Vec<Bytes>) {
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
async fn stream_reply(mut pieces: PieceStream, model: String) -> Result<Response, AnthropicError> {
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
        sse::named("message_start", &start),
        sse::named("ping", &json!({"type": "ping"})),
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
                        "delta": {"stop_reason": stop_reason(&d, blocks.called), "stop_sequence": null},
                        "usage": {"input_tokens": d.metrics.prompt_eval_count,
                                  "output_tokens": d.metrics.eval_count}});
                    out.push(sse::named("message_delta", &delta));
                    out.push(sse::named("message_stop", &json!({"type": "message_stop"})));
                }
                Err(e) => {
                    tracing::error!(error = %e, "stream failed");
                    out.push(sse::named("error", &json!(error_body(&e))));
                }
            }
            stream::iter(out)
        });
    Ok(sse::response(stream::iter(head).chain(events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Vec<MessageParam> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn blocks_translate_to_native_messages() {
        let input = params(json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "text", "text": "and?"}]},
            {"role": "assistant", "content": "Mild."}
        ]));
        let system = json!([{"type": "text", "text": "Be brief."}]);
        let m = native_messages(Some(&system), &input).unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "tool", "user", "assistant"]
        );
        assert_eq!(m[0].content, "Be brief.");
        assert_eq!(m[1].content, "a\n\nb");
        assert_eq!(
            (m[2].content.as_str(), m[2].thinking.as_str()),
            ("Let me look.", "hmm")
        );
        assert_eq!(
            m[2].tool_calls[0],
            json!({"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}, "id": "toolu_1"})
        );
        assert_eq!(
            (
                m[3].content.as_str(),
                m[3].tool_call_id.as_str(),
                m[3].tool_name.as_str()
            ),
            ("18C", "toolu_1", "get_weather")
        );
        assert_eq!(m[4].content, "and?");
        assert_eq!(m[5].content, "Mild.");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let cases = [
            (json!([{"role": "system", "content": "x"}]), "invalid role"),
            (
                json!([{"role": "user", "content": [{"type": "image", "source": {}}]}]),
                "vision",
            ),
            (
                json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}]),
                "'name'",
            ),
            (
                json!([{"role": "user", "content": [{"type": "video"}]}]),
                "unsupported content block",
            ),
            (json!([{"role": "user", "content": 5}]), "content"),
        ];
        for (input, msg) in cases {
            let e = native_messages(None, &params(input.clone())).unwrap_err();
            assert!(e.to_string().contains(msg), "{input}: {e}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn error_types_follow_the_status() {
        use crate::scheduler::SchedulerError;
        let kind = |e: ServerError| error_body(&e).error.kind;
        assert_eq!(kind(bad("x")), "invalid_request_error");
        assert_eq!(
            kind(StoreError::NotFound("m".into()).into()),
            "not_found_error"
        );
        assert_eq!(
            kind(ServerError::Scheduler(SchedulerError::QueueFull)),
            "overloaded_error"
        );
        assert_eq!(kind(ServerError::Internal("x".into())), "api_error");
        let body = serde_json::to_value(error_body(&bad("x"))).unwrap();
        assert_eq!(body["type"], "error");
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    }

    #[test]
    fn thinking_and_tools() {
        assert_eq!(
            thinking(Some(&json!({"type": "enabled", "budget_tokens": 1024}))).unwrap(),
            Some(Think::On)
        );
        assert_eq!(
            thinking(Some(&json!({"type": "disabled"}))).unwrap(),
            Some(Think::Off)
        );
        assert_eq!(thinking(None).unwrap(), None);
        assert!(thinking(Some(&json!({"type": "loud"}))).is_err());
        let req: MessagesRequest = serde_json::from_value(json!({
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
        }))
        .unwrap();
        assert_eq!(
            tools(&req).unwrap(),
            vec![
                json!({"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}})
            ]
        );
        let none = MessagesRequest {
            tool_choice: Some(json!({"type": "none"})),
            ..req.clone()
        };
        assert!(tools(&none).unwrap().is_empty());
        let server: MessagesRequest = serde_json::from_value(
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        )
        .unwrap();
        assert!(tools(&server).is_err());
    }
}
