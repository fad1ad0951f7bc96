//! `ollmlx rm MODEL...`: unload each model, then delete it, as `ollama rm` does.

use super::Printer;
use crate::client::Client;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// The models to remove.
    #[arg(required = true)]
    pub models: Vec<String>,
}

pub async fn run(args: RmArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    for model in &args.models {
        // A model that is not loaded (or does not exist) is fine here; delete reports the latter.
        if let Err(e) = super::stop::unload(client, model).await {
            if !e.to_string().to_lowercase().contains("not found") {
                p.errln(format!("Warning: unable to stop model '{model}'"))?;
            }
        }
        client.delete(model).await?;
        p.outln(format!("deleted '{model}'"))?;
    }
    Ok(ExitCode::SUCCESS)
}
