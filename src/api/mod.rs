//! Ollama's wire types, and nothing else: serde structs for every request and response the daemon
//! speaks, shared by the server and the CLI client. No axum, no tokio, no logic beyond parsing the
//! few value types Ollama gives their own syntax (`keep_alive`, `options`).

pub mod anthropic;
pub mod chat;
pub mod create;
pub mod embed;
pub mod error;
pub mod generate;
pub mod models;
pub mod openai;
pub mod options;
pub mod responses;
pub mod time;
pub mod tools;

pub use chat::{ChatRequest, ChatResponse, Message};
pub use create::{CopyRequest, CreateRequest, ProgressResponse, PullRequest};
pub use embed::{EmbedRequest, EmbedResponse, EmbeddingRequest, EmbeddingResponse};
pub use error::ErrorBody;
pub use generate::{GenerateRequest, GenerateResponse, Metrics};
pub use models::*;
pub use options::{KeepAlive, Options};
pub use tools::{Logprob, Think, TokenLogprob, ToolCall, ToolCallFunction, ToolChoice};

/// The Ollama version this server reports on `/api/version`. Clients gate features on it (VS Code
/// Copilot refuses anything older than 0.6.4), so it tracks the Ollama release whose API we follow.
pub const OLLAMA_COMPAT_VERSION: &str = "0.33.0";
