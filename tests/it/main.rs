//! Integration tests, compiled into one binary: the real `ollmlx` daemon, the real MLX runner on
//! tiny models made at test time (tests/fixtures/make_models.py), and the CLI.

mod agent;
mod cli;
mod context;
mod distributed;
mod gguf;
mod hardening;
mod harmony;
mod hubs;
mod install;
mod malformed;
mod monitoring;
mod ollama_client;
mod process;
mod pull;
mod push;
mod repl;
mod rpc;
mod scaleout;
mod serving;
mod support;
mod ui;
mod vision;
