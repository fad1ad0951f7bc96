//! MLX across machines (`OLLMLX_MLX_HOSTS`): the host list an MLX runner is started over, as a
//! distributed job of MLX's own `mlx.launch` (ring backend over TCP). Rank 0 runs here and is the
//! runner the daemon talks to; the other ranks run where the list says (mlx.launch reaches them
//! over ssh). docs/scale-out.md says how to set up the machines.
//!
//! The variable holds rules separated by `;`: one without a model name is the default for every
//! MLX model, `MODEL=HOSTS` overrides it for one model (`MODEL=local` keeps that model here):
//!
//! ```text
//! OLLMLX_MLX_HOSTS="10.0.0.1,10.0.0.2; mlx-community/Qwen3-0.6B-4bit=local"
//! ```

use crate::store::name::ModelName;
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

/// `OLLMLX_MLX_HOSTS`'s rules: the default job and per-model overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MlxClusters {
    pub default: Option<MlxCluster>,
    /// In the variable's order; the first rule naming a model wins. `None`: run it here.
    pub models: Vec<(ModelRule, Option<MlxCluster>)>,
}

/// The model a rule names; without a tag it covers every tag of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRule {
    name: ModelName,
    any_tag: bool,
}

impl ModelRule {
    fn covers(&self, name: &ModelName) -> bool {
        self.name.namespace.eq_ignore_ascii_case(&name.namespace)
            && self.name.model.eq_ignore_ascii_case(&name.model)
            && (self.any_tag || self.name.tag.eq_ignore_ascii_case(&name.tag))
    }
}

impl MlxClusters {
    pub fn parse(value: &str, split: &str, ring_port: Option<u16>) -> Result<MlxClusters, String> {
        let mut out = MlxClusters::default();
        for rule in value.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let Some((model, hosts)) = rule.split_once('=') else {
                if out.default.is_some() {
                    return Err("more than one default host list (give the others a MODEL=)".into());
                }
                out.default = MlxCluster::parse(rule, split, ring_port)?;
                continue;
            };
            let model = model.trim();
            let name =
                ModelName::parse(model).map_err(|_| format!("{model:?} is not a model name"))?;
            let any_tag = !model.rsplit('/').next().unwrap_or(model).contains(':');
            let cluster = match hosts.trim() {
                "local" | "none" => None,
                hosts => Some(MlxCluster::parse(hosts, split, ring_port)?.ok_or_else(|| {
                    format!("{model}: no hosts (write {model}=local to keep it here)")
                })?),
            };
            out.models.push((ModelRule { name, any_tag }, cluster));
        }
        Ok(out)
    }

    /// The job `model` starts as, if any.
    pub fn for_model(&self, model: &ModelName) -> Option<&MlxCluster> {
        match self.models.iter().find(|(rule, _)| rule.covers(model)) {
            Some((_, cluster)) => cluster.as_ref(),
            None => self.default.as_ref(),
        }
    }
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

    /// How many ranks the job has (a host file's `hosts`; 0 when it cannot be read).
    pub fn ranks(&self) -> usize {
        self.host_labels().len()
    }

    /// The machines, as `/api/show` and `/api/ps` name them: the addresses, or a host file's
    /// ssh names.
    pub fn host_labels(&self) -> Vec<String> {
        match &self.hosts {
            Hosts::List(l) => l.iter().map(|h| h.to_string()).collect(),
            Hosts::File(p) => std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| {
                    v["hosts"].as_array().map(|hosts| {
                        hosts
                            .iter()
                            .map(|h| h["ssh"].as_str().unwrap_or("?").to_owned())
                            .collect()
                    })
                })
                .unwrap_or_default(),
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
        assert_eq!(c.hosts, Hosts::File(file.clone()));
        assert_eq!(c.split, Split::Pipeline);
        assert_eq!(c.ranks(), 0);
        std::fs::write(
            &file,
            r#"{"hosts": [{"ssh": "studio", "ips": ["10.0.0.1"]}, {"ssh": "mini", "ips": ["10.0.0.2"]}]}"#,
        )
        .unwrap();
        assert_eq!(c.ranks(), 2);
        assert_eq!(c.host_labels(), ["studio", "mini"]);
    }

    #[test]
    fn rules_give_a_default_and_per_model_overrides() {
        let name = |s: &str| ModelName::parse(s).unwrap();
        let c = MlxClusters::parse(
            "10.0.0.1,10.0.0.2; mlx-community/small=local; org/big:8bit=10.0.0.1,10.0.0.3,10.0.0.4",
            "auto",
            None,
        )
        .unwrap();
        let hosts = |m: &str| c.for_model(&name(m)).map(MlxCluster::host_labels);
        assert_eq!(
            hosts("org/other"),
            Some(vec!["10.0.0.1".into(), "10.0.0.2".into()])
        );
        assert_eq!(hosts("mlx-community/small"), None);
        assert_eq!(hosts("MLX-Community/Small:4bit"), None, "any tag, any case");
        assert_eq!(hosts("org/big:8bit").unwrap().len(), 3);
        assert_eq!(
            hosts("org/big:4bit").unwrap().len(),
            2,
            "another tag: the default"
        );
        // Only overrides: other models stay here.
        let only = MlxClusters::parse("org/big=10.0.0.1,10.0.0.2", "auto", None).unwrap();
        assert!(only.for_model(&name("org/other")).is_none());
        assert!(only.for_model(&name("org/big")).is_some());
        assert_eq!(
            MlxClusters::parse("", "auto", None).unwrap(),
            MlxClusters::default()
        );
        for bad in [
            "10.0.0.1,10.0.0.2; 10.0.0.3,10.0.0.4",
            "org/big=",
            "bad name!=10.0.0.1,10.0.0.2",
            "org/big=mini,studio",
        ] {
            assert!(MlxClusters::parse(bad, "auto", None).is_err(), "{bad}");
        }
    }
}
