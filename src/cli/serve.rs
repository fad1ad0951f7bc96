//! `ollmlx serve`: resolve the configuration once, set up logging, run the server until a signal.

use crate::config::{Config, ServeArgs};
use std::process::ExitCode;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let home = std::env::var_os("HOME").map(Into::into);
    let config = Config::resolve(&args, home)?;
    crate::logging::init(&config.log, config.debug_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::server::run(config))?;
    Ok(ExitCode::SUCCESS)
}
