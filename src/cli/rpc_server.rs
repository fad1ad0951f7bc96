//! `ollmlx rpc-server`: runs llama.cpp's `rpc-server` on a helper machine, in the foreground, so
//! a main machine's daemon can spread GGUF models over it (`OLLMLX_RPC_SERVERS` there;
//! docs/scale-out.md). It needs no daemon here.
//!
//! llama.cpp's RPC is unauthenticated: anyone who reaches the port can use this machine's memory
//! and compute and send it arbitrary tensors. It listens on loopback unless `--host` says
//! otherwise, and says so plainly when it does.

use crate::runner::llamacpp::install::{LlamaInstall, Source, Waited};
use crate::runner::llamacpp::rpc::DEFAULT_PORT;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct RpcServerArgs {
    /// The IPv4 address to listen on. The default, loopback, lets only this machine connect;
    /// give a trusted LAN address for other machines (llama.cpp's RPC has no authentication).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on (llama.cpp's default).
    #[arg(long, short = 'p', default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// CPU threads for the computation (default: llama.cpp's choice).
    #[arg(long, short = 't')]
    pub threads: Option<u32>,
    /// Keep large tensors in llama.cpp's local cache (`$LLAMA_CACHE/rpc`, else
    /// `~/.cache/llama.cpp/rpc`), so the next load of the same model sends less over the network.
    #[arg(long, short = 'c')]
    pub cache: bool,
    /// llama.cpp's rpc-server binary (default: beside llama-server, beside ollmlx, on PATH, else
    /// the managed llama.cpp install, built if needed).
    #[arg(long, env = crate::env::OLLMLX_RPC_SERVER)]
    pub rpc_server: Option<PathBuf>,
    #[arg(long, env = crate::env::OLLMLX_LLAMA_SERVER, hide = true)]
    pub llama_server: Option<PathBuf>,
    #[arg(long, env = crate::env::OLLMLX_HOME, hide = true)]
    pub ollmlx_home: Option<PathBuf>,
    #[arg(long, env = crate::env::OLLMLX_LLAMA_SOURCE, hide = true)]
    pub llama_source: Option<String>,
    #[arg(long, env = crate::env::PATH, hide = true)]
    pub path: Option<OsString>,
}

/// The names llama.cpp's RPC worker goes by: `rpc-server` (ollmlx's build, Homebrew's
/// llama.cpp), `ggml-rpc-server` (llama.cpp's own build output).
const NAMES: [&str; 2] = ["rpc-server", "ggml-rpc-server"];

pub fn run(args: RpcServerArgs) -> anyhow::Result<ExitCode> {
    let host: Ipv4Addr = args.host.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--host must be an IPv4 address (llama.cpp's rpc-server binds no host names): 127.0.0.1 for this machine only, or this machine's address on a trusted network"
        )
    })?;
    if args.port == 0 {
        anyhow::bail!("--port must be from 1 to 65535");
    }
    // rpc-server exits with status 0 when it cannot bind ("Failed to create server socket"):
    // find a taken port here and say so.
    if let Err(e) = std::net::TcpListener::bind((host, args.port)) {
        anyhow::bail!("cannot listen on {host}:{}: {e}", args.port);
    }
    let binary = match find(&args, exe_dir().as_deref()) {
        Ok(b) => b,
        Err(not_found) => managed(&args).map_err(|e| anyhow::anyhow!("{not_found}\n{e}"))?,
    };
    if let Some(w) = warning(host) {
        eprintln!("{w}");
    }
    eprintln!(
        "ollmlx rpc-server: running llama.cpp's {} on {host}:{}; on the main machine: {}={}:{} ollmlx serve",
        binary.display(),
        args.port,
        crate::env::OLLMLX_RPC_SERVERS,
        if host.is_unspecified() {
            "<this machine's address>".to_owned()
        } else {
            host.to_string()
        },
        args.port
    );
    let mut cmd = std::process::Command::new(&binary);
    cmd.args(command_line(host, &args));
    foreground(cmd, &binary)
}

/// rpc-server's arguments.
fn command_line(host: Ipv4Addr, args: &RpcServerArgs) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![
        "--host".into(),
        host.to_string().into(),
        "--port".into(),
        args.port.to_string().into(),
    ];
    if let Some(t) = args.threads.filter(|t| *t > 0) {
        out.extend(["--threads".into(), t.to_string().into()]);
    }
    if args.cache {
        out.push("--cache".into());
    }
    out
}

/// The plain warning for an address other machines can reach; `None` on loopback.
pub fn warning(host: Ipv4Addr) -> Option<String> {
    if host.is_loopback() {
        return None;
    }
    let where_ = if host.is_unspecified() {
        "every network this machine is on".to_owned()
    } else {
        host.to_string()
    };
    Some(format!(
        "WARNING: llama.cpp's RPC protocol is unauthenticated and unencrypted. Anyone who can reach \
         this port on {where_} can use this machine's memory and compute and send it arbitrary \
         tensors. Run it on a trusted network only, and firewall the port to the main machine."
    ))
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// `OLLMLX_RPC_SERVER`, else an rpc-server beside the llama-server the daemon would use
/// (`OLLMLX_LLAMA_SERVER`'s directory), beside `ollmlx`, or on `PATH`. The error says what to
/// do; the caller tries the managed install next.
fn find(args: &RpcServerArgs, exe_dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(b) = args
        .rpc_server
        .as_ref()
        .filter(|b| !b.as_os_str().is_empty())
    {
        return if b.is_file() {
            Ok(b.clone())
        } else {
            Err(format!(
                "{} is set to {}, which does not exist",
                crate::env::OLLMLX_RPC_SERVER,
                b.display()
            ))
        };
    }
    let beside_llama = args
        .llama_server
        .as_ref()
        .filter(|b| !b.as_os_str().is_empty())
        .and_then(|b| b.parent().map(Path::to_path_buf));
    let on_path = args
        .path
        .as_ref()
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside_llama
        .into_iter()
        .chain(exe_dir.map(Path::to_path_buf))
        .chain(on_path)
        .flat_map(|d| NAMES.map(|n| d.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "llama.cpp's rpc-server was not found (set OLLMLX_RPC_SERVER, or put rpc-server beside llama-server, beside ollmlx or on PATH; on a Mac `brew install llama.cpp` has it)".into()
        })
}

/// The managed llama.cpp's rpc-server (`$OLLMLX_HOME/llama-server`), built first if needed, with
/// the build's progress on stderr.
fn managed(args: &RpcServerArgs) -> anyhow::Result<PathBuf> {
    let home = match &args.ollmlx_home {
        Some(h) if !h.as_os_str().is_empty() => h.clone(),
        _ => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| {
            anyhow::anyhow!("cannot find a home directory: set HOME or OLLMLX_HOME")
        })?)
        .join(".ollmlx"),
    };
    let install = std::sync::Arc::new(LlamaInstall::new(
        Source::pinned(
            args.llama_source
                .as_deref()
                .filter(|s| !s.trim().is_empty()),
        ),
        home.join("llama-server"),
    ));
    let beside = |llama: &Path| llama.with_file_name("rpc-server");
    if let Some(bin) = install
        .installed()
        .map(|l| beside(&l))
        .filter(|b| b.is_file())
    {
        return Ok(bin);
    }
    eprintln!(
        "building llama.cpp (with its RPC backend) into {}; this takes several minutes",
        install.dest().display()
    );
    crate::logging::init(
        &crate::config::LogSettings {
            format: crate::config::LogFormat::Text,
            filter: Some("info".into()),
            color: true,
        },
        0,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let llama = rt
        .block_on(install.ensure(Duration::from_secs(24 * 3600)))
        .map_err(|w| match w {
            Waited::Failed(msg) => anyhow::anyhow!("building llama.cpp failed: {msg}"),
            Waited::StillInstalling => anyhow::anyhow!("building llama.cpp did not finish"),
        })?;
    let bin = beside(&llama);
    anyhow::ensure!(
        bin.is_file(),
        "the managed llama.cpp at {} has no rpc-server",
        install.dest().display()
    );
    Ok(bin)
}

/// Runs rpc-server in the foreground: on Unix it replaces this process, so signals (Ctrl-C, a
/// service manager's SIGTERM) and the exit status are its own.
#[cfg(unix)]
fn foreground(mut cmd: std::process::Command, binary: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    anyhow::bail!("cannot run {}: {err}", binary.display())
}

#[cfg(not(unix))]
fn foreground(mut cmd: std::process::Command, binary: &Path) -> anyhow::Result<ExitCode> {
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", binary.display()))?;
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> RpcServerArgs {
        let cli =
            crate::cli::Cli::try_parse_from(["ollmlx", "rpc-server"].iter().chain(extra).copied())
                .unwrap();
        match cli.command {
            Some(crate::cli::Command::RpcServer(a)) => RpcServerArgs {
                // The test's environment must not leak in.
                rpc_server: extra
                    .contains(&"--rpc-server")
                    .then_some(a.rpc_server.clone())
                    .flatten(),
                llama_server: None,
                path: None,
                ..a
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_to_loopback_on_llamas_port() {
        let a = parse(&[]);
        assert_eq!(
            (a.host.as_str(), a.port, a.threads, a.cache),
            ("127.0.0.1", 50052, None, false)
        );
        assert_eq!(
            command_line(Ipv4Addr::LOCALHOST, &a),
            ["--host", "127.0.0.1", "--port", "50052"].map(OsString::from)
        );
        let a = parse(&[
            "--host",
            "10.0.0.5",
            "-p",
            "6000",
            "--threads",
            "1",
            "--cache",
        ]);
        assert_eq!(
            command_line(a.host.parse().unwrap(), &a),
            [
                "--host",
                "10.0.0.5",
                "--port",
                "6000",
                "--threads",
                "1",
                "--cache"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn warns_off_loopback_only() {
        assert_eq!(warning(Ipv4Addr::LOCALHOST), None);
        assert_eq!(warning(Ipv4Addr::new(127, 0, 0, 2)), None);
        let w = warning(Ipv4Addr::new(192, 168, 1, 20)).unwrap();
        assert!(
            w.contains("unauthenticated") && w.contains("trusted network"),
            "{w}"
        );
        assert!(w.contains("192.168.1.20"));
        assert!(warning(Ipv4Addr::UNSPECIFIED)
            .unwrap()
            .contains("every network"));
    }

    #[test]
    fn finds_rpc_server_where_llama_server_is_then_beside_ollmlx_then_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |sub: &str, name: &str| {
            let d = dir.path().join(sub);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), b"").unwrap();
            d
        };
        let llama = mk("llama", "rpc-server");
        let exe = mk("exe", "rpc-server");
        let path = mk("path", "ggml-rpc-server");
        let mut a = parse(&[]);
        a.path = Some(std::env::join_paths([&path]).unwrap());
        assert_eq!(find(&a, None).unwrap(), path.join("ggml-rpc-server"));
        assert_eq!(find(&a, Some(&exe)).unwrap(), exe.join("rpc-server"));
        a.llama_server = Some(llama.join("llama-server"));
        assert_eq!(find(&a, Some(&exe)).unwrap(), llama.join("rpc-server"));
        a.rpc_server = Some(dir.path().join("nope"));
        let err = find(&a, Some(&exe)).unwrap_err();
        assert!(err.contains("OLLMLX_RPC_SERVER is set to"), "{err}");
        let none = RpcServerArgs {
            rpc_server: None,
            llama_server: None,
            path: None,
            ..parse(&[])
        };
        let err = find(&none, None).unwrap_err();
        assert!(err.contains("rpc-server was not found"), "{err}");
    }
}
