//! Server configuration, resolved once from flags and environment (via clap's `env`) into an
//! immutable [`Config`]. Nothing below this module reads the environment.

use crate::api::KeepAlive;
use crate::env;
use clap::Args;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// `ollmlx serve` flags. Every flag can also be set by the environment variable shown.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on: `[scheme://]host[:port]`, as Ollama parses it.
    #[arg(long, env = env::OLLAMA_HOST, default_value = "127.0.0.1:11434")]
    pub host: String,
    /// Ollama's model store (`manifests/` and `blobs/`).
    #[arg(long, env = env::OLLAMA_MODELS)]
    pub models: Option<PathBuf>,
    /// Default keep-alive of loaded models (`5m`, `1h`, `-1` forever, `0` unload when idle).
    #[arg(long, env = env::OLLAMA_KEEP_ALIVE, default_value = "5m")]
    pub keep_alive: String,
    /// Most models loaded at once (0 = 3).
    #[arg(long, env = env::OLLAMA_MAX_LOADED_MODELS, default_value_t = 0)]
    pub max_loaded_models: usize,
    /// Parallel requests per loaded model (default: 1 for GGUF models, as Ollama; 4 for MLX
    /// models, which decode them in one batch).
    #[arg(long, env = env::OLLAMA_NUM_PARALLEL)]
    pub num_parallel: Option<usize>,
    /// Requests that may wait for a load before 503.
    #[arg(long, env = env::OLLAMA_MAX_QUEUE, default_value_t = 512)]
    pub max_queue: usize,
    /// Default context length (0 = 4096), capped at each model's own limit.
    #[arg(long, env = env::OLLAMA_CONTEXT_LENGTH, default_value_t = 0)]
    pub context_length: u64,
    /// Load stall timeout (`5m`; `0` = none).
    #[arg(long, env = env::OLLAMA_LOAD_TIMEOUT, default_value = "5m")]
    pub load_timeout: String,
    /// Debug logging (`1`, `true`, or `2` for trace).
    #[arg(long, env = env::OLLAMA_DEBUG, default_value = "")]
    pub debug: String,
    /// Log format on stderr: text or json (one JSON object a line).
    #[arg(long, env = env::OLLMLX_LOG_FORMAT, default_value = "text")]
    pub log_format: String,
    /// Log filter in tracing's syntax (`info,ollmlx::scheduler=debug`); wins over --debug.
    #[arg(long, env = env::OLLMLX_LOG)]
    pub log: Option<String>,
    #[arg(long, env = env::NO_COLOR, hide = true)]
    pub no_color: Option<String>,
    /// Extra allowed CORS origins, comma separated.
    #[arg(long, env = env::OLLAMA_ORIGINS, default_value = "")]
    pub origins: String,
    /// Hugging Face hub cache (default `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    #[arg(long, env = env::HF_HUB_CACHE)]
    pub hf_hub_cache: Option<PathBuf>,
    /// Hugging Face home.
    #[arg(long, env = env::HF_HOME)]
    pub hf_home: Option<PathBuf>,
    #[arg(long, env = env::XDG_CACHE_HOME, hide = true)]
    pub xdg_cache_home: Option<PathBuf>,
    /// ollmlx's state directory (managed Python runtime, runner code, logs). Default `~/.ollmlx`.
    #[arg(long, env = env::OLLMLX_HOME)]
    pub ollmlx_home: Option<PathBuf>,
    /// Python interpreter for the MLX runner (default: a managed venv in OLLMLX_HOME).
    #[arg(long, env = env::OLLMLX_PYTHON)]
    pub python: Option<PathBuf>,
    /// MLX build for the managed runtime: auto, cpu, cuda12, cuda13.
    #[arg(long, env = env::OLLMLX_MLX_BACKEND, default_value = "auto")]
    pub mlx_backend: String,
    /// llama-server binary for GGUF models (default: next to ollmlx, else on PATH).
    #[arg(long, env = env::OLLMLX_LLAMA_SERVER)]
    pub llama_server: Option<PathBuf>,
    /// Mirror of the pinned llama.cpp source the managed install builds (default: PyPI).
    #[arg(long, env = env::OLLMLX_LLAMA_SOURCE)]
    pub llama_source: Option<String>,
    /// How long a request waits for a runtime install under way (default 15m).
    #[arg(long, env = env::OLLMLX_INSTALL_WAIT, default_value = "15m")]
    pub install_wait: String,
    /// KV cache type for every runner: f16, q8_0 or q4_0.
    #[arg(long, env = env::OLLAMA_KV_CACHE_TYPE, default_value = "")]
    pub kv_cache_type: String,
    /// MLX prefix-cache budget per model: bytes or `512MiB`, `4GB`...; `0` turns it off.
    #[arg(long, env = env::OLLMLX_PREFIX_CACHE)]
    pub prefix_cache: Option<String>,
    /// Memory all loaded models may take together (default: physical memory less a tenth).
    #[arg(long, env = env::OLLMLX_MAX_MEMORY)]
    pub max_memory: Option<String>,
    /// Threads for llama-server when a request sets no `num_thread` (default: llama.cpp's choice).
    #[arg(long, env = env::OLLMLX_LLAMA_THREADS)]
    pub llama_threads: Option<u64>,
    /// Split MLX models across these machines: IP addresses (this one first) or a host file.
    #[arg(long, env = env::OLLMLX_MLX_HOSTS, default_value = "")]
    pub mlx_hosts: String,
    /// How a split MLX model is split: auto, tensor or pipeline.
    #[arg(long, env = env::OLLMLX_MLX_SPLIT, default_value = "auto")]
    pub mlx_split: String,
    /// The MLX ring backend's first port (one per rank).
    #[arg(long, env = env::OLLMLX_MLX_RING_PORT)]
    pub mlx_ring_port: Option<u16>,
    /// llama.cpp rpc-servers GGUF models are spread over: `host:port,...` (trusted network only).
    #[arg(long, env = env::OLLMLX_RPC_SERVERS)]
    pub rpc_servers: Option<String>,
    #[arg(long, env = env::PATH, hide = true)]
    pub path: Option<std::ffi::OsString>,
    /// The Hugging Face hub to pull from.
    #[arg(long, env = env::HF_ENDPOINT, default_value = "https://huggingface.co")]
    pub hf_endpoint: String,
    /// A Hugging Face token for gated and private repos (else the token file).
    #[arg(long, env = env::HF_TOKEN, hide_env_values = true)]
    pub hf_token: Option<String>,
    /// The Hugging Face token file (default `$HF_HOME/token`).
    #[arg(long, env = env::HF_TOKEN_PATH)]
    pub hf_token_path: Option<PathBuf>,
}

/// Everything the server needs to know, resolved and validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub models_dir: PathBuf,
    pub hf_cache: PathBuf,
    pub home: PathBuf,
    pub keep_alive: KeepAlive,
    pub max_loaded_models: usize,
    /// Parallel requests per GGUF model (llama-server slots, each with its own `num_ctx`).
    pub num_parallel: usize,
    /// Parallel requests per MLX model (decoded together in one batch).
    pub mlx_num_parallel: usize,
    pub kv_cache_type: KvCacheType,
    /// The MLX prefix-cache budget; `None`: the runner sizes it from memory.
    pub prefix_cache_bytes: Option<u64>,
    /// What loaded models may take together; `None`: unknown (no memory accounting).
    pub max_memory: Option<u64>,
    pub max_queue: usize,
    /// `num_ctx` when neither the request nor the model sets one.
    pub default_num_ctx: u64,
    /// `None`: wait forever.
    pub load_timeout: Option<Duration>,
    pub debug_level: u8,
    pub log: LogSettings,
    pub origins: Vec<String>,
    pub python: Option<PathBuf>,
    pub mlx_backend: String,
    pub llama_server: Option<PathBuf>,
    /// A mirror of the managed llama.cpp install's source archive.
    pub llama_source: Option<String>,
    /// How long a request waits for a runtime install under way.
    pub install_wait: Duration,
    pub llama_threads: Option<u64>,
    /// `OLLMLX_MLX_HOSTS` and its companions: MLX runners start as distributed jobs.
    pub mlx_clusters: crate::runner::cluster::MlxClusters,
    /// `OLLMLX_RPC_SERVERS`: llama.cpp rpc-servers GGUF models are spread over (empty: none).
    pub rpc_servers: Vec<crate::runner::llamacpp::rpc::RpcServer>,
    /// `PATH` as it was at start-up, for finding `llama-server`.
    pub search_path: Option<std::ffi::OsString>,
    pub hf_endpoint: String,
    pub hf_token: Secret,
    /// Read at each pull, so `ollmlx login` takes effect without a restart.
    pub hf_token_path: PathBuf,
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, Default)]
pub struct Secret(pub Option<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Secret(***)"
        } else {
            "Secret(None)"
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {var}: {msg}")]
    Invalid { var: &'static str, msg: String },
    #[error("cannot find a home directory: set HOME or {0}")]
    NoHome(&'static str),
}

/// How long a request waits for a runtime install under way, by default.
const DEFAULT_INSTALL_WAIT: Duration = Duration::from_secs(15 * 60);

impl Config {
    /// Resolves flags and environment into a `Config`. `home` is `$HOME`, passed in so tests can
    /// resolve without touching the process environment.
    pub fn resolve(a: &ServeArgs, home: Option<PathBuf>) -> Result<Config, ConfigError> {
        let home_dir = || home.clone().ok_or(ConfigError::NoHome(env::OLLMLX_HOME));
        let keep_alive =
            KeepAlive::from_env(&a.keep_alive).map_err(|msg| ConfigError::Invalid {
                var: env::OLLAMA_KEEP_ALIVE,
                msg,
            })?;
        let install_wait = match a.install_wait.trim() {
            "" => None,
            s => parse_load_timeout(s).map_err(|msg| ConfigError::Invalid {
                var: env::OLLMLX_INSTALL_WAIT,
                msg,
            })?,
        }
        .unwrap_or(DEFAULT_INSTALL_WAIT);
        let load_timeout =
            parse_load_timeout(&a.load_timeout).map_err(|msg| ConfigError::Invalid {
                var: env::OLLAMA_LOAD_TIMEOUT,
                msg,
            })?;
        let hf_home = a
            .hf_home
            .clone()
            .or_else(|| a.xdg_cache_home.as_ref().map(|x| x.join("huggingface")))
            .or_else(|| home.as_ref().map(|h| h.join(".cache").join("huggingface")));
        let hf_cache = match (&a.hf_hub_cache, &a.hf_home, &a.xdg_cache_home) {
            (Some(c), _, _) => c.clone(),
            (None, Some(h), _) => h.join("hub"),
            (None, None, Some(x)) => x.join("huggingface").join("hub"),
            (None, None, None) => home_dir()?.join(".cache").join("huggingface").join("hub"),
        };
        let token_beside_cache = hf_cache.parent().unwrap_or(&hf_cache).join("token");
        Ok(Config {
            listen: HostSpec::parse(&a.host)
                .bind_addr()
                .map_err(|msg| ConfigError::Invalid {
                    var: env::OLLAMA_HOST,
                    msg,
                })?,
            models_dir: match &a.models {
                Some(m) => m.clone(),
                None => home_dir()?.join(".ollama").join("models"),
            },
            hf_cache,
            home: match &a.ollmlx_home {
                Some(h) => h.clone(),
                None => home_dir()?.join(".ollmlx"),
            },
            keep_alive,
            max_loaded_models: if a.max_loaded_models == 0 {
                3
            } else {
                a.max_loaded_models
            },
            num_parallel: a.num_parallel.unwrap_or(1).max(1),
            mlx_num_parallel: a.num_parallel.unwrap_or(DEFAULT_MLX_PARALLEL).max(1),
            kv_cache_type: KvCacheType::parse(&a.kv_cache_type).map_err(|msg| {
                ConfigError::Invalid {
                    var: env::OLLAMA_KV_CACHE_TYPE,
                    msg,
                }
            })?,
            prefix_cache_bytes: match a.prefix_cache.as_deref().map(str::trim) {
                None | Some("") | Some("auto") => None,
                Some(s) => Some(parse_size(s).map_err(|msg| ConfigError::Invalid {
                    var: env::OLLMLX_PREFIX_CACHE,
                    msg,
                })?),
            },
            max_memory: match a.max_memory.as_deref().map(str::trim) {
                None | Some("") => crate::scheduler::memory::system_memory()
                    .map(crate::scheduler::memory::default_limit),
                Some(s) => Some(parse_size(s).map_err(|msg| ConfigError::Invalid {
                    var: env::OLLMLX_MAX_MEMORY,
                    msg,
                })?),
            },
            max_queue: a.max_queue.max(1),
            default_num_ctx: if a.context_length == 0 {
                4096
            } else {
                a.context_length
            },
            load_timeout,
            debug_level: parse_debug(&a.debug),
            log: LogSettings {
                format: LogFormat::parse(&a.log_format).map_err(|msg| ConfigError::Invalid {
                    var: env::OLLMLX_LOG_FORMAT,
                    msg,
                })?,
                filter: a.log.clone().filter(|f| !f.trim().is_empty()),
                color: a.no_color.as_deref().is_none_or(str::is_empty),
            },
            origins: a
                .origins
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            python: a.python.clone().filter(|p| !p.as_os_str().is_empty()),
            mlx_backend: a.mlx_backend.clone(),
            llama_server: a.llama_server.clone().filter(|p| !p.as_os_str().is_empty()),
            llama_source: a.llama_source.clone().filter(|u| !u.trim().is_empty()),
            install_wait,
            llama_threads: a.llama_threads.filter(|t| *t > 0),
            mlx_clusters: crate::runner::cluster::MlxClusters::parse(
                &a.mlx_hosts,
                &a.mlx_split,
                a.mlx_ring_port,
            )
            .map_err(|msg| ConfigError::Invalid {
                var: env::OLLMLX_MLX_HOSTS,
                msg,
            })?,
            rpc_servers: crate::runner::llamacpp::rpc::parse_servers(
                a.rpc_servers.as_deref().unwrap_or(""),
            )
            .map_err(|msg| ConfigError::Invalid {
                var: env::OLLMLX_RPC_SERVERS,
                msg,
            })?,
            search_path: a.path.clone(),
            hf_endpoint: a.hf_endpoint.trim_end_matches('/').to_owned(),
            hf_token: Secret(a.hf_token.clone().filter(|t| !t.trim().is_empty())),
            hf_token_path: a
                .hf_token_path
                .clone()
                .or_else(|| hf_home.map(|h| h.join("token")))
                .unwrap_or_else(|| token_beside_cache.clone()),
        })
    }
}

/// How the daemon logs (`logging::init`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `OLLMLX_LOG`; `None`: by `OLLAMA_DEBUG`'s level.
    pub filter: Option<String>,
    /// Colour allowed (no `NO_COLOR`); text logs are coloured only when stderr is a terminal too.
    pub color: bool,
}

/// `OLLMLX_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `tracing`'s human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, with the request's span (and its id) in each.
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("\"{other}\": expected text or json")),
        }
    }
}

/// MLX models decode concurrent requests in one batched forward pass, so a few slots cost
/// nothing while idle (KV memory is taken per live sequence) and multiply throughput under load.
pub const DEFAULT_MLX_PARALLEL: usize = 4;

/// `OLLAMA_KV_CACHE_TYPE`, Ollama's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCacheType {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

impl KvCacheType {
    pub fn parse(s: &str) -> Result<KvCacheType, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "f16" => Ok(KvCacheType::F16),
            "q8_0" => Ok(KvCacheType::Q8_0),
            "q4_0" => Ok(KvCacheType::Q4_0),
            other => Err(format!("\"{other}\": expected f16, q8_0 or q4_0")),
        }
    }

    /// llama-server's `--cache-type-k/v` value; `None` for its default (f16).
    pub fn llama_arg(self) -> Option<&'static str> {
        match self {
            KvCacheType::F16 => None,
            KvCacheType::Q8_0 => Some("q8_0"),
            KvCacheType::Q4_0 => Some("q4_0"),
        }
    }

    /// The MLX runner's `--kv-bits` (0: not quantized).
    pub fn mlx_bits(self) -> u8 {
        match self {
            KvCacheType::F16 => 0,
            KvCacheType::Q8_0 => 8,
            KvCacheType::Q4_0 => 4,
        }
    }
}

/// A byte count: a plain number, or one with a unit (`KB`/`MB`/`GB` are powers of 1000,
/// `KiB`/`MiB`/`GiB` powers of 1024; case-insensitive).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" is not a size (bytes, or e.g. 512MiB, 4GB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => {
            return Err(format!(
                "\"{s}\": unknown unit (use KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    Ok((value * scale) as u64)
}

fn parse_load_timeout(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    let ns = match s.parse::<i64>() {
        Ok(secs) => secs as i128 * 1_000_000_000,
        Err(_) => crate::api::options::parse_go_duration(s)?,
    };
    Ok((ns > 0).then(|| Duration::from_nanos(ns as u64)))
}

fn parse_debug(s: &str) -> u8 {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" => 0,
        "1" | "true" => 1,
        s => s.parse().unwrap_or(1),
    }
}

/// `OLLAMA_HOST` split the way Ollama's `envconfig.Host` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub scheme: String,
    /// Empty means "all interfaces" when listening and "localhost" when connecting.
    pub host: String,
    pub port: u16,
}

impl HostSpec {
    /// Never fails, like Ollama: an invalid port falls back to the scheme's default.
    pub fn parse(raw: &str) -> HostSpec {
        let s = raw.trim().trim_matches(|c| c == '"' || c == '\'');
        let (scheme, rest, default_port) = match s.split_once("://") {
            None => ("http", s, 11434),
            Some(("http", r)) => ("http", r, 80),
            Some(("https", r)) => ("https", r, 443),
            Some((sch, r)) => (sch, r, 11434),
        };
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = match split_host_port(hostport) {
            Some((h, p)) => (h.to_owned(), p.parse::<u16>().unwrap_or(default_port)),
            None => {
                let h = hostport.trim_start_matches('[').trim_end_matches(']');
                let h = if h.is_empty() { "127.0.0.1" } else { h };
                (h.to_owned(), default_port)
            }
        };
        HostSpec {
            scheme: scheme.to_owned(),
            host,
            port,
        }
    }

    /// The socket address to listen on.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        if self.host.is_empty() {
            return Ok(SocketAddr::from(([0, 0, 0, 0], self.port)));
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}", self.host))
    }

    /// The base URL a client connects to (unspecified addresses become loopback).
    pub fn client_url(&self) -> String {
        let host = match self.host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1".to_owned(),
            "::" => "[::1]".to_owned(),
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_owned(),
        };
        format!("{}://{}:{}", self.scheme, host, self.port)
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[v6]:port`, `:port`. `None` when there is no port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let p = after.strip_prefix(':')?;
        return Some((h, p));
    }
    let (h, p) = s.rsplit_once(':')?;
    if h.contains(':') {
        return None; // a bare IPv6 address without brackets has no port
    }
    Some((h, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(s: &str) -> (String, String, u16) {
        let h = HostSpec::parse(s);
        (h.scheme, h.host, h.port)
    }

    #[test]
    fn ollama_host_forms() {
        assert_eq!(hp(""), ("http".into(), "127.0.0.1".into(), 11434));
        assert_eq!(hp("1.2.3.4"), ("http".into(), "1.2.3.4".into(), 11434));
        assert_eq!(hp(":1234"), ("http".into(), "".into(), 1234));
        assert_eq!(hp("0.0.0.0:8080"), ("http".into(), "0.0.0.0".into(), 8080));
        assert_eq!(
            hp("http://example.com"),
            ("http".into(), "example.com".into(), 80)
        );
        assert_eq!(
            hp("https://example.com"),
            ("https".into(), "example.com".into(), 443)
        );
        assert_eq!(hp("[::1]:9000"), ("http".into(), "::1".into(), 9000));
        assert_eq!(hp("[::1]"), ("http".into(), "::1".into(), 11434));
        assert_eq!(hp("::1"), ("http".into(), "::1".into(), 11434));
        assert_eq!(
            hp("localhost:abc"),
            ("http".into(), "localhost".into(), 11434)
        );
        assert_eq!(
            hp("http://127.0.0.1:5000/path"),
            ("http".into(), "127.0.0.1".into(), 5000)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_size("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1.5mib"), Ok(3 << 19));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("GB").is_err());
    }

    #[test]
    fn client_urls() {
        assert_eq!(
            HostSpec::parse("0.0.0.0:1").client_url(),
            "http://127.0.0.1:1"
        );
        assert_eq!(HostSpec::parse("[::1]:2").client_url(), "http://[::1]:2");
        assert_eq!(HostSpec::parse("").client_url(), "http://127.0.0.1:11434");
    }

    #[test]
    fn resolves_defaults_like_ollama() {
        let args = ServeArgs {
            host: "127.0.0.1:11434".into(),
            keep_alive: "5m".into(),
            load_timeout: "5m".into(),
            mlx_backend: "auto".into(),
            max_queue: 512,
            hf_endpoint: "https://huggingface.co".into(),
            ..Default::default()
        };
        let c = Config::resolve(&args, Some("/home/u".into())).unwrap();
        assert_eq!(
            c.hf_token_path,
            PathBuf::from("/home/u/.cache/huggingface/token")
        );
        assert_eq!(
            format!("{:?}", Secret(Some("hf_abc".into()))),
            "Secret(***)"
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:11434");
        assert_eq!(c.models_dir, PathBuf::from("/home/u/.ollama/models"));
        assert_eq!(c.hf_cache, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(c.home, PathBuf::from("/home/u/.ollmlx"));
        assert_eq!(c.max_loaded_models, 3);
        assert_eq!(c.default_num_ctx, 4096);
        assert_eq!(c.load_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.install_wait, Duration::from_secs(900));
        assert_eq!(c.keep_alive, KeepAlive::DEFAULT);
        // Unset: one slot per GGUF model (Ollama's default), a batch of four per MLX model.
        assert_eq!(
            (c.num_parallel, c.mlx_num_parallel),
            (1, DEFAULT_MLX_PARALLEL)
        );
        assert_eq!(c.kv_cache_type, KvCacheType::F16);
        assert_eq!(c.prefix_cache_bytes, None);
        assert!(c.rpc_servers.is_empty(), "no rpc-servers unless named");
        let set = Config::resolve(
            &ServeArgs {
                num_parallel: Some(16),
                kv_cache_type: "Q8_0".into(),
                prefix_cache: Some("512MiB".into()),
                ..args.clone()
            },
            Some("/home/u".into()),
        )
        .unwrap();
        assert_eq!((set.num_parallel, set.mlx_num_parallel), (16, 16));
        assert_eq!(set.kv_cache_type, KvCacheType::Q8_0);
        assert_eq!(set.prefix_cache_bytes, Some(512 << 20));
        assert!(c.max_memory.is_some_and(|m| m > 0), "read from the machine");
        let capped = Config::resolve(
            &ServeArgs {
                max_memory: Some("3GiB".into()),
                ..args.clone()
            },
            Some("/home/u".into()),
        )
        .unwrap();
        assert_eq!(capped.max_memory, Some(3 << 30));
        for (bad_kv, bad_size) in [("q5_1", "lots"), ("fp8", "4XB")] {
            let r = Config::resolve(
                &ServeArgs {
                    kv_cache_type: bad_kv.into(),
                    ..args.clone()
                },
                Some("/home/u".into()),
            );
            assert!(r.unwrap_err().to_string().contains("OLLAMA_KV_CACHE_TYPE"));
            let r = Config::resolve(
                &ServeArgs {
                    prefix_cache: Some(bad_size.into()),
                    ..args.clone()
                },
                Some("/home/u".into()),
            );
            assert!(r.unwrap_err().to_string().contains("OLLMLX_PREFIX_CACHE"));
        }

        let rpc = |v: &str| {
            Config::resolve(
                &ServeArgs {
                    rpc_servers: Some(v.into()),
                    ..args.clone()
                },
                Some("/home/u".into()),
            )
        };
        let two = rpc("10.0.0.2:50052, gpu.lan:6000").unwrap().rpc_servers;
        assert_eq!(
            two.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.2:50052", "gpu.lan:6000"]
        );
        assert!(rpc("").unwrap().rpc_servers.is_empty());
        for bad in ["10.0.0.2", "http://10.0.0.2:50052", "h:99999", ":1"] {
            let err = rpc(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid OLLMLX_RPC_SERVERS: "),
                "{bad}: {err}"
            );
        }

        let c = Config::resolve(
            &ServeArgs {
                hf_home: Some("/hf".into()),
                load_timeout: "0".into(),
                ..args.clone()
            },
            Some("/home/u".into()),
        )
        .unwrap();
        assert_eq!(c.hf_cache, PathBuf::from("/hf/hub"));
        assert_eq!(c.load_timeout, None);
        assert_eq!(
            c.log,
            LogSettings {
                format: LogFormat::Text,
                filter: None,
                color: true
            }
        );
        let logs = |format: &str, no_color: Option<&str>| {
            Config::resolve(
                &ServeArgs {
                    log_format: format.into(),
                    no_color: no_color.map(Into::into),
                    log: Some("debug".into()),
                    ..args.clone()
                },
                Some("/home/u".into()),
            )
            .map(|c| c.log)
        };
        let json = logs("JSON", Some("1")).unwrap();
        assert_eq!(json.format, LogFormat::Json);
        assert_eq!(json.filter.as_deref(), Some("debug"));
        assert!(!json.color, "NO_COLOR set");
        // no-color.org: an empty NO_COLOR does not count.
        assert!(logs("text", Some("")).unwrap().color);
        let err = logs("yaml", None).unwrap_err().to_string();
        assert!(err.contains("OLLMLX_LOG_FORMAT"), "{err}");
        let bad = Config::resolve(
            &ServeArgs {
                keep_alive: "soon".into(),
                ..args
            },
            None,
        );
        assert!(bad.is_err());
    }
}
