//! Tool calling, thinking, structured output and log probabilities through the real daemon and
//! both runners. The scripted fixture models (tests/fixtures/make_models.py) always answer the
//! same way, from their weights: `tiny-agent` thinks "Let me check the weather." and then calls
//! get_weather {"city": "Paris", "unit": "celsius"}; `tiny-thinker` thinks "The user wants a
//! greeting." and answers "Hello there!". Each model exists three ways: MLX (Jinja template
//! rendered by the Python runner), GGUF (Jinja rendered by llama-server) and GGUF with an Ollama
//! Go TEMPLATE layer (rendered by the daemon).

use crate::support::*;
use serde_json::{json, Value};

const AGENT: [&str; 3] = ["ollmlx-test/tiny-agent", "agent-gguf", "agent-go"];
/// A code-completion style Go template that can insert (it uses `.Suffix`).
const FIM_TEMPLATE: &str =
    "{{ if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{ else }}{{ .Prompt }}{{ end }}";
const THINKER: [&str; 3] = ["ollmlx-test/tiny-thinker", "thinker-gguf", "thinker-go"];

struct Agents {
    server: TestServer,
    _dir: tempfile::TempDir,
}

fn agents() -> Option<Agents> {
    let go =
        std::fs::read_to_string(repo_root().join("tests/fixtures/templates/qwen3.gotmpl")).unwrap();
    let (server, _, dir) = server_with_store(|fx, store| {
        for (name, file) in [
            ("agent", "tiny-agent-f32.gguf"),
            ("thinker", "tiny-thinker-f32.gguf"),
        ] {
            let gguf = fx.join("gguf").join(file);
            ollama_model(store, &format!("{name}-gguf"), &gguf, &[]);
            ollama_model(store, &format!("{name}-go"), &gguf, &[("template", &go)]);
        }
        let tiny = fx.join("gguf/tiny-llama-f32.gguf");
        ollama_model(store, "tiny-gguf", &tiny, &[]);
        ollama_model(store, "fim-gguf", &tiny, &[("template", FIM_TEMPLATE)]);
    })?;
    Some(Agents { server, _dir: dir })
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}})
}

fn assert_weather_call(call: &Value, index: u64) {
    let f = &call["function"];
    assert_eq!(f["name"], "get_weather", "{call}");
    assert_eq!(f["index"], index, "{call}");
    // Arguments are an object, in the model's key order.
    let keys: Vec<&String> = f["arguments"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["city", "unit"], "{call}");
    assert_eq!(f["arguments"], json!({"city": "Paris", "unit": "celsius"}));
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() == 13, "{id}");
}

#[test]
fn tool_calls_and_thinking_stream_split_from_every_runner() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in AGENT {
        let msgs = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
        let (thinking, content, calls, last) = chat_stream(
            s,
            json!({"model": model, "messages": msgs, "tools": [weather_tool()]}),
        );
        assert_eq!(thinking, "Let me check the weather.", "{model}");
        assert_eq!(content, "", "{model}");
        assert_eq!(calls.len(), 1, "{model}");
        assert_weather_call(&calls[0], 0);
        assert_eq!(last["done_reason"], "stop", "{model}");

        // think: false: no reasoning, the call all the same.
        let (thinking, _, calls, _) = chat_stream(
            s,
            json!({"model": model, "messages": msgs, "tools": [weather_tool()], "think": false}),
        );
        assert_eq!(thinking, "", "{model}");
        assert_weather_call(&calls[0], 0);

        // Not streamed: the same, gathered; then the tool's answer goes back.
        let (status, text) = post_text(
            s,
            "/api/chat",
            json!({"model": model, "messages": msgs,
            "tools": [weather_tool()], "stream": false}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["message"]["thinking"], "Let me check the weather.");
        assert_weather_call(&v["message"]["tool_calls"][0], 0);
        let mut history = msgs.as_array().unwrap().clone();
        history.push(v["message"].clone());
        history.push(json!({"role": "tool", "tool_name": "get_weather", "content": "18 degrees"}));
        let (status, text) = post_text(
            s,
            "/api/chat",
            json!({"model": model, "messages": history,
            "tools": [weather_tool()], "stream": false}),
        );
        assert_eq!(status, 200, "{model}: {text}");
    }
}

#[test]
fn thinking_models_split_reasoning_and_answer() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in THINKER {
        let msgs = json!([{"role": "user", "content": "Hi"}]);
        let (thinking, content, calls, _) =
            chat_stream(s, json!({"model": model, "messages": msgs}));
        assert_eq!(
            (thinking.as_str(), content.as_str()),
            ("The user wants a greeting.", "Hello there!"),
            "{model}"
        );
        assert!(calls.is_empty());
        let (thinking, content, _, _) =
            chat_stream(s, json!({"model": model, "messages": msgs, "think": false}));
        assert_eq!(
            (thinking.as_str(), content.as_str()),
            ("", "Hello there!"),
            "{model}"
        );
        // /api/generate has the same channels.
        let (status, text) = post_text(
            s,
            "/api/generate",
            json!({"model": model, "prompt": "Hi",
            "think": "high", "stream": false}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["thinking"], "The user wants a greeting.", "{model}");
        assert_eq!(v["response"], "Hello there!", "{model}");
    }
}

#[test]
fn capabilities_match_what_works() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in AGENT.iter().chain(THINKER.iter()) {
        let caps = s
            .post("/api/show", json!({"model": model}))
            .json::<Value>()
            .unwrap()["capabilities"]
            .clone();
        let caps: Vec<&str> = caps
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(
            caps.contains(&"tools") && caps.contains(&"thinking"),
            "{model}: {caps:?}"
        );
    }
    // tiny-llama's template takes neither.
    let tiny = "ollmlx-test/tiny-llama";
    let caps = s
        .post("/api/show", json!({"model": tiny}))
        .json::<Value>()
        .unwrap()["capabilities"]
        .clone();
    assert_eq!(caps, json!(["completion"]));
    let (status, text) = post_text(
        s,
        "/api/chat",
        json!({"model": tiny,
        "messages": [{"role": "user", "content": "hi"}], "tools": [weather_tool()]}),
    );
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            r#"{"error":"\"ollmlx-test/tiny-llama\" does not support tools"}"#
        )
    );
    let (status, text) = post_text(
        s,
        "/api/chat",
        json!({"model": tiny,
        "messages": [{"role": "user", "content": "hi"}], "think": true}),
    );
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            r#"{"error":"\"ollmlx-test/tiny-llama\" does not support thinking"}"#
        )
    );
    let (status, text) = post_text(
        s,
        "/api/chat",
        json!({"model": tiny,
        "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 21}),
    );
    assert_eq!(
        (status, text.as_str()),
        (400, r#"{"error":"top_logprobs must be between 0 and 20"}"#)
    );
}

#[test]
fn openai_streams_tool_calls_with_index_and_reasoning() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in AGENT {
        let (status, text) = post_text(
            s,
            "/v1/chat/completions",
            json!({"model": model, "stream": true,
            "messages": [{"role": "user", "content": "Weather?"}], "tools": [weather_tool()]}),
        );
        assert_eq!(status, 200, "{text}");
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let reasoning: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
            .collect();
        assert_eq!(reasoning, "Let me check the weather.", "{model}");
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(calls.len(), 1, "{model}");
        let call = &calls[0][0];
        assert_eq!(call["index"], 0);
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );

        // Not streamed, reasoning_effort "none": no reasoning, content null beside the call.
        let (status, text) = post_text(
            s,
            "/v1/chat/completions",
            json!({"model": model,
            "messages": [{"role": "user", "content": "Weather?"}], "tools": [weather_tool()],
            "reasoning_effort": "none"}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert!(v["choices"][0]["message"].get("reasoning").is_none(), "{v}");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    }
}

#[test]
fn logprobs_come_from_both_runners() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in ["ollmlx-test/tiny-thinker", "thinker-gguf"] {
        let (status, text) = post_text(
            s,
            "/api/chat",
            json!({"model": model, "stream": false,
            "messages": [{"role": "user", "content": "Hi"}], "logprobs": true, "top_logprobs": 3}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let lps = v["logprobs"]
            .as_array()
            .unwrap_or_else(|| panic!("{model}: {v}"));
        // One entry per generated token (the EOS that ended it is not text).
        let n = v["eval_count"].as_u64().unwrap() as usize;
        assert!(
            lps.len() == n || lps.len() + 1 == n,
            "{model}: {} vs {n}",
            lps.len()
        );
        for lp in lps {
            assert!(lp["logprob"].as_f64().unwrap() <= 0.0, "{lp}");
            let top = lp["top_logprobs"].as_array().unwrap();
            assert_eq!(top.len(), 3, "{lp}");
            assert_eq!(
                top[0]["token"], lp["token"],
                "greedy picks the most likely: {lp}"
            );
            // As Ollama's `TestAPI/generate-logprobs`: bytes are the token's UTF-8 (absent when
            // the token is empty, as Ollama's `omitempty`).
            for t in std::iter::once(lp).chain(top) {
                let utf8: Vec<Value> = t["token"]
                    .as_str()
                    .unwrap()
                    .bytes()
                    .map(Value::from)
                    .collect();
                let bytes = t.get("bytes").cloned().unwrap_or(json!([]));
                assert_eq!(bytes, Value::Array(utf8), "{model}: {t}");
            }
        }
        let text: String = lps.iter().map(|l| l["token"].as_str().unwrap()).collect();
        assert!(text.contains("Hello there!"), "{model}: {text}");
    }
}

#[test]
fn structured_output_validates_on_both_runners() {
    let Some(a) = agents() else { return };
    let stdout = e2e_check(
        &a.server,
        "structured_check.py",
        &[
            ("OLLMLX_TEST_MODELS", "tiny-gguf,ollmlx-test/tiny-llama"),
            (
                "OLLMLX_TEST_THINKER",
                "thinker-gguf,ollmlx-test/tiny-thinker",
            ),
            ("OLLMLX_TEST_ASCII_STRINGS", "tiny-gguf"),
        ],
    );
    // Thinking models reason before the constraint starts (GGUF: in two passes).
    for m in ["ollmlx-test/tiny-thinker", "thinker-gguf"] {
        assert!(
            stdout.contains(&format!("{m}: thinking 'The user wants a greeting.'")),
            "{stdout}"
        );
    }
}

#[test]
fn official_openai_sdk_calls_tools_and_reads_reasoning() {
    let Some(a) = agents() else { return };
    e2e_check(
        &a.server,
        "openai_tools_check.py",
        &[("OLLMLX_TEST_MODELS", &AGENT.join(","))],
    );
}

#[test]
fn cli_run_shows_thinking_then_the_answer() {
    let Some(a) = agents() else { return };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .arg("run")
            .args(args)
            .env("OLLAMA_HOST", a.server.url.trim_start_matches("http://"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for model in ["ollmlx-test/tiny-thinker", "thinker-gguf", "thinker-go"] {
        let out = run(&[model, "Hi"]);
        assert_eq!(
            out.trim_end(),
            "Thinking...\nThe user wants a greeting.\n...done thinking.\n\nHello there!",
            "{model}"
        );
        assert_eq!(
            run(&["--hidethinking", model, "Hi"]).trim_end(),
            "Hello there!"
        );
        assert_eq!(
            run(&["--think=false", model, "Hi"]).trim_end(),
            "Hello there!"
        );
    }
}

#[test]
fn a_required_tool_call_is_forced_by_constrained_decoding() {
    // tiny-thinker never calls tools by itself: a call from it proves tool_choice is enforced.
    let Some(a) = agents() else { return };
    let s = &a.server;
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
            "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"]}}}
    ]);
    for model in THINKER {
        for (choice, names) in [
            (json!("required"), vec!["get_weather", "get_time"]),
            (
                json!({"type": "function", "function": {"name": "get_time"}}),
                vec!["get_time"],
            ),
        ] {
            let (status, text) = post_text(
                s,
                "/v1/chat/completions",
                json!({"model": model,
                "messages": [{"role": "user", "content": "Hi"}], "tools": tools,
                "tool_choice": choice, "seed": 1, "max_tokens": 200}),
            );
            assert_eq!(status, 200, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let c = &v["choices"][0];
            assert_eq!(c["finish_reason"], "tool_calls", "{model}: {v}");
            let call = &c["message"]["tool_calls"][0]["function"];
            let name = call["name"].as_str().unwrap();
            assert!(names.contains(&name), "{model}: {call}");
            let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
            let (key, allowed) = if name == "get_weather" {
                ("city", ["Paris", "Rome"])
            } else {
                ("tz", ["UTC", "CET"])
            };
            assert!(
                allowed.contains(&args[key].as_str().unwrap()),
                "{model}: {args}"
            );
            assert_eq!(args.as_object().unwrap().len(), 1, "{args}");
        }
        // Anthropic's spelling.
        let (status, text) = post_text(
            s,
            "/v1/messages",
            json!({"model": model, "max_tokens": 200,
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"name": "get_time", "input_schema": tools[1]["function"]["parameters"]}],
            "tool_choice": {"type": "tool", "name": "get_time"}}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["stop_reason"], "tool_use", "{model}: {v}");
        let block = v["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap();
        assert_eq!(block["name"], "get_time");
    }
    // A name that is not a tool is a clear 400.
    let (status, text) = post_text(
        s,
        "/v1/chat/completions",
        json!({"model": THINKER[0],
        "messages": [{"role": "user", "content": "Hi"}], "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not one of the tools"), "{text}");
}

#[test]
fn official_ollama_python_client_calls_tools_and_thinks() {
    let Some(a) = agents() else { return };
    e2e_check(
        &a.server,
        "ollama_tools_check.py",
        &[("OLLMLX_TEST_MODELS", &AGENT.join(","))],
    );
}

#[test]
fn anthropic_reports_the_stop_sequence_that_ended_the_turn() {
    let Some(a) = agents() else { return };
    for model in THINKER {
        let (status, text) = post_text(
            &a.server,
            "/v1/messages",
            json!({"model": model,
            "max_tokens": 50, "thinking": {"type": "disabled"}, "stop_sequences": ["nope", "there"],
            "messages": [{"role": "user", "content": "Hi"}]}),
        );
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["stop_reason"], "stop_sequence", "{model}: {v}");
        assert_eq!(v["stop_sequence"], "there", "{model}: {v}");
        assert_eq!(v["content"][0]["text"], "Hello ", "{model}: {v}");
    }
}

#[test]
fn anthropic_count_tokens_matches_what_the_model_reads() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    let tools = json!([{"name": "get_weather", "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    for model in AGENT {
        let ask = json!({"model": model, "system": "Be brief.", "tools": tools,
            "messages": [{"role": "user", "content": "Weather in Paris?"}]});
        let (status, text) = post_text(s, "/v1/messages/count_tokens", ask.clone());
        assert_eq!(status, 200, "{text}");
        let counted = serde_json::from_str::<Value>(&text).unwrap()["input_tokens"]
            .as_u64()
            .unwrap();
        let mut run = ask;
        run["max_tokens"] = json!(50);
        let (status, text) = post_text(s, "/v1/messages", run);
        assert_eq!(status, 200, "{text}");
        let read = serde_json::from_str::<Value>(&text).unwrap()["usage"]["input_tokens"]
            .as_u64()
            .unwrap();
        assert_eq!(counted, read, "{model}");
        assert!(counted > 50, "the tools are in the prompt: {counted}");
    }
}

#[test]
fn gguf_refuses_schema_keywords_llama_cpp_would_ignore() {
    let Some(a) = agents() else { return };
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}});
    let (status, text) = post_text(
        &a.server,
        "/api/chat",
        json!({"model": "tiny-gguf",
        "messages": [{"role": "user", "content": "x"}], "format": schema, "stream": false}),
    );
    assert_eq!(status, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("unsupported JSON schema: \"multipleOf\""),
        "{e}"
    );
}

#[test]
fn a_request_template_replaces_the_models_own() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    for model in ["ollmlx-test/tiny-llama", "tiny-gguf"] {
        let count = |body: Value| {
            let (status, text) = post_text(s, "/api/generate", body);
            assert_eq!(status, 200, "{model}: {text}");
            serde_json::from_str::<Value>(&text).unwrap()["prompt_eval_count"]
                .as_u64()
                .unwrap()
        };
        let opts = json!({"num_predict": 1});
        let templated = count(
            json!({"model": model, "prompt": "Hello there", "stream": false,
            "template": "Q: {{ .Prompt }} A:", "options": opts}),
        );
        let raw = count(
            json!({"model": model, "prompt": "Q: Hello there A:", "raw": true,
            "stream": false, "options": opts}),
        );
        let chat = count(
            json!({"model": model, "prompt": "Hello there", "stream": false,
            "options": opts}),
        );
        assert_eq!(
            templated, raw,
            "{model}: the request's template rendered the prompt"
        );
        assert_ne!(templated, chat, "{model}: not the model's own template");
        let (status, text) = post_text(
            s,
            "/api/generate",
            json!({"model": model,
            "prompt": "x", "template": "{{ .Prompt ", "stream": false}),
        );
        assert_eq!(
            status, 500,
            "{model}: a template that does not parse: {text}"
        );
    }
}

#[test]
fn fill_in_the_middle_through_a_go_template_with_suffix() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    let fim = FIM_TEMPLATE;
    for model in ["ollmlx-test/tiny-llama", "tiny-gguf"] {
        let count = |body: Value| {
            let (status, text) = post_text(s, "/api/generate", body);
            assert_eq!(status, 200, "{model}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(
                v.get("context").is_none(),
                "no context for fill-in-the-middle: {v}"
            );
            v["prompt_eval_count"].as_u64().unwrap()
        };
        let opts = json!({"num_predict": 1});
        let filled = count(
            json!({"model": model, "prompt": "def f():", "suffix": "return x",
            "template": fim, "stream": false, "options": opts}),
        );
        let (status, text) = post_text(
            s,
            "/api/generate",
            json!({"model": model,
            "prompt": "<PRE> def f(): <SUF>return x <MID>", "raw": true, "stream": false,
            "options": opts}),
        );
        assert_eq!(status, 200, "{text}");
        let raw = serde_json::from_str::<Value>(&text).unwrap()["prompt_eval_count"].as_u64();
        assert_eq!(Some(filled), raw, "{model}");
        // A template without .Suffix cannot insert.
        let (status, text) = post_text(
            s,
            "/api/generate",
            json!({"model": model,
            "prompt": "a", "suffix": "b", "stream": false}),
        );
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("does not support insert"), "{text}");
    }
}

#[test]
fn openai_completions_fill_in_the_middle() {
    let Some(a) = agents() else { return };
    let s = &a.server;
    let (status, text) = post_text(
        s,
        "/v1/completions",
        json!({"model": "fim-gguf",
        "prompt": "def f():", "suffix": "return x", "max_tokens": 1}),
    );
    assert_eq!(status, 200, "{text}");
    let filled = serde_json::from_str::<Value>(&text).unwrap()["usage"]["prompt_tokens"].as_u64();
    let (status, text) = post_text(
        s,
        "/api/generate",
        json!({"model": "fim-gguf",
        "prompt": "<PRE> def f(): <SUF>return x <MID>", "raw": true, "stream": false,
        "options": {"num_predict": 1}}),
    );
    assert_eq!(status, 200, "{text}");
    let raw = serde_json::from_str::<Value>(&text).unwrap()["prompt_eval_count"].as_u64();
    assert_eq!(filled, raw);
    let (status, text) = post_text(
        s,
        "/v1/completions",
        json!({"model": "tiny-gguf",
        "prompt": "a", "suffix": "b"}),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("does not support insert"), "{text}");
}
