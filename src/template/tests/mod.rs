//! Tests for Ollama's functions and prompt construction, with shared helpers and the
//! conversations Ollama's own template tests use. The engine's own tests are in the gotemplate
//! crate.

mod fixtures;
mod functions;
mod golden;
mod outputs;
mod prompt;
mod robust;

use serde_json::{json, Value as Json};

use super::{parse, TemplateError};
use crate::api::Message;

/// Parses and renders with JSON data, failing the test on any error.
fn render(src: &str, data: Json) -> String {
    let template = parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    template
        .render(&data)
        .unwrap_or_else(|e| panic!("render {src:?}: {e}"))
}

/// The error of parsing, or else of rendering.
fn render_err(src: &str, data: Json) -> TemplateError {
    match parse(src) {
        Err(e) => e,
        Ok(template) => match template.render(&data) {
            Err(e) => e,
            Ok(out) => panic!("expected an error from {src:?}, got {out:?}"),
        },
    }
}

fn msg(role: &str, content: &str) -> Message {
    Message::new(role, content)
}

/// The conversations of Ollama's `TestTemplate`, by their role names.
fn conversation(name: &str) -> Vec<Message> {
    let hello = msg("user", "Hello, how are you?");
    let answer = msg("assistant", "I'm doing great. How can I help you today?");
    let follow = msg("user", "I'd like to show off how chat templating works!");
    match name {
        "user" => vec![hello],
        "user-assistant-user" => vec![hello, answer, follow],
        "system-user-assistant-user" => {
            vec![
                msg("system", "You are a helpful assistant."),
                hello,
                answer,
                follow,
            ]
        }
        other => panic!("unknown conversation {other}"),
    }
}

/// `server/testdata/tools/messages.json` from Ollama.
fn tool_conversation() -> Vec<Message> {
    serde_json::from_value(json!([
        {"role": "system", "content": "You are a knowledgeable assistant. You can answer questions and perform tasks."},
        {"role": "user", "content": "What's the weather like today in Paris?"},
        {"role": "assistant", "tool_calls": [{
            "id": "89a1e453-0bce-4de3-a456-c54bed09c520",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": {"location": "Paris, France", "format": "celsius"}}
        }]},
        {"role": "tool", "tool_call_id": "89a1e453-0bce-4de3-a456-c54bed09c520", "content": "22"},
        {"role": "assistant", "content": "The current temperature in Paris, France is 22 degrees Celsius."},
        {"role": "user", "content": "What's the weather like today in San Francisco and Toronto?"}
    ]))
    .expect("messages.json")
}

/// `server/testdata/tools/tools.json` from Ollama, in the revision its golden outputs were
/// rendered with ("user's location").
fn weather_tools() -> Vec<Json> {
    vec![json!({
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "format": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The temperature unit to use. Infer this from the user's location."
                    }
                },
                "required": ["location", "format"]
            }
        }
    })]
}
