//! Supervision with real processes: cancellation on disconnect (seen on the runner's side), a
//! runner killed mid-stream, keep-alive expiry, eviction, daemon SIGTERM and SIGKILL, the load
//! stall timeout, corrupt models and deletion.

use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// Starts an endless generation and returns the open response after its first line.
fn start_long_stream(s: &TestServer, model: &str) -> BufReader<reqwest::blocking::Response> {
    let r = s.post("/api/generate", json!({"model": model, "prompt": "Tell me a story", "options": {"num_predict": -1, "temperature": 0}}));
    assert_eq!(r.status(), 200);
    let mut reader = BufReader::new(r);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("\"response\""), "{first}");
    reader
}

#[test]
fn a_client_that_disconnects_stops_generation_in_the_runner() {
    let Some(s) = server(&[]) else { return };
    let stream = start_long_stream(&s, TINY);
    drop(stream);
    // The runner logs the cancellation itself; the daemon re-emits runner logs.
    let line = s.wait_log("request cancelled", Duration::from_secs(30));
    assert!(line.contains("runner"), "{line}");
    // The runner is free again: a new request is served at once.
    let v: Value = s
        .post(
            "/api/generate",
            json!({"model": TINY, "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["eval_count"], 2);
}

#[test]
fn a_runner_killed_mid_stream_fails_the_stream_and_is_replaced() {
    let Some(s) = server(&[]) else { return };
    let mut stream = start_long_stream(&s, TINY);
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    unsafe {
        libc::kill(runners[0] as i32, libc::SIGKILL);
    }
    let last = last_line(&mut stream);
    assert!(
        last["error"]
            .as_str()
            .unwrap_or_default()
            .contains("model runner has unexpectedly stopped"),
        "the stream must end with an error line, got {last}"
    );
    // The next request starts a fresh runner.
    let v: Value = s
        .post(
            "/api/generate",
            json!({"model": TINY, "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["eval_count"], 2, "{v}");
    let now = s.runners();
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], runners[0]);
}

#[test]
fn keep_alive_expiry_stops_the_runner_process() {
    let Some(s) = server(&[]) else { return };
    let v: Value = s
        .post("/api/generate", json!({"model": TINY, "prompt": "hi", "stream": false, "keep_alive": "1s", "options": {"num_predict": 1}}))
        .json()
        .unwrap();
    assert_eq!(v["done"], true);
    let pid = s.runners()[0];
    assert!(
        wait_gone(pid, Duration::from_secs(20)),
        "runner {pid} should exit after keep_alive"
    );
    assert_eq!(s.get("/api/ps")["models"], json!([]));
}

#[test]
fn only_max_loaded_models_stay_loaded() {
    let Some(s) = server(&[("OLLAMA_MAX_LOADED_MODELS", "1")]) else {
        return;
    };
    let _ = s.post("/api/generate", json!({"model": TINY}));
    let first = s.runners();
    assert_eq!(first.len(), 1);
    let _ = s.post("/api/generate", json!({"model": TINY_4BIT}));
    let ps = s.get("/api/ps");
    let names: Vec<&str> = ps["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ollmlx-test/tiny-llama-4bit:latest"]);
    assert!(
        wait_gone(first[0], Duration::from_secs(20)),
        "the evicted runner exits"
    );
}

#[test]
fn sigterm_ends_streams_with_a_final_line_and_stops_every_runner() {
    let Some(mut s) = server(&[]) else { return };
    let mut stream = start_long_stream(&s, TINY);
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGTERM);
    }
    let last = last_line(&mut stream);
    assert!(
        last.get("error").is_some() || last["done"] == true,
        "final line: {last}"
    );
    let status = s.signal_and_wait(0, Duration::from_secs(30));
    assert!(status.success(), "exit 0 after SIGTERM, got {status}");
    assert!(
        wait_gone(runners[0], Duration::from_secs(10)),
        "no runner outlives the daemon"
    );
}

#[test]
fn sigkill_of_the_daemon_leaves_no_runner_behind() {
    let Some(mut s) = server(&[]) else { return };
    let _ = s.post("/api/generate", json!({"model": TINY}));
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    s.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    assert!(
        wait_gone(runners[0], Duration::from_secs(15)),
        "the runner notices its parent is gone"
    );
}

#[test]
fn a_stalled_load_times_out_with_the_runners_words() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let dir = tempfile::tempdir().unwrap();
    // A "python" that says something and then hangs without ever becoming ready.
    let fake = dir.path().join("python");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'stuck loading weights' >&2\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = TestServer::start(Options {
        hub: fx.join("hub"),
        python: fake,
        env: vec![("OLLAMA_LOAD_TIMEOUT".into(), "2s".into())],
    });
    let t = Instant::now();
    let r = s.post("/api/generate", json!({"model": TINY, "prompt": "hi"}));
    assert_eq!(r.status(), 500);
    let e: Value = r.json().unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(
        msg.contains("stuck loading weights"),
        "carries the runner's last stderr line: {msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.runners().is_empty(), "the stalled runner is killed");
}

#[test]
fn corrupt_and_unloadable_models_fail_clearly_without_a_runner() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let s = TestServer::start(Options {
        hub: fx.join("hub-broken"),
        python,
        env: vec![],
    });
    let r = s.post(
        "/api/generate",
        json!({"model": "ollmlx-test/truncated", "prompt": "hi"}),
    );
    assert_eq!(r.status(), 500);
    let e: Value = r.json().unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("corrupt or incomplete") && msg.contains(".safetensors"),
        "names the file: {msg}"
    );

    let cases = [
        ("ollmlx-test/missing-shard", "incomplete download"),
        ("ollmlx-test/bin-only", "PyTorch .bin"),
        ("ollmlx-test/bad-config", "not valid JSON"),
    ];
    for (model, why) in cases {
        let r = s.post("/api/generate", json!({"model": model, "prompt": "hi"}));
        assert_eq!(r.status(), 400, "{model}");
        let e: Value = r.json().unwrap();
        assert!(e["error"].as_str().unwrap().contains(why), "{model}: {e}");
    }
    assert!(s.runners().is_empty(), "no runner was started");
    // Only loadable models are listed (the truncated one is loadable in shape; its check is at load).
    let tags = s.get("/api/tags");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for (model, _) in cases {
        assert!(
            !names.iter().any(|n| n.starts_with(model)),
            "{model} must not be listed: {names:?}"
        );
    }
}

#[test]
fn delete_unloads_and_removes_the_model_from_the_cache() {
    let Some((s, _dir, hub)) = server_on_a_copy() else {
        return;
    };
    let _ = s.post("/api/generate", json!({"model": TINY}));
    let runner = s.runners()[0];
    let r = s
        .client()
        .delete(format!("{}/api/delete", s.url))
        .json(&json!({"model": TINY}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "");
    assert!(wait_gone(runner, Duration::from_secs(10)), "unloaded first");
    assert!(
        !hub.join("models--ollmlx-test--tiny-llama").exists(),
        "snapshot, refs and blobs are gone"
    );
    assert!(
        hub.join("models--ollmlx-test--tiny-llama-4bit").exists(),
        "other models are untouched"
    );
    let r = s
        .client()
        .delete(format!("{}/api/delete", s.url))
        .json(&json!({"model": TINY}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// `OLLMLX_PYTHON` pointing at a Python without llguidance (a user's own mlx-lm): the runner's
/// load warning reaches the daemon's log at WARN, once, naming the pip command; `format` is an
/// error that names it too (the runner's 501; the daemon passes runner 5xx on as a 500).
#[test]
fn a_runner_python_without_llguidance_is_one_warning_naming_the_pip_command() {
    use std::os::unix::fs::PermissionsExt;
    const HINT: &str = "pip install 'llguidance==1.9.1'";
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let shim = tempfile::tempdir().unwrap();
    std::fs::write(
        shim.path().join("llguidance.py"),
        "raise ImportError('hidden by the test')\n",
    )
    .unwrap();
    let wrapper = shim.path().join("python");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nPYTHONPATH=\"{}:$PYTHONPATH\" exec '{}' \"$@\"\n",
            shim.path().display(),
            python.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = TestServer::start(Options {
        hub: fx.join("hub"),
        python: wrapper,
        env: vec![],
    });
    let (status, body) = post_text(
        &s,
        "/api/generate",
        json!({"model": TINY, "prompt": "Hi", "stream": false, "format": "json",
               "options": {"num_predict": 3}}),
    );
    assert!(status >= 500 && body.contains(HINT), "{status} {body}");
    let line = s.wait_log("llguidance is not installed", Duration::from_secs(30));
    assert!(line.contains("WARN") && line.contains(HINT), "{line}");
    let (status, body) = post_text(
        &s,
        "/api/generate",
        json!({"model": TINY, "prompt": "Hi", "stream": false, "options": {"num_predict": 3}}),
    );
    assert_eq!(status, 200, "text still works: {body}");
    assert_eq!(s.log().matches("llguidance is not installed").count(), 1);
}
