//! The CLI against the real daemon: list, show, run (argument and piped prompts), ps, stop, rm.

use crate::support::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn ollmlx(s: &TestServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .args(args)
        .env("OLLAMA_HOST", s.url.trim_start_matches("http://"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn list_show_run_ps_stop() {
    // A hub that has nothing: `run` of a missing model pulls first, and the pull says not found.
    let hub = crate::hubs::HfHub::start(vec![]);
    let Some(s) = server(&[("HF_ENDPOINT", hub.url.as_str())]) else {
        return;
    };
    let list = stdout(&ollmlx(&s, &["list"]));
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ID", "SIZE", "MODIFIED"]);
    assert!(list.contains("ollmlx-test/tiny-llama:latest"), "{list}");
    assert!(
        stdout(&ollmlx(&s, &["ls", "ollmlx-test/tiny-llama-4"]))
            .lines()
            .count()
            == 2,
        "prefix filter"
    );

    let show = stdout(&ollmlx(&s, &["show", TINY]));
    assert!(
        show.contains("architecture") && show.contains("llama"),
        "{show}"
    );
    assert!(show.contains("2048"), "context length: {show}");

    // A one-shot prompt with the EOS fixture ends by itself.
    let out = stdout(&ollmlx(&s, &["run", TINY_EOS, "What is 2+2?"]));
    assert!(!out.trim().is_empty(), "run printed the answer");

    // Piped stdin is the prompt too, and --verbose prints Ollama's stats on stderr.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .args(["run", "--verbose", TINY_EOS])
        .env("OLLAMA_HOST", s.url.trim_start_matches("http://"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"What is 2+2?")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("eval count:") && err.contains("eval rate:"),
        "{err}"
    );

    let ps = stdout(&ollmlx(&s, &["ps"]));
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    );
    assert!(
        ps.contains("ollmlx-test/tiny-llama-eos:latest") && ps.contains("100% CPU"),
        "{ps}"
    );

    let runner = s.runners()[0];
    stdout(&ollmlx(&s, &["stop", TINY_EOS]));
    assert!(
        wait_gone(runner, Duration::from_secs(20)),
        "stop unloads the model"
    );
    assert_eq!(
        stdout(&ollmlx(&s, &["ps"])).lines().count(),
        1,
        "only the header is left"
    );

    let missing = ollmlx(&s, &["run", "nobody/nothing", "hi"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[test]
fn rm_deletes_and_version_and_no_server() {
    let Some((s, _dir, hub)) = server_on_a_copy() else {
        return;
    };
    let out = stdout(&ollmlx(&s, &["rm", TINY_4BIT]));
    assert!(out.contains(&format!("deleted '{TINY_4BIT}'")), "{out}");
    assert!(!hub.join("models--ollmlx-test--tiny-llama-4bit").exists());

    let v = stdout(&ollmlx(&s, &["--version"]));
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")) && v.contains("0.33.0"),
        "{v}"
    );

    let dead = Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .arg("list")
        .env("OLLAMA_HOST", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!dead.status.success());
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("could not connect"),
        "{dead:?}"
    );
}
