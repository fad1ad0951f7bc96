//! An MLX model split across two ranks through the daemon (`OLLMLX_MLX_HOSTS`), on loopback:
//! mlx.launch's ring backend, tensor parallel. Same greedy output as the daemon that runs it in
//! one process; `/api/ps` says how it is split; a rank killed with SIGKILL fails the request in
//! flight with an error and the next request starts the job again.

use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn chat(s: &TestServer, content: &str) -> String {
    let r = s.post(
        "/api/chat",
        json!({"model": TINY, "stream": false,
               "messages": [{"role": "user", "content": content}],
               "options": {"num_predict": 16, "temperature": 0}}),
    );
    let status = r.status();
    let v: Value = r.json().unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["eval_count"], 16, "{v}");
    v["message"]["content"].as_str().unwrap().to_owned()
}

/// The pids of the job's ranks: processes with `MLX_RANK` under the daemon's runner, less each
/// rank's watchdog (a fork of the rank, so a child of a process with `MLX_RANK`).
fn ranks(s: &TestServer) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut todo: Vec<(u32, bool)> = children_of(s.pid())
        .into_iter()
        .map(|p| (p, false))
        .collect();
    while let Some((p, under_rank)) = todo.pop() {
        let rank = std::fs::read(format!("/proc/{p}/environ"))
            .ok()
            .and_then(|env| {
                env.split(|b| *b == 0)
                    .find_map(|i| i.strip_prefix(b"MLX_RANK=").map(<[u8]>::to_vec))
            })
            .map(|r| String::from_utf8_lossy(&r).parse::<u32>().unwrap());
        if let (Some(rank), false) = (rank, under_rank) {
            out.push((rank, p));
        }
        todo.extend(children_of(p).into_iter().map(|c| (c, rank.is_some())));
    }
    out.sort();
    out
}

#[test]
fn a_model_split_over_two_ranks_answers_as_one_process_and_survives_a_lost_rank() {
    let Some(one) = server(&[]) else { return };
    let prompts = ["hello there", "the quick brown fox", "one two three"];
    let want: Vec<String> = prompts.iter().map(|p| chat(&one, p)).collect();
    drop(one);

    // Every MLX model split over two ranks, but one model kept here (a per-model rule).
    let hosts = format!("127.0.0.1,127.0.0.1; {TINY_EOS}=local");
    let Some(s) = server(&[("OLLMLX_MLX_HOSTS", &hosts)]) else {
        return;
    };
    let show = |m: &str| -> Value { s.post("/api/show", json!({"model": m})).json().unwrap() };
    assert_eq!(
        show(TINY)["distributed"],
        json!({"backend": "mlx-ring", "split": "auto", "hosts": ["127.0.0.1", "127.0.0.1"]})
    );
    assert!(show(TINY_EOS).get("distributed").is_none());
    let got: Vec<String> = prompts.iter().map(|p| chat(&s, p)).collect();
    assert_eq!(got, want, "greedy output of the split model");

    let ps = s.get("/api/ps");
    assert_eq!(
        ps["models"][0]["distributed"],
        json!({"backend": "mlx-ring", "split": "tensor", "hosts": ["127.0.0.1", "127.0.0.1"]}),
        "{ps}"
    );
    // The model kept here runs in one process beside it.
    let r = s.post(
        "/api/generate",
        json!({"model": TINY_EOS, "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
    );
    assert_eq!(r.status(), 200);
    let ps = s.get("/api/ps");
    let models = ps["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{ps}");
    for m in models {
        assert_eq!(
            m.get("distributed").is_some(),
            m["name"] == format!("{TINY}:latest"),
            "{ps}"
        );
    }
    let r = ranks(&s);
    assert_eq!(
        r.iter().map(|(rank, _)| *rank).collect::<Vec<_>>(),
        [0, 1],
        "{r:?}"
    );

    // SIGKILL rank 1 in the middle of a stream: the stream ends with an error, never hangs.
    let resp = s
        .client()
        .post(format!("{}/api/chat", s.url))
        .json(&json!({"model": TINY,
                      "messages": [{"role": "user", "content": "go on and on"}],
                      "options": {"num_predict": 100000, "temperature": 0}}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut lines = BufReader::new(resp).lines();
    lines.next().unwrap().unwrap();
    unsafe { libc::kill(r[1].1 as i32, libc::SIGKILL) };
    let started = Instant::now();
    let mut last = Value::Null;
    for line in lines {
        let Ok(line) = line else { break };
        if !line.trim().is_empty() {
            last = serde_json::from_str(&line).unwrap();
        }
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(
        last.get("error").is_some(),
        "the stream ended without an error: {last}"
    );
    // Every rank of the old job is gone, the daemon saw its runner (the job's launcher) end,
    // and the next request starts the job again.
    for (_, pid) in &r {
        assert!(
            wait_gone(*pid, Duration::from_secs(60)),
            "rank {pid} lived on"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = |s: &TestServer| {
        s.get("/api/ps")["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == format!("{TINY}:latest"))
    };
    while listed(&s) {
        assert!(
            Instant::now() < deadline,
            "the daemon never saw the job end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(chat(&s, prompts[0]), want[0]);
    assert_eq!(ranks(&s).len(), 2);
}

#[test]
fn a_bad_host_list_is_a_config_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .arg("serve")
        .env("OLLMLX_MLX_HOSTS", "mac-studio,mac-mini")
        .env("OLLAMA_HOST", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OLLMLX_MLX_HOSTS") && err.contains("not an IP address"),
        "{err}"
    );
}
