//! The official client libraries against the real daemon: `ollama` (tests/e2e/ollama_client_check.py),
//! `openai` (tests/e2e/openai_client_check.py, and tests/e2e/openai_responses_check.py for
//! `/v1/responses`), `anthropic` (tests/e2e/anthropic_client_check.py for `/v1/messages`) and
//! the `ollama` JavaScript client (tests/e2e/js/ollama_js_check.mjs).

use crate::support::*;

/// Runs a client check script against a fresh daemon; it prints "all checks passed".
fn run_check(script: &str) {
    let Some(s) = server(&[]) else { return };
    e2e_check(&s, script, &[("OLLMLX_TEST_MODEL", TINY)]);
}

#[test]
fn official_ollama_python_client_lists_shows_generates_and_chats() {
    run_check("ollama_client_check.py");
}

#[test]
fn official_openai_python_sdk_chats_streams_lists_and_embeds() {
    run_check("openai_client_check.py");
}

#[test]
fn official_openai_python_sdk_responses_reason_stream_and_call_tools() {
    run_check("openai_responses_check.py");
}

#[test]
fn official_anthropic_python_sdk_messages_think_stream_and_use_tools() {
    run_check("anthropic_client_check.py");
}

#[test]
fn official_ollama_javascript_client_streams_thinks_calls_tools_and_errors() {
    let Some(node) = node() else { return };
    let Some(s) = server(&[]) else { return };
    let out = std::process::Command::new(node)
        .arg(repo_root().join("tests/e2e/js/ollama_js_check.mjs"))
        .env("OLLAMA_HOST", &s.url)
        .env("OLLMLX_TEST_MODEL", TINY)
        .env("OLLMLX_TEST_AGENT", "ollmlx-test/tiny-agent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
