//! The `ollmlx` binary: parse the command line, hand over to `cli::run`, map the outcome to an
//! exit code. A closed stdout (`ollmlx list | head`) is success, not an error.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ollmlx::cli::Cli::parse();
    match ollmlx::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
