//! Responses request translation: `instructions` and input items as native messages, function
//! tools as native tools, and `text.format` as the job's format.

use super::bad;
use crate::api::responses::ResponsesRequest;
use crate::api::Message;
use crate::server::error::ServerError;
use serde_json::{json, Map, Value};

/// Function tools as native ones; `tool_choice: "none"` withholds them.
pub(super) fn tools(req: &ResponsesRequest) -> Result<Vec<Value>, ServerError> {
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
pub(super) fn text_format(text: Option<&Value>) -> Result<Option<Value>, ServerError> {
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
pub(super) fn input(
    instructions: Option<&str>,
    input: &Value,
) -> Result<Vec<Message>, ServerError> {
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
                m.images = content_images(&item["content"])?;
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
                out.push(Message::tool_result(content, id, &names));
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

/// The pictures of `input_image` parts: `data:` URLs only (Ollama refuses others too).
fn content_images(content: &Value) -> Result<Vec<String>, ServerError> {
    let parts = content.as_array().into_iter().flatten();
    parts
        .filter(|p| p["type"] == "input_image")
        .map(|p| {
            let url = p["image_url"].as_str().unwrap_or_default();
            match url.strip_prefix("data:").and_then(|u| u.split_once(";base64,")) {
                Some((_, data)) => Ok(data.to_owned()),
                None if url.starts_with("http") => Err(bad(
                    "image URLs are not currently supported, please use base64 encoded data instead",
                )),
                None => Err(bad(format!("invalid image_url: {url:?}"))),
            }
        })
        .collect()
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
                    // Its picture goes on the message (content_images).
                    Some("input_image") => {}
                    Some("input_file") => {
                        return Err(bad("input_file content parts are not supported"))
                    }
                    _ => return Err(bad(format!("input[{i}]: unsupported content part {p}"))),
                }
            }
            Ok(texts.join("\n\n"))
        }
        other => Err(bad(format!("input[{i}]: invalid content {other}"))),
    }
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
                "invalid image_url",
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
