//! The command line: one subcommand per file. Every command except `serve` is a thin HTTP client
//! of a running daemon (found through `OLLAMA_HOST`), exactly as the `ollama` CLI is.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod serve;

/// ollmlx: Ollama's API, with MLX models beside GGUF ones.
#[derive(Debug, Parser)]
#[command(name = "ollmlx", version, about, disable_version_flag = true)]
pub struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server.
    #[command(alias = "start")]
    Serve(crate::config::ServeArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Serve(args)) => serve::run(args),
        None if cli.version => {
            println!("ollmlx version is {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
