//! The official client libraries against the real daemon: `ollama` (tests/e2e/ollama_client_check.py),
//! `openai` (tests/e2e/openai_client_check.py, and tests/e2e/openai_responses_check.py for
//! `/v1/responses`) and `anthropic` (tests/e2e/anthropic_client_check.py for `/v1/messages`).

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
