//! GGUF across machines: llama.cpp's RPC backend. Each helper machine runs llama.cpp's
//! `rpc-server` (`ollmlx rpc-server`); `OLLMLX_RPC_SERVERS=host:port,...` makes llama-server load
//! GGUF models with `--rpc`, and llama.cpp spreads whole layers over the RPC devices and this
//! machine's GPU, if any, in proportion to each device's free memory (docs/scale-out.md).
//!
//! llama.cpp's RPC is unauthenticated: whoever reaches an rpc-server's port can use its memory
//! and compute and send it arbitrary tensors. rpc-servers belong on a trusted network only, and
//! `ollmlx rpc-server` binds to loopback unless told otherwise.
//!
//! Before llama-server starts, the daemon checks every rpc-server itself (llama-server aborts
//! at its first unreachable one, with a line in its log), and tells a busy one apart: an
//! rpc-server serves one client at a time, and a second llama-server would wait on it silently.

use super::super::RunnerError;
use crate::api::Distributed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One rpc-server, as `OLLMLX_RPC_SERVERS` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcServer {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// How this machine is named among the hosts of a split model (`/api/ps`, `/api/show`).
pub const LOCAL_HOST_LABEL: &str = "local";

/// llama.cpp's rpc-server port.
pub const DEFAULT_PORT: u16 = 50052;

/// Parses `OLLMLX_RPC_SERVERS`: `host:port` entries, comma separated (blank entries and spaces
/// around them ignored). llama.cpp splits an endpoint at its first `:` and resolves the host as
/// IPv4, so IPv6 literals cannot work and are refused here, with schemes and paths.
pub fn parse_servers(s: &str) -> Result<Vec<RpcServer>, String> {
    let mut out: Vec<RpcServer> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let server = parse_one(entry)?;
        if out.contains(&server) {
            return Err(format!("\"{entry}\" is listed twice"));
        }
        out.push(server);
    }
    Ok(out)
}

fn parse_one(entry: &str) -> Result<RpcServer, String> {
    if entry.contains("://") {
        return Err(format!(
            "\"{entry}\": expected host:port, without a scheme (llama.cpp's RPC is plain TCP)"
        ));
    }
    if entry.contains('/') {
        return Err(format!("\"{entry}\": expected host:port, without a path"));
    }
    if entry.starts_with('[') || entry.matches(':').count() > 1 {
        return Err(format!(
            "\"{entry}\": IPv6 addresses are not supported by llama.cpp's RPC; use an IPv4 address or a host name"
        ));
    }
    let Some((host, port)) = entry.split_once(':') else {
        return Err(format!(
            "\"{entry}\": expected host:port (rpc-server's port is {DEFAULT_PORT} by default)"
        ));
    };
    if host.is_empty() {
        return Err(format!("\"{entry}\": the host is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{entry}\": the host has spaces in it"));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "\"{entry}\": the port must be a number from 1 to 65535"
            ))
        }
    };
    Ok(RpcServer {
        host: host.to_owned(),
        port,
    })
}

/// llama-server's `--rpc` value.
pub fn flag_value(servers: &[RpcServer]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// How a GGUF model loaded with these rpc-servers is placed: whole layers over this machine and
/// each rpc-server (`None` without any).
pub fn distributed(servers: &[RpcServer]) -> Option<Distributed> {
    if servers.is_empty() {
        return None;
    }
    Some(Distributed {
        backend: "llama-rpc".into(),
        split: "layers".into(),
        hosts: std::iter::once(LOCAL_HOST_LABEL.to_owned())
            .chain(servers.iter().map(ToString::to_string))
            .collect(),
    })
}

/// How long a connection to an rpc-server may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an rpc-server that accepted the connection may take to answer the handshake before
/// it counts as busy: a runner being stopped (a reload) lets go of it within seconds.
pub const BUSY_WAIT: Duration = Duration::from_secs(15);

/// The handshake, as llama.cpp's client opens every connection (ggml-rpc.cpp `negotiate_hello`):
/// `RPC_CMD_HELLO` (14, fixed across protocol versions), the request's size as a little-endian
/// u64, and the request: `RPC_CONN_CAPS_SIZE` (24) bytes of transport capabilities, all zero
/// (plain TCP, no RDMA).
fn hello() -> Vec<u8> {
    let mut m = vec![14u8];
    m.extend_from_slice(&24u64.to_le_bytes());
    m.extend_from_slice(&[0u8; 24]);
    m
}

/// What one rpc-server check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered the handshake (or closed the connection: a protocol it does not speak, which
    /// llama-server reports in its own words): free to serve a llama-server.
    Up,
    /// Nothing listens there, or it cannot be reached in time.
    Unreachable(String),
    /// It took the connection but did not answer: it is serving another client (an rpc-server
    /// serves one at a time).
    Busy,
}

/// Checks one rpc-server: a TCP connection within `connect`, then the handshake's first answer
/// byte within `busy` (the connection is then closed; the rpc-server goes back to waiting).
pub async fn probe(server: &RpcServer, connect: Duration, busy: Duration) -> Probe {
    let addr = (server.host.as_str(), server.port);
    let mut stream = match tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr)).await
    {
        Err(_) => {
            return Probe::Unreachable(format!("no answer within {}s", connect.as_secs_f64()))
        }
        Ok(Err(e)) => return Probe::Unreachable(e.to_string()),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    if stream.write_all(&hello()).await.is_err() {
        return Probe::Up; // it closed on us: alive, speaking something else
    }
    let mut first = [0u8; 1];
    match tokio::time::timeout(busy, stream.read(&mut first)).await {
        Err(_) => Probe::Busy,
        Ok(_) => Probe::Up,
    }
}

/// Checks every rpc-server at once; the first problem is the load's error, naming the server
/// and `OLLMLX_RPC_SERVERS`.
pub async fn check_all(
    servers: &[RpcServer],
    connect: Duration,
    busy: Duration,
) -> Result<(), RunnerError> {
    let probes =
        futures_util::future::join_all(servers.iter().map(|s| probe(s, connect, busy))).await;
    for (server, p) in servers.iter().zip(probes) {
        match p {
            Probe::Up => {}
            Probe::Unreachable(why) => {
                return Err(RunnerError::Load {
                    message: format!(
                        "cannot reach the llama.cpp rpc-server at {server} ({why}); start `ollmlx rpc-server` there, or remove it from {}",
                        crate::env::OLLMLX_RPC_SERVERS
                    ),
                })
            }
            Probe::Busy => {
                return Err(RunnerError::Load {
                    message: format!(
                        "the llama.cpp rpc-server at {server} (from {}) is busy serving another client: an rpc-server serves one model at a time, so stop the other model first or give each its own rpc-servers",
                        crate::env::OLLMLX_RPC_SERVERS
                    ),
                })
            }
        }
    }
    Ok(())
}

/// What llama-server's log says about its rpc-servers when it exits while loading (it aborts
/// with one of these lines: ggml-rpc.cpp), as a clear load error quoting the line; `None` if it
/// says nothing of them. `line_with` finds the last log line containing a needle.
pub fn explain_exit(line_with: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = crate::env::OLLMLX_RPC_SERVERS;
    let causes: [(&str, String); 5] = [
        ("Failed to connect to", format!("llama-server could not connect to an rpc-server from {var}: check that `ollmlx rpc-server` runs there and that this machine can reach it")),
        ("Cannot resolve host", format!("llama-server could not resolve an rpc-server's host from {var}")),
        ("RPC server version mismatch", format!("an rpc-server from {var} speaks another version of llama.cpp's RPC protocol: run the same llama.cpp build on every machine (`ollmlx rpc-server` runs ollmlx's)")),
        ("RPC handshake failed", format!("an rpc-server from {var} refused llama.cpp's RPC handshake: run the same llama.cpp build on every machine (`ollmlx rpc-server` runs ollmlx's)")),
        ("Remote RPC server crashed", format!("an rpc-server from {var} went away or failed while the model was loading (see its output)")),
    ];
    causes.into_iter().find_map(|(needle, why)| {
        let line = line_with(needle)?;
        // From the needle on: ggml prefixes the source file and line.
        let said = line.find(needle).map_or(line.as_str(), |at| &line[at..]);
        Some(format!("{why} (llama-server: \"{}\")", said.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16) -> RpcServer {
        RpcServer {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_host_port_lists() {
        assert_eq!(parse_servers(""), Ok(vec![]));
        assert_eq!(parse_servers(" , "), Ok(vec![]));
        assert_eq!(
            parse_servers("192.168.1.10:50052, gpu-box.lan:6000,"),
            Ok(vec![
                server("192.168.1.10", 50052),
                server("gpu-box.lan", 6000)
            ])
        );
        assert_eq!(
            flag_value(&parse_servers("a:1,b:2").unwrap()),
            "a:1,b:2",
            "llama-server's --rpc value"
        );
        for (bad, says) in [
            ("host", "expected host:port"),
            (":50052", "host is empty"),
            ("h:0", "1 to 65535"),
            ("h:65536", "1 to 65535"),
            ("h:port", "1 to 65535"),
            ("h:", "1 to 65535"),
            ("tcp://h:1", "scheme"),
            ("h:1/x", "path"),
            ("[::1]:50052", "IPv6"),
            ("::1:50052", "IPv6"),
            ("a:1,a:1", "twice"),
            ("a b:1", "spaces"),
        ] {
            let err = parse_servers(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn distributed_lists_this_machine_first() {
        assert_eq!(distributed(&[]), None);
        let d = distributed(&[server("a", 1), server("b", 2)]).unwrap();
        assert_eq!(d.backend, "llama-rpc");
        assert_eq!(d.split, "layers");
        assert_eq!(d.hosts, ["local", "a:1", "b:2"]);
    }

    #[test]
    fn explains_llama_servers_rpc_aborts() {
        let says =
            |line: &'static str| move |needle: &str| line.contains(needle).then(|| line.to_owned());
        let e = explain_exit(says(
            "/src/ggml/src/ggml-rpc/ggml-rpc.cpp:547: Failed to connect to 127.0.0.1:9",
        ))
        .unwrap();
        assert_eq!(
            e,
            "llama-server could not connect to an rpc-server from OLLMLX_RPC_SERVERS: check that `ollmlx rpc-server` runs there and that this machine can reach it (llama-server: \"Failed to connect to 127.0.0.1:9\")"
        );
        let e = explain_exit(says("RPC server version mismatch: 3.0.0")).unwrap();
        assert!(e.contains("another version"), "{e}");
        assert!(explain_exit(says("loaded fine")).is_none());
    }

    /// A listener that never accepts: connections queue in the kernel's backlog, as with an
    /// rpc-server busy with another client.
    #[tokio::test]
    async fn tells_unreachable_busy_and_up_apart() {
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = gone.local_addr().unwrap().port();
        drop(gone);
        let p = probe(
            &server("127.0.0.1", port),
            CONNECT_TIMEOUT,
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(p, Probe::Unreachable(_)), "{p:?}");
        let err = check_all(
            &[server("127.0.0.1", port)],
            CONNECT_TIMEOUT,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("OLLMLX_RPC_SERVERS"),
            "{err}"
        );

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let busy = server("127.0.0.1", silent.local_addr().unwrap().port());
        let p = probe(&busy, CONNECT_TIMEOUT, Duration::from_millis(300)).await;
        assert_eq!(p, Probe::Busy);

        // One that reads the handshake and answers, as rpc-server does.
        let answering = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = server("127.0.0.1", answering.local_addr().unwrap().port());
        tokio::spawn(async move {
            let (mut s, _) = answering.accept().await.unwrap();
            let mut req = [0u8; 33];
            s.read_exact(&mut req).await.unwrap();
            assert_eq!(req, hello()[..]);
            let mut rsp = 28u64.to_le_bytes().to_vec();
            rsp.extend_from_slice(&[7, 0, 0, 0]);
            rsp.extend_from_slice(&[0; 24]);
            s.write_all(&rsp).await.unwrap();
        });
        assert_eq!(
            probe(&up, CONNECT_TIMEOUT, Duration::from_secs(10)).await,
            Probe::Up
        );
    }
}
