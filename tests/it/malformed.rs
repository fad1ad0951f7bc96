//! Malformed requests against every route the daemon serves: truncated and non-JSON bodies,
//! fields of the wrong type, null, huge numbers, deep nesting, invalid UTF-8, wrong content
//! types, and model names and digests that try to leave the store. Every answer must be a 4xx in
//! the route's own error shape (Ollama's `{"error": "..."}`, OpenAI's `{"error": {"message"}}`,
//! Anthropic's `{"type": "error", "error": {"message"}}`), and the daemon must answer
//! `/api/version` after each route's batch.
//!
//! No model is loaded: the store is empty, so a well-formed request ends at "model not found",
//! and every request is cheap. The one documented 5xx: a pull that fails (here, at a registry
//! that refuses connections) is a 500 with `stream: false`, and an error line ending a 200
//! stream otherwise, as in Ollama.

use crate::support::*;
use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    Ollama,
    OpenAi,
    Anthropic,
}

/// A route with a JSON body, and a body it would accept apart from naming no model we have.
struct Route {
    method: Method,
    path: &'static str,
    shape: Shape,
    base: Value,
    /// The start of the message of the route's one documented failure that is not the client's.
    upstream_failure: Option<&'static str>,
}

fn routes() -> Vec<Route> {
    let post = |path, shape, base| Route {
        method: Method::POST,
        path,
        shape,
        base,
        upstream_failure: None,
    };
    use Shape::*;
    let chat = json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]});
    vec![
        post(
            "/api/generate",
            Ollama,
            json!({"model": "nope", "prompt": "hi"}),
        ),
        post("/api/chat", Ollama, chat.clone()),
        post(
            "/api/embed",
            Ollama,
            json!({"model": "nope", "input": "hi"}),
        ),
        post(
            "/api/embeddings",
            Ollama,
            json!({"model": "nope", "prompt": "hi"}),
        ),
        post("/api/show", Ollama, json!({"model": "nope"})),
        post(
            "/api/create",
            Ollama,
            json!({"model": "new", "from": "nope"}),
        ),
        post(
            "/api/copy",
            Ollama,
            json!({"source": "nope", "destination": "other"}),
        ),
        // A registry that refuses connections at once: a pull that gets that far fails fast.
        Route {
            upstream_failure: Some("download failed: "),
            ..post(
                "/api/pull",
                Ollama,
                json!({"model": "127.0.0.1:9/library/nope:latest", "insecure": true, "stream": false}),
            )
        },
        Route {
            method: Method::DELETE,
            ..post("/api/delete", Ollama, json!({"model": "nope"}))
        },
        post("/v1/chat/completions", OpenAi, chat.clone()),
        post(
            "/v1/completions",
            OpenAi,
            json!({"model": "nope", "prompt": "hi"}),
        ),
        post(
            "/v1/embeddings",
            OpenAi,
            json!({"model": "nope", "input": "hi"}),
        ),
        post(
            "/v1/responses",
            OpenAi,
            json!({"model": "nope", "input": "hi"}),
        ),
        post(
            "/v1/messages",
            Anthropic,
            json!({"model": "nope", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        post(
            "/v1/messages/count_tokens",
            Anthropic,
            json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ]
}

/// Names that are not names, or that try to climb out of the store.
const HOSTILE_NAMES: &[&str] = &[
    "",
    " ",
    "../../../../etc/passwd",
    "..",
    "a/../../b",
    "/etc/passwd",
    "library/../../../x:latest",
    "x:../../y",
    "..%2f..%2fetc",
    "C:\\Windows\\x",
    "x\u{0}y",
    "hf.co/../..",
    "registry.ollama.ai/library/..:latest",
    "é/ü:ñ",
];

/// Bodies that are not the JSON object any route takes.
fn broken_bodies() -> Vec<(String, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = "{\"a\":".repeat(50_000);
    let mut out: Vec<(String, Vec<u8>)> = [
        "",
        " \n ",
        "{",
        "{\"model\":",
        "{\"model\": \"nope\"",
        "null",
        "[]",
        "42",
        "\"model\"",
        "true",
        "{}",
        "{\"model\": \"nope\"} trailing",
        "{\"model\": \"nope\",}",
        "\u{feff}{}",
        "{\"model\": \"\\ud800\"}",
        "{\"model\": 1e999999}",
    ]
    .iter()
    .map(|b| (format!("{b:?}"), b.as_bytes().to_vec()))
    .collect();
    out.push(("[[[...100k deep".into(), deep.into_bytes()));
    out.push(("{\"a\":{\"a\":...50k deep".into(), deep_obj.into_bytes()));
    out.push((
        "invalid UTF-8 in a string".into(),
        b"{\"model\": \"no\xff\xfepe\"}".to_vec(),
    ));
    out.push((
        "invalid UTF-8 outside strings".into(),
        b"\xff\xfe\x00{".to_vec(),
    ));
    out.push(("NUL bytes".into(), vec![0; 64]));
    out
}

/// Values of the wrong type, or of the right type out of any range.
fn hostile_values() -> Vec<Value> {
    let mut deep = json!(1);
    for _ in 0..120 {
        deep = json!([deep]);
    }
    vec![
        Value::Null,
        json!(-1),
        json!(0),
        json!(i64::MIN),
        json!(u64::MAX),
        serde_json::from_str("18446744073709551616").unwrap(),
        serde_json::from_str("1e308").unwrap(),
        json!(-1e308),
        json!(0.5),
        json!(true),
        json!(""),
        json!("x".repeat(100_000)),
        json!([]),
        json!([null]),
        json!({}),
        json!({"": null}),
        deep,
    ]
}

/// Every field any of the routes reads.
const FIELDS: &[&str] = &[
    "model",
    "prompt",
    "suffix",
    "system",
    "template",
    "messages",
    "input",
    "stream",
    "raw",
    "format",
    "options",
    "keep_alive",
    "images",
    "tools",
    "think",
    "context",
    "truncate",
    "dimensions",
    "logprobs",
    "top_logprobs",
    "from",
    "files",
    "adapters",
    "parameters",
    "quantize",
    "source",
    "destination",
    "insecure",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "seed",
    "response_format",
    "tool_choice",
    "stream_options",
    "instructions",
    "reasoning",
    "text",
    "thinking",
    "verbose",
];

/// Checks one answer; returns a description of what is wrong with it, if anything.
/// `upstream_failure` is the start of the message of a documented 500 (or of the error line
/// ending a 200 stream).
fn check(what: &str, shape: Shape, upstream_failure: Option<&str>, r: Response) -> Option<String> {
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    let short: String = text.chars().take(300).collect();
    if let Some(failure) = upstream_failure {
        // A stream ends with the error line; one object is the error with a 500.
        let last = text.lines().last().unwrap_or_default();
        let error = serde_json::from_str::<Value>(last).ok();
        let error = error.as_ref().and_then(|v| v["error"].as_str());
        if matches!(status, 200 | 500) && error.is_some_and(|e| e.starts_with(failure)) {
            return None;
        }
    }
    if !(400..500).contains(&status) {
        return Some(format!("{what}: status {status}: {short}"));
    }
    let Ok(body) = serde_json::from_str::<Value>(&text) else {
        return Some(format!(
            "{what}: {status} with a body that is not JSON: {short}"
        ));
    };
    let message = match shape {
        Shape::Ollama => body["error"].as_str(),
        Shape::OpenAi => body["error"]["message"].as_str(),
        Shape::Anthropic => (body["type"] == "error")
            .then(|| body["error"]["message"].as_str())
            .flatten(),
    };
    match message {
        Some(m) if !m.is_empty() => None,
        _ => Some(format!(
            "{what}: {status} not in the {shape:?} error shape: {short}"
        )),
    }
}

fn send(c: &Client, url: &str, method: Method, content_type: &str, body: Vec<u8>) -> Response {
    c.request(method, url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("{url}: no answer ({e}): did the daemon die?"))
}

/// Every byte but letters, digits and `-._~` as `%XX`, so the daemon gets the text as it is.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_alive(s: &TestServer, after: &str) {
    let v = s.get("/api/version");
    assert!(v["version"].is_string(), "after {after}: {v}");
}

#[test]
fn malformed_bodies_get_4xx_errors_in_each_routes_shape_and_the_daemon_lives() {
    let Some(python) = python() else { return };
    let hub = tempfile::tempdir().unwrap();
    let s = TestServer::start(Options {
        hub: hub.path().to_path_buf(),
        python,
        env: vec![],
    });
    let c = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut sent = 0;
    for route in routes() {
        let url = format!("{}{}", s.url, route.path);
        let mut try_body = |what: String, content_type: &str, body: Vec<u8>| {
            let r = send(&c, &url, route.method.clone(), content_type, body);
            sent += 1;
            let what = format!("{} {} {what}", route.method, route.path);
            failures.extend(check(&what, route.shape, route.upstream_failure, r));
        };
        for (what, body) in broken_bodies() {
            try_body(format!("body {what}"), "application/json", body);
        }
        let base = serde_json::to_vec(&route.base).unwrap();
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=utf-16",
            "",
        ] {
            try_body(format!("content-type {ct:?}"), ct, base.clone());
        }
        for field in FIELDS {
            for v in hostile_values() {
                let mut body = route.base.clone();
                body[*field] = v.clone();
                let shown: String = v.to_string().chars().take(40).collect();
                try_body(
                    format!("{field}={shown}"),
                    "application/json",
                    serde_json::to_vec(&body).unwrap(),
                );
            }
        }
        for name in HOSTILE_NAMES {
            for field in ["model", "from", "source", "destination"] {
                let mut body = route.base.clone();
                body[field] = json!(name);
                try_body(
                    format!("{field}={name:?}"),
                    "application/json",
                    serde_json::to_vec(&body).unwrap(),
                );
            }
        }
        assert_alive(&s, route.path);
    }

    // Routes whose hostile input is in the path.
    // An empty name is the list, and `..` (even as `%2E%2E`) is resolved by the client's URL
    // parser before it is sent.
    for name in HOSTILE_NAMES
        .iter()
        .filter(|n| !n.is_empty() && **n != "..")
    {
        let url = format!("{}/v1/models/{}", s.url, percent_encode(name));
        let r = send(&c, &url, Method::GET, "", Vec::new());
        sent += 1;
        let what = format!("GET /v1/models/{name}");
        failures.extend(check(&what, Shape::OpenAi, None, r));
    }
    let digests = [
        "sha256:../../x".to_owned(),
        "sha256-..".to_owned(),
        "../../etc/passwd".to_owned(),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}/", "a".repeat(64)),
        format!("sha512:{}", "a".repeat(64)),
    ];
    for digest in &digests {
        let url = format!("{}/api/blobs/{}", s.url, percent_encode(digest));
        let head = send(&c, &url, Method::HEAD, "", Vec::new())
            .status()
            .as_u16();
        if head != 400 {
            failures.push(format!("HEAD /api/blobs/{digest}: status {head}"));
        }
        let r = send(&c, &url, Method::POST, "", b"x".to_vec());
        let what = format!("POST /api/blobs/{digest}");
        failures.extend(check(&what, Shape::Ollama, None, r));
        sent += 2;
    }
    // A valid digest whose upload does not match it.
    let url = format!("{}/api/blobs/sha256:{}", s.url, "0".repeat(64));
    let r = send(&c, &url, Method::POST, "", b"not those bytes".to_vec());
    failures.extend(check("POST /api/blobs mismatched", Shape::Ollama, None, r));
    assert_alive(&s, "the path checks");

    eprintln!("{sent} malformed requests, {} bad answers", failures.len());
    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
