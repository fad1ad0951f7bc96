//! `ollmlx stop MODEL`: unload a model now (`/api/generate` with no prompt and `keep_alive: 0`).

use super::Printer;
use crate::api::GenerateRequest;
use crate::client::{Client, ClientError};
use clap::Args;
use futures_util::StreamExt;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// The model to unload.
    pub model: String,
}

pub async fn run(args: StopArgs, client: &Client, _p: &Printer) -> anyhow::Result<ExitCode> {
    match unload(client, &args.model).await {
        Err(e) if e.to_string().contains("not found") => {
            anyhow::bail!("couldn't find model \"{}\" to stop", args.model)
        }
        result => result?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the daemon to unload `model` as soon as it is idle; the reply comes at once.
pub async fn unload(client: &Client, model: &str) -> Result<(), ClientError> {
    let req = GenerateRequest {
        model: model.to_owned(),
        keep_alive: Some(serde_json::json!(0)),
        ..Default::default()
    };
    let mut stream = std::pin::pin!(client.generate(&req));
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(())
}
