//! Anthropic request translation: `system` and content-block messages as native messages, client
//! tools as native function tools, and `thinking` / `output_config.format` as the job's settings.

use super::bad;
use crate::api::anthropic::{MessageParam, MessagesRequest};
use crate::api::{Message, Think};
use crate::server::error::ServerError;
use serde_json::{json, Map, Value};

/// `thinking`: enabled is on (the budget is not enforced), disabled is off, anything else (or
/// nothing) leaves the model's default.
pub(super) fn thinking(v: Option<&Value>) -> Result<Option<Think>, ServerError> {
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
pub(super) fn output_format(f: &Value) -> Result<Option<Value>, ServerError> {
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
pub(super) fn tools(req: &MessagesRequest) -> Result<Vec<Value>, ServerError> {
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
pub(super) fn native_messages(
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
        let mut images: Vec<String> = Vec::new();
        for b in blocks {
            match b["type"].as_str().unwrap_or_default() {
                "text" => texts.push(b["text"].as_str().unwrap_or_default()),
                "image" => images.push(image_data(&b["source"])?),
                "document" => return Err(bad("document content blocks are not supported")),
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
                    results.push(Message::tool_result(content, id, &names));
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
        if !texts.is_empty() || !calls.is_empty() || !thinking.is_empty() || !images.is_empty() {
            out.push(Message {
                role: role.into(),
                content: texts.join("\n\n"),
                thinking,
                tool_calls: calls,
                images,
                ..Default::default()
            });
        }
        out.append(&mut results);
    }
    Ok(out)
}

/// An image block's picture: `{"type": "base64", "media_type", "data"}` (URLs are refused, as
/// Ollama refuses them).
fn image_data(source: &Value) -> Result<String, ServerError> {
    match (source["type"].as_str(), source["data"].as_str()) {
        (Some("base64"), Some(data)) => Ok(data.to_owned()),
        (Some("url"), _) => Err(bad(
            "image URLs are not currently supported, please use base64 encoded data instead",
        )),
        _ => Err(bad(format!("invalid image source: {source}"))),
    }
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
                "invalid image source",
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
