//! MLX across machines (`OLLMLX_MLX_HOSTS`): the host list an MLX runner is started over, as a
//! distributed job of MLX's own `mlx.launch` (ring backend over TCP). Rank 0 runs here and is the
//! runner the daemon talks to; the other ranks run where the list says (mlx.launch reaches them
//! over ssh). docs/scale-out.md says how to set up the machines.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

/// Where the ranks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// One rank per address, in rank order (the ring backend connects by IP address).
    List(Vec<IpAddr>),
    /// An mlx.launch host file (JSON: `{"hosts": [{"ssh": ..., "ips": [...]}, ...]}`, as
    /// `mlx.distributed_config` writes it).
    File(PathBuf),
}

/// How the model is split over the ranks (`OLLMLX_MLX_SPLIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Tensor parallel where mlx_lm can, else pipeline parallel.
    Auto,
    Tensor,
    Pipeline,
}

impl Split {
    pub fn parse(s: &str) -> Result<Split, String> {
        match s.trim() {
            "" | "auto" => Ok(Split::Auto),
            "tensor" => Ok(Split::Tensor),
            "pipeline" => Ok(Split::Pipeline),
            other => Err(format!("{other:?} is not one of auto, tensor, pipeline")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Auto => "auto",
            Split::Tensor => "tensor",
            Split::Pipeline => "pipeline",
        }
    }
}

/// The distributed job every MLX runner starts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlxCluster {
    pub hosts: Hosts,
    pub split: Split,
    /// The ring's first port (one per rank from there); `None`: a free block found at each
    /// start when every rank is on this machine, else mlx.launch's 32323.
    pub ring_port: Option<u16>,
}

/// mlx.launch's default first ring port.
const MLX_RING_PORT: u16 = 32323;

impl MlxCluster {
    /// `OLLMLX_MLX_HOSTS`: a comma-separated list of IP addresses (this machine first), or the
    /// path of a host file. Empty: no cluster.
    pub fn parse(
        hosts: &str,
        split: &str,
        ring_port: Option<u16>,
    ) -> Result<Option<MlxCluster>, String> {
        let hosts = hosts.trim();
        if hosts.is_empty() {
            return Ok(None);
        }
        let split = Split::parse(split)?;
        let path = PathBuf::from(hosts);
        let hosts = if path.is_file() {
            Hosts::File(path)
        } else if hosts.contains('/') || hosts.ends_with(".json") {
            return Err(format!("host file {hosts} does not exist"));
        } else {
            let list = hosts
                .split(',')
                .map(|h| {
                    h.trim().parse::<IpAddr>().map_err(|_| {
                        format!(
                            "{:?} is not an IP address (MLX's ring backend connects by address; a host file maps ssh names to addresses)",
                            h.trim()
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if list.len() < 2 {
                return Err("a split model needs at least two hosts".into());
            }
            Hosts::List(list)
        };
        if ring_port == Some(0) {
            return Err("the ring port must be 1-65535".into());
        }
        Ok(Some(MlxCluster {
            hosts,
            split,
            ring_port,
        }))
    }

    /// Every rank on this machine (loopback addresses only).
    pub fn is_local(&self) -> bool {
        matches!(&self.hosts, Hosts::List(l) if l.iter().all(|h| h.is_loopback()))
    }

    fn ranks(&self) -> usize {
        match &self.hosts {
            Hosts::List(l) => l.len(),
            Hosts::File(_) => 0,
        }
    }

    /// mlx.launch's arguments (before the `--` and the runner's command line).
    pub fn launch_args(&self, pythonpath: &std::path::Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--backend".into(), "ring".into()];
        match &self.hosts {
            Hosts::List(l) => {
                let list: Vec<String> = l.iter().map(|h| h.to_string()).collect();
                args.extend(["--hosts".into(), list.join(",").into()]);
            }
            Hosts::File(p) => args.extend(["--hostfile".into(), p.into()]),
        }
        let port = self
            .ring_port
            .or_else(|| {
                self.is_local()
                    .then(|| free_port_block(self.ranks()))
                    .flatten()
            })
            .unwrap_or(MLX_RING_PORT);
        args.extend(["--starting-port".into(), port.to_string().into()]);
        // Remote ranks get no environment but this (mlx.launch exports it over ssh).
        let mut path = OsString::from("PYTHONPATH=");
        path.push(pythonpath);
        args.extend([
            "--env".into(),
            path,
            "--env".into(),
            "HF_HUB_OFFLINE=1".into(),
            "--env".into(),
            "TOKENIZERS_PARALLELISM=false".into(),
        ]);
        args
    }
}

/// A port `p` with `p .. p + n` free on loopback, for a ring whose ranks all run here.
fn free_port_block(n: usize) -> Option<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind(("127.0.0.1", 0))
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let all_free = (1..n as u32).all(|i| {
            u16::try_from(u32::from(first) + i)
                .ok()
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if all_free {
            return Some(first);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_files_and_refuses_the_rest() {
        assert_eq!(MlxCluster::parse("", "auto", None), Ok(None));
        let c = MlxCluster::parse("127.0.0.1, 127.0.0.1", "", None)
            .unwrap()
            .unwrap();
        assert!(c.is_local());
        assert_eq!(c.split, Split::Auto);
        let c = MlxCluster::parse("10.0.0.1,10.0.0.2", "tensor", Some(40000))
            .unwrap()
            .unwrap();
        assert!(!c.is_local());
        let args: Vec<String> = c
            .launch_args(std::path::Path::new("/opt/ollmlx/runner"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args[..6],
            [
                "--backend",
                "ring",
                "--hosts",
                "10.0.0.1,10.0.0.2",
                "--starting-port",
                "40000"
            ]
        );
        assert!(args.contains(&"PYTHONPATH=/opt/ollmlx/runner".to_string()));
        for bad in ["mac-studio,mac-mini", "10.0.0.1", "/no/such/hosts.json"] {
            assert!(MlxCluster::parse(bad, "auto", None).is_err(), "{bad}");
        }
        assert!(MlxCluster::parse("10.0.0.1,10.0.0.2", "diagonal", None).is_err());
        assert!(MlxCluster::parse("10.0.0.1,10.0.0.2", "auto", Some(0)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.json");
        std::fs::write(&file, r#"{"hosts": []}"#).unwrap();
        let c = MlxCluster::parse(file.to_str().unwrap(), "pipeline", None)
            .unwrap()
            .unwrap();
        assert_eq!(c.hosts, Hosts::File(file));
        assert_eq!(c.split, Split::Pipeline);
    }
}
