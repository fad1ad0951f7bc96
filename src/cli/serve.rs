//! `ollmlx serve`: resolve the configuration once, set up logging, run the server until a signal.

use crate::config::{Config, ServeArgs};
use std::process::ExitCode;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let home = std::env::var_os("HOME").map(Into::into);
    let config = Config::resolve(&args, home)?;
    init_tracing(config.debug_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::server::run(config))?;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(debug_level: u8) {
    let default = match debug_level {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OLLMLX_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},hyper=info,reqwest=info"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
