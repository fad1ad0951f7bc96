//! `POST /v1/chat/completions` and `POST /v1/completions`: OpenAI requests translated onto the
//! native inference service, as Ollama translates them (and where Ollama drops a field that
//! changes the answer, such as `max_completion_tokens`, honoured).

use super::reply::{reply, Kind, Reply};
use super::{find, parse, stop_list, ChatAsk, OpenAiError};
use crate::api::openai::{ChatCompletionRequest, ChatMessage};
use crate::api::{Message, Options, Think};
use crate::runner::PromptInput;
use crate::server::error::ServerError;
use crate::server::infer::{self, Job};
use crate::server::routes::common;
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::time::Instant;

pub async fn chat_completions(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: ChatCompletionRequest = parse(body)?;
    if req.messages.is_empty() {
        return Err(ServerError::BadRequest("[] is too short - 'messages'".into()).into());
    }
    let format = common::format(&response_format(req.response_format.as_ref())?)?;
    let think = reasoning(&req)?;
    let logprobs = match req.logprobs {
        Some(true) => common::logprobs(true, req.top_logprobs)?,
        _ => None,
    };
    let tools = match req.tool_choice.as_ref().and_then(Value::as_str) {
        Some("none") => Vec::new(),
        _ => req.tools.clone().unwrap_or_default(),
    };
    let messages = messages(&req.messages)?;
    let stop = stop_list(&req.stop)?;
    // Ollama sends 1.0 for a missing temperature or top_p: OpenAI's defaults.
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.unwrap_or(1.0)),
        num_predict: req.max_completion_tokens.or(req.max_tokens),
        seed: req.seed,
        stop,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        ..Options::default()
    };
    let job = ChatAsk {
        model: req.model.clone(),
        messages,
        options,
        tools,
        think,
        relax_think: false,
        format,
        tool_choice: common::tool_choice(req.tool_choice.as_ref()),
        logprobs,
    }
    .job(&state, started)?;
    let pieces = infer::run(&state, job).await?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    reply(
        pieces,
        Reply {
            model: req.model,
            stream: req.stream,
            include_usage,
            kind: Kind::Chat,
        },
    )
    .await
}

/// `response_format`: `json_object` is Ollama's `"json"`, `json_schema` passes its schema on.
fn response_format(f: Option<&Value>) -> Result<Option<Value>, ServerError> {
    let Some(f) = f.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match f["type"].as_str() {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!("json"))),
        Some("json_schema") => match &f["json_schema"]["schema"] {
            Value::Object(_) => Ok(Some(f["json_schema"]["schema"].clone())),
            _ => Err(ServerError::BadRequest(
                "response_format json_schema needs a schema object in json_schema.schema".into(),
            )),
        },
        Some(other) => Err(ServerError::BadRequest(format!(
            "invalid response_format type {other:?}"
        ))),
    }
}

/// `reasoning_effort` (or `reasoning.effort`) as `think`, mapped as Ollama maps it.
fn reasoning(req: &ChatCompletionRequest) -> Result<Option<Think>, ServerError> {
    let effort = req.reasoning_effort.clone().or_else(|| {
        req.reasoning.as_ref()?["effort"]
            .as_str()
            .map(str::to_owned)
    });
    effort.map(|e| effort_to_think(&e)).transpose()
}

pub(crate) fn effort_to_think(effort: &str) -> Result<Think, ServerError> {
    Ok(match effort {
        "none" => Think::Off,
        "minimal" => Think::Level("low".into()),
        "low" | "medium" | "high" | "max" => Think::Level(effort.into()),
        "xhigh" | "ultra" => Think::Level("max".into()),
        other => {
            return Err(ServerError::BadRequest(format!(
                "invalid reasoning effort {other:?}: expected none, minimal, low, medium, high, xhigh or max"
            )))
        }
    })
}

/// OpenAI messages as native ones: each content part becomes a message of its own (as Ollama
/// does), tool calls go on the last, their string arguments become objects, and a `tool`
/// message gets its tool's name from `name` or from the call it answers.
fn messages(input: &[ChatMessage]) -> Result<Vec<Message>, ServerError> {
    let mut out: Vec<Message> = Vec::new();
    let mut call_names: Map<String, Value> = Map::new();
    for m in input {
        let role = m.role.to_lowercase();
        let parts = parts_of(&m.content)?;
        let first = out.len();
        for part in parts {
            out.push(match part {
                Part::Text(text) => Message::new(&role, text),
                Part::Image(data) => {
                    let mut m = Message::new(&role, "");
                    m.images.push(data);
                    m
                }
            });
        }
        let calls = tool_calls(m.tool_calls.as_deref().unwrap_or_default())?;
        for c in &calls {
            if let (Some(id), Some(name)) = (c["id"].as_str(), c["function"]["name"].as_str()) {
                call_names.insert(id.to_owned(), json!(name));
            }
        }
        let reasoning = m.reasoning.clone().or_else(|| m.reasoning_content.clone());
        let added = out.len() > first;
        if let Some(last) = out.last_mut().filter(|_| added) {
            last.tool_calls = calls;
            last.thinking = reasoning.unwrap_or_default();
            last.tool_call_id = m.tool_call_id.clone().unwrap_or_default();
            last.tool_name = m.name.clone().unwrap_or_else(|| {
                m.tool_call_id
                    .as_ref()
                    .and_then(|id| call_names.get(id)?.as_str().map(str::to_owned))
                    .unwrap_or_default()
            });
        }
    }
    Ok(out)
}

/// OpenAI tool calls (`arguments` a JSON string) as Ollama's (`arguments` an object).
fn tool_calls(calls: &[Value]) -> Result<Vec<Value>, ServerError> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = &c["function"];
            let args = match &f["arguments"] {
                Value::String(s) if s.trim().is_empty() => json!({}),
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return Err(ServerError::BadRequest(
                            "invalid tool call arguments".into(),
                        ))
                    }
                },
                Value::Null => json!({}),
                v @ Value::Object(_) => v.clone(),
                _ => {
                    return Err(ServerError::BadRequest(
                        "invalid tool call arguments".into(),
                    ))
                }
            };
            let mut call = json!({"function": {"index": i, "name": f["name"], "arguments": args}});
            if let Some(id) = c["id"].as_str() {
                call["id"] = json!(id);
            }
            Ok(call)
        })
        .collect()
}

/// One content part: its text, or an image (base64).
enum Part {
    Text(String),
    Image(String),
}

/// Content as parts: a string, or a list of `text` and `image_url` parts.
fn parts_of(content: &Value) -> Result<Vec<Part>, ServerError> {
    match content {
        Value::Null => Ok(vec![Part::Text(String::new())]),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(Part::Text(
                    p["text"].as_str().unwrap_or_default().to_owned(),
                )),
                Some("image_url") => {
                    let url = match &p["image_url"] {
                        Value::String(u) => u.as_str(),
                        v => v["url"].as_str().ok_or_else(|| {
                            ServerError::BadRequest("invalid message format".into())
                        })?,
                    };
                    image_data(url).map(Part::Image)
                }
                _ => Err(ServerError::BadRequest(format!(
                    "unsupported content part: {p}"
                ))),
            })
            .collect(),
        other => Err(ServerError::BadRequest(format!(
            "invalid message content: {other}"
        ))),
    }
}

/// The base64 data of an `image_url`, as Ollama accepts it: a `data:image/{jpeg,jpg,png,webp}`
/// or `data:` URI with base64 content. Web URLs are refused with Ollama's message.
fn image_data(url: &str) -> Result<String, ServerError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(ServerError::BadRequest(
            "image URLs are not currently supported, please use base64 encoded data instead".into(),
        ));
    }
    let data = ["jpeg", "jpg", "png", "webp"]
        .iter()
        .find_map(|t| url.strip_prefix(&format!("data:image/{t};base64,")))
        .or_else(|| url.strip_prefix("data:;base64,"));
    match data {
        Some(d) if common::base64_error(d).is_none() => Ok(d.to_owned()),
        _ => Err(ServerError::BadRequest("invalid image input".into())),
    }
}

/// `POST /v1/completions`: a string prompt onto `/api/generate` (templated, as Ollama does).
pub async fn completions(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let req: crate::api::openai::CompletionRequest = parse(body)?;
    let Value::String(prompt) = &req.prompt else {
        return Err(
            ServerError::BadRequest("invalid prompt: only a string is supported".into()).into(),
        );
    };
    let logprobs = match req.logprobs {
        Some(n) => common::logprobs(true, Some(n))?,
        None => None,
    };
    let options = Options {
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.filter(|p| *p != 0.0).unwrap_or(1.0)),
        num_predict: req.max_tokens,
        seed: req.seed,
        stop: stop_list(&req.stop)?,
        frequency_penalty: Some(req.frequency_penalty.unwrap_or(0.0)),
        presence_penalty: Some(req.presence_penalty.unwrap_or(0.0)),
        ..Options::default()
    };
    let model = find(&state, &req.model)?;
    let input = match req.suffix.as_deref().filter(|s| !s.is_empty()) {
        // Fill-in-the-middle, as /api/generate does it.
        Some(suffix) => PromptInput::Raw(common::fill_in_the_middle(&model, prompt, suffix)?),
        None => PromptInput::Messages(vec![Message::new("user", prompt.clone())]),
    };
    let mut job = Job::new(model, input, options, started);
    job.logprobs = logprobs;
    // Legacy completions have no reasoning field: the answer only.
    job.think = Some(Think::Off);
    let pieces = infer::run(&state, job).await?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    reply(
        pieces,
        Reply {
            model: req.model,
            stream: req.stream,
            include_usage,
            kind: Kind::Text,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_translate_tool_round_trips() {
        let input: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null, "reasoning_content": "hmm",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
        ]))
        .unwrap();
        let m = messages(&input).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].content.as_str(), m[1].content.as_str()), ("a", "b"));
        assert_eq!(m[2].thinking, "hmm");
        assert_eq!(
            m[2].tool_calls[0],
            json!({"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}, "id": "call_1"})
        );
        assert_eq!(
            (m[3].tool_name.as_str(), m[3].tool_call_id.as_str()),
            ("get_weather", "call_1")
        );
        let bad: Vec<ChatMessage> = serde_json::from_value(json!([{"role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]))
        .unwrap();
        assert_eq!(
            messages(&bad).unwrap_err().to_string(),
            "invalid tool call arguments"
        );
    }

    #[test]
    fn image_parts_become_messages_of_their_own() {
        let input: Vec<ChatMessage> = serde_json::from_value(json!([{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
            {"type": "image_url", "image_url": "data:;base64,aGVsbG8="}
        ]}]))
        .unwrap();
        let m = messages(&input).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].content.as_str(), m[0].images.len()),
            ("what is this?", 0)
        );
        assert_eq!(
            (m[1].content.as_str(), &m[1].images[..]),
            ("", &["aGk=".to_owned()][..])
        );
        assert_eq!(m[2].images, ["aGVsbG8="]);
        let refused = |url: &str| {
            let input: Vec<ChatMessage> = serde_json::from_value(json!([{"role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}]}]))
            .unwrap();
            messages(&input).unwrap_err().to_string()
        };
        assert_eq!(
            refused("https://example.com/cat.png"),
            "image URLs are not currently supported, please use base64 encoded data instead"
        );
        assert_eq!(refused("data:image/gif;base64,aGk="), "invalid image input");
        assert_eq!(
            refused("data:image/png;base64,not base64!"),
            "invalid image input"
        );
    }

    #[test]
    fn efforts_and_formats() {
        assert_eq!(effort_to_think("none").unwrap(), Think::Off);
        assert_eq!(
            effort_to_think("minimal").unwrap(),
            Think::Level("low".into())
        );
        assert_eq!(
            effort_to_think("xhigh").unwrap(),
            Think::Level("max".into())
        );
        assert!(effort_to_think("lots").is_err());
        assert_eq!(
            response_format(Some(&json!({"type": "json_object"}))).unwrap(),
            Some(json!("json"))
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert_eq!(
            response_format(Some(
                &json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
            ))
            .unwrap(),
            Some(schema)
        );
        assert!(response_format(Some(&json!({"type": "json_schema"}))).is_err());
        assert_eq!(
            response_format(Some(&json!({"type": "text"}))).unwrap(),
            None
        );
    }
}
