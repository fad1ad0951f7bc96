//! Monitoring through the real daemon and MLX runner: `/metrics` moves after real requests and
//! parses as Prometheus text; crashes and restarts are counted; logs are JSON lines on request,
//! carry each request's id, and have colour codes only on a terminal without `NO_COLOR`.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        s => s.parse().ok(),
    }
}

/// `{a="x",b="y\"z"}` -> labels and the rest of the line after `}`.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').unwrap();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        assert!(
            is_name(name) && !name.starts_with("__"),
            "label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        assert!(
            labels.insert(name.to_owned(), value).is_none(),
            "label {name} twice"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses an exposition strictly: every line is a `# HELP`/`# TYPE` line or a valid sample,
/// every sample's family is typed (once) before its samples, and every histogram's buckets
/// are cumulative and end in `+Inf`, equal to its `_count`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("comment without a name: {line:?}"));
            assert!(is_name(name), "{line:?}");
            match kw {
                Some("HELP") => assert!(tail.is_some_and(|t| !t.is_empty()), "{line:?}"),
                Some("TYPE") => {
                    let kind = tail.unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "{name} typed twice"
                    );
                }
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let name_end = line.find(['{', ' ']).expect("a value");
        let name = &line[..name_end];
        assert!(is_name(name), "metric name in {line:?}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..])
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .expect("space before value")
            .split(' ');
        let value = parse_value(fields.next().unwrap()).unwrap_or_else(|| panic!("{line:?}"));
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().expect("timestamp");
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no TYPE before it");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        for count in samples
            .iter()
            .filter(|s| s.name == format!("{family}_count"))
        {
            let buckets: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
                .filter(|s| {
                    let mut l = s.labels.clone();
                    l.remove("le");
                    l == count.labels
                })
                .collect();
            assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
            let last = buckets.last().expect("buckets");
            assert_eq!(last.labels["le"], "+Inf");
            assert_eq!(
                last.value, count.value,
                "{family}: +Inf bucket is the count"
            );
        }
    }
    samples
}

/// The sum of the samples called `name` whose labels include `labels`.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
        .sum()
}

pub(crate) fn scrape(s: &TestServer) -> Vec<Sample> {
    let r = s.client().get(format!("{}/metrics", s.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    parse_exposition(&r.text().unwrap())
}

fn generate(s: &TestServer, prompt: &str, n: u64) -> Value {
    let v: Value = s
        .post(
            "/api/generate",
            json!({"model": TINY, "prompt": prompt, "stream": false,
                   "options": {"num_predict": n, "temperature": 0}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["eval_count"], n, "{v}");
    v
}

#[test]
fn metrics_move_with_real_requests_and_count_a_crash_and_its_restart() {
    let Some(s) = server(&[]) else { return };
    let before = scrape(&s);
    assert_eq!(value(&before, "ollmlx_loaded_models", &[]), 0.0);
    assert_eq!(value(&before, "ollmlx_generated_tokens_total", &[]), 0.0);

    let prompt = "The same long prompt, twice, so the second finds it in the prefix cache";
    let first = generate(&s, prompt, 5);
    let second = generate(&s, prompt, 5);
    let m = scrape(&s);
    let model = m
        .iter()
        .find(|x| x.name == "ollmlx_generated_tokens_total")
        .expect("a token counter")
        .labels["model"]
        .clone();
    assert!(model.starts_with(TINY), "{model}");
    let by_model = [("model", model.as_str())];
    let route = [
        ("method", "POST"),
        ("route", "/api/generate"),
        ("status", "200"),
    ];
    assert_eq!(value(&m, "ollmlx_http_requests_total", &route), 2.0);
    assert_eq!(value(&m, "ollmlx_generated_tokens_total", &by_model), 10.0);
    let prompt_tokens = first["prompt_eval_count"].as_u64().unwrap()
        + second["prompt_eval_count"].as_u64().unwrap();
    assert_eq!(
        value(&m, "ollmlx_prompt_tokens_total", &by_model),
        prompt_tokens as f64
    );
    assert_eq!(
        value(&m, "ollmlx_time_to_first_token_seconds_count", &by_model),
        2.0
    );
    assert_eq!(
        value(&m, "ollmlx_inter_token_latency_seconds_count", &by_model),
        8.0,
        "four gaps in each five-token reply"
    );
    assert!(value(&m, "ollmlx_time_to_first_token_seconds_sum", &by_model) > 0.0);
    assert_eq!(value(&m, "ollmlx_queue_wait_seconds_count", &[]), 2.0);
    assert_eq!(value(&m, "ollmlx_queue_depth", &[]), 0.0);
    let ok = [("model", model.as_str()), ("result", "ok")];
    assert_eq!(value(&m, "ollmlx_model_loads_total", &ok), 1.0);
    assert_eq!(value(&m, "ollmlx_model_load_seconds_count", &by_model), 1.0);
    assert_eq!(value(&m, "ollmlx_loaded_models", &[]), 1.0);
    let mlx = [("model", model.as_str()), ("format", "mlx")];
    assert!(value(&m, "ollmlx_runner_memory_bytes", &mlx) > 0.0);
    // The runner's own prefix-cache counters, read from its /v1/status at scrape time.
    assert!(value(&m, "ollmlx_prefix_cache_bytes", &by_model) > 0.0);
    assert!(value(&m, "ollmlx_prefix_cache_hits_total", &by_model) >= 1.0);
    assert!(value(&m, "ollmlx_prefix_cache_reused_tokens_total", &by_model) > 0.0);
    let ratio = value(&m, "ollmlx_prefix_cache_hit_ratio", &by_model);
    assert!(ratio > 0.0 && ratio <= 1.0, "{ratio}");
    assert_eq!(value(&m, "ollmlx_runner_crashes_total", &[]), 0.0);

    // Kill the runner: the scheduler counts the crash; the next request restarts it.
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    unsafe {
        libc::kill(runners[0] as i32, libc::SIGKILL);
    }
    s.wait_log("runner exited", Duration::from_secs(30));
    let m = scrape(&s);
    assert_eq!(value(&m, "ollmlx_runner_crashes_total", &by_model), 1.0);
    assert_eq!(value(&m, "ollmlx_loaded_models", &[]), 0.0);
    generate(&s, "hi", 2);
    let m = scrape(&s);
    assert_eq!(value(&m, "ollmlx_runner_restarts_total", &by_model), 1.0);
    assert_eq!(value(&m, "ollmlx_model_loads_total", &ok), 2.0);
    assert_eq!(value(&m, "ollmlx_http_requests_total", &route), 3.0);
    assert_eq!(
        value(
            &m,
            "ollmlx_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ),
        3.0,
        "the three scrapes before this one (a scrape counts once it is answered)"
    );
}

#[test]
fn json_logs_are_one_object_a_line_with_the_request_id() {
    let Some(s) = server(&[("OLLMLX_LOG_FORMAT", "json")]) else {
        return;
    };
    let r = s
        .client()
        .post(format!("{}/api/generate", s.url))
        .header("x-request-id", "it-json-1")
        .json(
            &json!({"model": TINY, "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "it-json-1");
    // The line each request logs when its response head is sent.
    let line = s.wait_log("\"message\":\"request\"", Duration::from_secs(10));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["span"]["id"], "it-json-1", "{v}");
    assert_eq!(v["span"]["name"], "request");
    assert_eq!(v["fields"]["status"], 200);
    assert_eq!(v["fields"]["route"], "/api/generate");
    // Every line is JSON: the daemon's own, and the runner's lines it re-emits.
    let log = s.log();
    let mut in_request = Vec::new();
    for l in log.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        if spans.iter().any(|s| s["id"] == "it-json-1") {
            in_request.push(
                v["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    // The load this request started logs inside its span too.
    for message in ["loading model", "MLX runner ready", "request"] {
        assert!(
            in_request.iter().any(|m| m == message),
            "{message:?} not in the request's span: {in_request:?}\n{log}"
        );
    }
}

#[test]
fn text_logs_off_a_terminal_have_no_colour_and_carry_the_request_id() {
    let Some(s) = server(&[]) else { return };
    let r = s
        .client()
        .get(format!("{}/api/version", s.url))
        .header("x-request-id", "it-text-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let line = s.wait_log("it-text-1", Duration::from_secs(10));
    assert!(line.contains("request{id=it-text-1"), "{line}");
    assert!(
        line.contains("status=200") && line.contains("route=/api/version"),
        "{line}"
    );
    assert!(
        !s.log().contains("\x1b["),
        "stderr is a pipe: no colour codes"
    );
}

/// Runs `ollmlx serve` with stderr on a pseudo-terminal until it listens; returns what it wrote.
fn serve_on_a_terminal(env: &[(&str, &str)]) -> String {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers we own; the other arguments may
    // be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors are open and from here on owned by these values alone.
    let (mut master, slave): (std::fs::File, std::fs::File) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ollmlx"));
    cmd.arg("serve")
        .env("OLLAMA_HOST", "127.0.0.1:0")
        .env("HOME", home.path())
        .env("HF_HUB_CACHE", home.path().join("hub"))
        .env("OLLAMA_MODELS", home.path().join("models"))
        .env("OLLMLX_HOME", home.path().join("ollmlx"))
        .env_remove("NO_COLOR")
        .env_remove("OLLMLX_LOG")
        .env_remove("OLLMLX_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(slave);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // closes our copy of the terminal's slave end
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("Listening on") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => out.extend(bytes),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.contains("Listening on"), "{out}");
    out
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    assert!(
        serve_on_a_terminal(&[]).contains("\x1b["),
        "a terminal gets colour"
    );
    let plain = serve_on_a_terminal(&[("NO_COLOR", "1")]);
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");
}
