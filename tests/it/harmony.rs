//! gpt-oss's Harmony format end to end: the scripted fixture `tiny-oss`
//! (tests/fixtures/make_models.py) has the real gpt-oss chat template and special tokens and
//! always replies, from its weights,
//! `<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary
//! to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>`. It runs as MLX
//! (template rendered by the Python runner; the runner prints the special tokens) and as an Ollama
//! store GGUF (rendered by llama-server, markers kept by `preserved_tokens`); the daemon's
//! Harmony parser must turn both into reasoning and one tool call.

use crate::support::*;
use serde_json::{json, Value};

const OSS: [&str; 2] = ["ollmlx-test/tiny-oss", "oss-gguf"];
const THOUGHT: &str = "Need the weather.";

struct Oss {
    server: TestServer,
    _dir: tempfile::TempDir,
}

fn oss() -> Option<Oss> {
    let (server, _, dir) = server_with_store(|fx, store| {
        ollama_model(store, "oss-gguf", &fx.join("gguf/tiny-oss-f32.gguf"), &[]);
    })?;
    Some(Oss { server, _dir: dir })
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "description": "The city, e.g. Paris"}}}}})
}

fn assert_paris_call(call: &Value, model: &str) {
    let f = &call["function"];
    assert_eq!(f["name"], "get_weather", "{model}: {call}");
    assert_eq!(f["index"], 0, "{model}: {call}");
    assert_eq!(f["arguments"], json!({"city": "Paris"}), "{model}: {call}");
}

#[test]
fn harmony_reasoning_and_tool_calls_from_both_runners() {
    let Some(o) = oss() else { return };
    let s = &o.server;
    let msgs = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
    for model in OSS {
        // Streamed: the analysis channel is thinking, the commentary call one tool call, and no
        // Harmony marker leaks into any text.
        let (thinking, content, calls, last) = chat_stream(
            s,
            json!({"model": model, "messages": msgs, "tools": [weather_tool()]}),
        );
        assert_eq!(thinking, THOUGHT, "{model}");
        assert_eq!(content, "", "{model}");
        assert_eq!(calls.len(), 1, "{model}: {calls:?}");
        assert_paris_call(&calls[0], model);
        assert_eq!(last["done_reason"], "stop", "{model}");

        // A reasoning effort reaches the template; think: false drops the reasoning text.
        let (thinking, _, calls, _) = chat_stream(
            s,
            json!({"model": model, "messages": msgs, "tools": [weather_tool()], "think": "high"}),
        );
        assert_eq!(thinking, THOUGHT, "{model}");
        assert_paris_call(&calls[0], model);
        let (thinking, content, calls, _) = chat_stream(
            s,
            json!({"model": model, "messages": msgs, "tools": [weather_tool()], "think": false}),
        );
        assert_eq!((thinking.as_str(), content.as_str()), ("", ""), "{model}");
        assert_paris_call(&calls[0], model);

        // Not streamed: the same, gathered; the call and the tool's answer then go back through
        // the gpt-oss template (thinking and tool call rendered in the history).
        let (status, text) = post_text(
            s,
            "/api/chat",
            json!({"model": model, "messages": msgs, "tools": [weather_tool()], "stream": false}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["message"]["thinking"], THOUGHT, "{model}: {v}");
        assert_eq!(v["message"]["content"], "", "{model}: {v}");
        let calls = v["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{model}: {v}");
        assert_paris_call(&calls[0], model);
        assert_eq!(v["done_reason"], "stop", "{model}: {v}");
        let mut history = msgs.as_array().unwrap().clone();
        history.push(v["message"].clone());
        history.push(json!({"role": "tool", "tool_name": "get_weather", "content": "18 degrees"}));
        let (status, text) = post_text(
            s,
            "/api/chat",
            json!({"model": model, "messages": history, "tools": [weather_tool()], "stream": false}),
        );
        assert_eq!(status, 200, "{model}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["message"]["thinking"], THOUGHT, "{model}: {v}");
        assert_paris_call(&v["message"]["tool_calls"][0], model);
    }
}

#[test]
fn harmony_through_the_openai_api() {
    let Some(o) = oss() else { return };
    let s = &o.server;
    let msgs = json!([{"role": "user", "content": "Weather?"}]);
    for model in OSS {
        let (status, text) = post_text(
            s,
            "/v1/chat/completions",
            json!({"model": model, "messages": msgs, "tools": [weather_tool()]}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{model}: {v}");
        assert_eq!(choice["message"]["reasoning"], THOUGHT, "{model}: {v}");
        assert_eq!(choice["message"]["content"], Value::Null, "{model}: {v}");
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{model}: {v}");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris"}), "{model}");

        let (status, text) = post_text(
            s,
            "/v1/chat/completions",
            json!({"model": model, "stream": true, "messages": msgs, "tools": [weather_tool()],
            "reasoning_effort": "low"}),
        );
        assert_eq!(status, 200, "{text}");
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        let delta = |key: &str| -> String {
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"][key].as_str())
                .collect()
        };
        assert_eq!(delta("reasoning"), THOUGHT, "{model}");
        assert_eq!(delta("content"), "", "{model}");
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(calls.len(), 1, "{model}");
        assert_eq!(calls[0][0]["index"], 0);
        assert_eq!(calls[0][0]["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(calls[0][0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris"}), "{model}");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls",
            "{model}"
        );
    }
}

#[test]
fn harmony_models_show_tools_and_thinking() {
    let Some(o) = oss() else { return };
    for model in OSS {
        let v = o
            .server
            .post("/api/show", json!({"model": model}))
            .json::<Value>()
            .unwrap();
        let caps: Vec<&str> = v["capabilities"]
            .as_array()
            .unwrap_or_else(|| panic!("{model}: {v}"))
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(
            caps.contains(&"tools") && caps.contains(&"thinking"),
            "{model}: {caps:?}"
        );
    }
}
