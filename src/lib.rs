//! ollmlx: a drop-in replacement for the Ollama server that runs MLX models (through a supervised
//! Python `mlx_lm` runner) beside GGUF models. See `docs/architecture.md` for the layout.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod env;
#[doc(hidden)]
pub mod fuzz;
pub mod output;
pub mod pull;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod template;
