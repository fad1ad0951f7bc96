//! HTTP handlers, one file per endpoint family. Handlers extract, validate into the types the
//! services take, call one service, and shape the reply. They never touch processes or files.

pub mod anthropic;
pub mod blobs;
pub mod chat;
pub mod common;
pub mod embed;
pub mod generate;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod ps;
pub mod pull;
pub mod responses;
pub mod version;
