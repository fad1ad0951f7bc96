//! `ollmlx cp SOURCE DESTINATION`: copy a model under a new name, as `ollama cp` does.

use super::Printer;
use crate::client::Client;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// The model to copy.
    pub source: String,
    /// The new name.
    pub destination: String,
}

pub async fn run(args: CpArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    client.copy(&args.source, &args.destination).await?;
    p.outln(format!(
        "copied '{}' to '{}'",
        args.source, args.destination
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::cli::create::fake;
    use crate::cli::{dispatch, Cli, Printer};
    use clap::Parser;

    #[tokio::test]
    async fn cp_copies_and_reports_a_missing_source() {
        let (client, state) = fake::daemon().await;
        let cmd = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("ollmlx").chain(args.iter().copied()));
            cli.unwrap().command.unwrap()
        };
        let (p, out) = Printer::capture();
        dispatch(cmd(&["cp", "m", "m2:v1"]), &client, &p)
            .await
            .unwrap();
        assert_eq!(out.out(), "copied 'm' to 'm2:v1'\n");

        let err = dispatch(cmd(&["cp", "nope", "x"]), &client, &p)
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "model 'nope' not found");
        assert_eq!(out.out(), "copied 'm' to 'm2:v1'\n");
        assert_eq!(state.lock().unwrap().log, ["copy m m2:v1", "copy nope x"]);
        assert!(Cli::try_parse_from(["ollmlx", "cp", "only-one"]).is_err());
    }
}
