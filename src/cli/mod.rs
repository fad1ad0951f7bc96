//! The command line: one subcommand per file. Every command except `serve` is a thin HTTP client
//! of a running daemon (found through `OLLAMA_HOST`), exactly as the `ollama` CLI is: each checks
//! the daemon is up (`HEAD /`) first, then talks to it through [`crate::client::Client`] and
//! writes through a [`Printer`].

use crate::client::Client;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod cp;
pub mod create;
pub mod editor;
pub mod format;
pub mod generate;
pub mod images;
pub mod interactive;
pub mod list;
pub mod login;
pub mod modelfile;
pub mod printer;
pub mod progress;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rm;
pub mod rpc_server;
pub mod run;
pub mod serve;
pub mod show;
pub mod stop;
#[cfg(test)]
mod testing;

pub use printer::Printer;

/// ollmlx: Ollama's API, with MLX models beside GGUF ones.
#[derive(Debug, Parser)]
#[command(name = "ollmlx", version, about, disable_version_flag = true)]
pub struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// The daemon the client commands talk to: `[scheme://]host[:port]`. (`serve` listens on
    /// its own `--host`.)
    #[arg(
        long = "ollama-host",
        global = true,
        env = crate::env::OLLAMA_HOST,
        default_value = "127.0.0.1:11434",
        value_name = "HOST"
    )]
    pub server: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// `ServeArgs` is large next to the other variants; a `Command` is built once, so boxing would buy
// nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server.
    #[command(alias = "start")]
    Serve(crate::config::ServeArgs),
    /// Create a model from a Modelfile.
    Create(create::CreateArgs),
    /// Show information for a model.
    Show(show::ShowArgs),
    /// Run a model.
    Run(run::RunArgs),
    /// Stop a running model.
    Stop(stop::StopArgs),
    /// Pull a model from a registry.
    Pull(pull::PullArgs),
    /// Push a model to a registry.
    Push(push::PushArgs),
    /// List models.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// List running models.
    Ps(ps::PsArgs),
    /// Copy a model.
    Cp(cp::CpArgs),
    /// Remove a model.
    Rm(rm::RmArgs),
    /// Store a Hugging Face token for gated and private repos.
    Login(login::LoginArgs),
    /// Lend this machine to another's GGUF models: run llama.cpp's rpc-server (trusted network
    /// only: it has no authentication).
    RpcServer(rpc_server::RpcServerArgs),
    /// Print shell completions (for packagers).
    #[command(hide = true)]
    Completions(generate::CompletionsArgs),
    /// Print the man page, or write every page into a directory (for packagers).
    #[command(hide = true)]
    Man(generate::ManArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        // The server builds its own multi-threaded runtime.
        Some(Command::Serve(args)) => return serve::run(args),
        // Login writes a local file; it needs no daemon.
        Some(Command::Login(args)) => return login::run(args),
        // llama.cpp's rpc-server, in the foreground; no daemon either.
        Some(Command::RpcServer(args)) => return rpc_server::run(args),
        // Generated from the command line itself; no daemon either.
        Some(Command::Completions(args)) => return generate::completions(args, &Printer::stdio()),
        Some(Command::Man(args)) => return generate::man(args, &Printer::stdio()),
        Some(command) => command,
        None if cli.version => {
            return runtime()?.block_on(version(&Client::from_host(&cli.server), &Printer::stdio()))
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let client = Client::from_host(&cli.server);
    runtime()?.block_on(dispatch(command, &client, &Printer::stdio()))
}

/// The client commands need only one thread: they wait on the daemon, not on the CPU.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs a client command, after checking the daemon is up (Ollama's `checkServerHeartbeat`).
pub async fn dispatch(command: Command, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    client.heartbeat().await?;
    match command {
        Command::Serve(_) => unreachable!("serve is dispatched before a client runtime starts"),
        Command::Create(args) => create::run(args, client, p).await,
        Command::Show(args) => show::run(args, client, p).await,
        Command::Run(args) => run::run(args, client, p).await,
        Command::Stop(args) => stop::run(args, client, p).await,
        Command::Pull(args) => pull::run(args, client, p).await,
        Command::Push(args) => push::run(args, client, p).await,
        Command::List(args) => list::run(args, client, p).await,
        Command::Ps(args) => ps::run(args, client, p).await,
        Command::Cp(args) => cp::run(args, client, p).await,
        Command::Rm(args) => rm::run(args, client, p).await,
        Command::Login(args) => login::run(args),
        Command::RpcServer(args) => rpc_server::run(args),
        Command::Completions(args) => generate::completions(args, p),
        Command::Man(args) => generate::man(args, p),
    }
}

/// `ollmlx -v`, as `ollama -v`: the daemon's version, and a warning when this client speaks a
/// different one (or no daemon answers). Both are Ollama API versions: the daemon reports
/// [`crate::api::OLLAMA_COMPAT_VERSION`] on `/api/version`, so that is this client's version too.
async fn version(client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let ours = crate::api::OLLAMA_COMPAT_VERSION;
    match client.version().await {
        Ok(theirs) => {
            p.outln(format!(
                "ollmlx version is {} (Ollama API {theirs})",
                env!("CARGO_PKG_VERSION")
            ))?;
            if theirs != ours {
                p.outln(format!("Warning: client speaks Ollama API {ours}"))?;
            }
        }
        Err(_) => {
            p.outln("Warning: could not connect to a running ollmlx instance")?;
            p.outln(format!(
                "ollmlx version is {} (Ollama API {ours})",
                env!("CARGO_PKG_VERSION")
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_ollama_style_command_lines() {
        let cli = Cli::try_parse_from([
            "ollmlx",
            "run",
            "llama3.2",
            "why",
            "is",
            "the",
            "sky",
            "blue",
            "--verbose",
            "--keepalive",
            "10m",
            "--think=high",
            "--format",
            "json",
        ])
        .unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!()
        };
        assert_eq!(run.model, "llama3.2");
        assert_eq!(run.prompt, ["why", "is", "the", "sky", "blue"]);
        assert!(run.verbose);
        assert_eq!(run.keepalive.as_deref(), Some("10m"));
        assert_eq!(run.think.as_deref(), Some("high"));
        assert_eq!(run.format.as_deref(), Some("json"));

        // A bare --think means true and does not eat the next word.
        let cli = Cli::try_parse_from(["ollmlx", "run", "m", "--think", "hi"]).unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!()
        };
        assert_eq!(run.think.as_deref(), Some("true"));
        assert_eq!(run.prompt, ["hi"]);

        let cli = Cli::try_parse_from(["ollmlx", "ls", "qwen"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::List(l)) if l.prefix.as_deref() == Some("qwen"))
        );
        let cli = Cli::try_parse_from(["ollmlx", "show", "m", "-v", "--license"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Show(s)) if s.verbose && s.license));
        let cli = Cli::try_parse_from(["ollmlx", "rm", "a", "b"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Rm(r)) if r.models == ["a", "b"]));
        assert!(Cli::try_parse_from(["ollmlx", "rm"]).is_err());
        let cli = Cli::try_parse_from([
            "ollmlx",
            "create",
            "mine",
            "-f",
            "./My.modelfile",
            "--quantize",
            "q4_K_M",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Create(c))
            if c.model == "mine"
                && c.file.as_deref() == Some(std::path::Path::new("./My.modelfile"))
                && c.quantize.as_deref() == Some("q4_K_M")));
        let cli = Cli::try_parse_from(["ollmlx", "create", "mine", "-q", "q8_0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Create(c))
            if c.file.is_none() && c.quantize.as_deref() == Some("q8_0")));
        assert!(Cli::try_parse_from(["ollmlx", "create"]).is_err());
        let cli = Cli::try_parse_from(["ollmlx", "cp", "a", "b:c"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Cp(c))
            if c.source == "a" && c.destination == "b:c"));
        let cli = Cli::try_parse_from(["ollmlx", "-v"]).unwrap();
        assert!(cli.version && cli.command.is_none());
        let cli = Cli::try_parse_from(["ollmlx", "ps", "--ollama-host", "1.2.3.4:5"]).unwrap();
        assert_eq!(cli.server, "1.2.3.4:5");
    }

    fn parse(args: &[&str]) -> Command {
        let cli = Cli::try_parse_from(std::iter::once("ollmlx").chain(args.iter().copied()));
        cli.unwrap().command.unwrap()
    }

    #[tokio::test]
    async fn no_daemon_means_ollamas_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = Client::new(format!("http://{}", listener.local_addr().unwrap()));
        drop(listener);
        let (p, out) = Printer::capture();
        let err = dispatch(parse(&["list"]), &client, &p).await.unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "could not connect to ollmlx server, run 'ollmlx serve' to start it"
        );
        assert_eq!(out.out(), "");
    }

    #[tokio::test]
    async fn list_ps_and_show_print_tables() {
        let (client, _) = testing::daemon().await;
        let (p, out) = Printer::capture();
        dispatch(parse(&["list"]), &client, &p).await.unwrap();
        let list = out.out();
        assert!(
            list.starts_with("NAME        ID              SIZE      MODIFIED\n"),
            "{list}"
        );
        assert!(
            list.contains("m:latest    46e0c10c039e    2.0 GB    "),
            "{list}"
        );

        let (p, out) = Printer::capture();
        dispatch(parse(&["ps"]), &client, &p).await.unwrap();
        assert_eq!(
            out.out(),
            "NAME        ID              SIZE     PROCESSOR    CONTEXT    UNTIL\n\
             m:latest    46e0c10c039e    100 B    100% GPU     4096       Forever\n"
        );

        let (p, out) = Printer::capture();
        dispatch(parse(&["show", "m"]), &client, &p).await.unwrap();
        assert!(out
            .out()
            .starts_with("  Model\n    architecture    llama\n    parameters      1.05M\n"));
        let (p, out) = Printer::capture();
        dispatch(parse(&["show", "m", "--template"]), &client, &p)
            .await
            .unwrap();
        assert_eq!(out.out(), "{{ .Prompt }}\n");
        let err = dispatch(parse(&["show", "m", "--template", "--system"]), &client, &p).await;
        assert!(err
            .unwrap_err()
            .to_string()
            .starts_with("only one of '--license'"));
        let err = dispatch(parse(&["show", "nope"]), &client, &p)
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "model 'nope' not found");
    }

    #[tokio::test]
    async fn stop_and_rm_unload_first() {
        let (client, log) = testing::daemon().await;
        let (p, out) = Printer::capture();
        dispatch(parse(&["stop", "m"]), &client, &p).await.unwrap();
        let err = dispatch(parse(&["stop", "nope"]), &client, &p)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "couldn't find model \"nope\" to stop");
        assert_eq!(out.out(), "");

        log.lock().unwrap().clear();
        dispatch(parse(&["rm", "m", "other"]), &client, &p)
            .await
            .unwrap();
        assert_eq!(out.out(), "deleted 'm'\ndeleted 'other'\n");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "generate m keep_alive=0",
                "delete m",
                "generate other keep_alive=0",
                "delete other"
            ]
        );
        let err = dispatch(parse(&["rm", "nope"]), &client, &p)
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "model 'nope' not found");
        assert_eq!(
            out.err(),
            "",
            "a model that is not loaded is not worth a warning"
        );
    }
}
