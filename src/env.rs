//! Every environment variable ollmlx reads, in one table. Names, defaults and meanings follow
//! Ollama's `envconfig` where Ollama has the setting. These constants feed clap's `env =`
//! attributes, so `ollmlx serve --help` documents each one; nothing else reads the environment.

/// Where to listen (server) or connect (CLI): `[scheme://]host[:port]`. Default `127.0.0.1:11434`.
pub const OLLAMA_HOST: &str = "OLLAMA_HOST";
/// `ollmlx run`'s REPL records no history (as Ollama's).
pub const OLLAMA_NOHISTORY: &str = "OLLAMA_NOHISTORY";
/// Ollama's model store. Default `~/.ollama/models`.
pub const OLLAMA_MODELS: &str = "OLLAMA_MODELS";
/// How long an idle model stays loaded: Go duration or seconds; negative = forever. Default `5m`.
pub const OLLAMA_KEEP_ALIVE: &str = "OLLAMA_KEEP_ALIVE";
/// Most models loaded at once; 0 means 3. Idle models are evicted first.
pub const OLLAMA_MAX_LOADED_MODELS: &str = "OLLAMA_MAX_LOADED_MODELS";
/// Requests served at once by each loaded model. Default 1.
pub const OLLAMA_NUM_PARALLEL: &str = "OLLAMA_NUM_PARALLEL";
/// Requests that may wait for a model to load before the server answers 503. Default 512.
pub const OLLAMA_MAX_QUEUE: &str = "OLLAMA_MAX_QUEUE";
/// Default context length (`num_ctx`); 0 means 4096. Always capped at the model's own limit.
pub const OLLAMA_CONTEXT_LENGTH: &str = "OLLAMA_CONTEXT_LENGTH";
/// Stall timeout while loading a model (no progress for this long fails the load). Default `5m`;
/// 0 or negative waits forever.
pub const OLLAMA_LOAD_TIMEOUT: &str = "OLLAMA_LOAD_TIMEOUT";
/// `1`/`true` logs at debug level, `2` at trace.
pub const OLLAMA_DEBUG: &str = "OLLAMA_DEBUG";
/// Log format on stderr: `text` (default) or `json` (one JSON object a line).
pub const OLLMLX_LOG_FORMAT: &str = "OLLMLX_LOG_FORMAT";
/// Which log lines to show, in `tracing`'s filter syntax (`info,ollmlx::scheduler=debug`); wins
/// over `OLLAMA_DEBUG`'s level.
pub const OLLMLX_LOG: &str = "OLLMLX_LOG";
/// Any non-empty value turns colour off in text logs (<https://no-color.org>). Logs are never
/// coloured when stderr is not a terminal.
pub const NO_COLOR: &str = "NO_COLOR";
/// Extra allowed CORS origins, comma separated.
pub const OLLAMA_ORIGINS: &str = "OLLAMA_ORIGINS";
/// Hugging Face home; the hub cache is `$HF_HOME/hub` unless `HF_HUB_CACHE` is set.
pub const HF_HOME: &str = "HF_HOME";
/// The Hugging Face hub cache, where MLX models live (the cache `mlx_lm` and `huggingface_hub` use).
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
/// Fallback base of the Hugging Face home (`$XDG_CACHE_HOME/huggingface`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// ollmlx's own state: the managed Python runtime, the unpacked runner code, logs. Default `~/.ollmlx`.
pub const OLLMLX_HOME: &str = "OLLMLX_HOME";
/// The Python interpreter that runs the MLX runner. When unset, ollmlx manages a virtualenv in
/// `$OLLMLX_HOME/runtime` and installs pinned `mlx-lm` into it on first use.
pub const OLLMLX_PYTHON: &str = "OLLMLX_PYTHON";
/// Which MLX build the managed runtime installs: `auto` (Metal on macOS, CPU on Linux), `cpu`,
/// `cuda12` or `cuda13`.
pub const OLLMLX_MLX_BACKEND: &str = "OLLMLX_MLX_BACKEND";
/// The `llama-server` binary for GGUF models.
pub const OLLMLX_LLAMA_SERVER: &str = "OLLMLX_LLAMA_SERVER";
/// Where the managed llama.cpp install downloads its pinned source from (a mirror of the
/// llama-cpp-python sdist on PyPI; its sha256 is checked all the same).
pub const OLLMLX_LLAMA_SOURCE: &str = "OLLMLX_LLAMA_SOURCE";
/// How long a request waits for a runtime being installed (the MLX runtime, llama.cpp) before
/// a 503 (Go duration or seconds; default 15m).
pub const OLLMLX_INSTALL_WAIT: &str = "OLLMLX_INSTALL_WAIT";
/// MLX models split across machines: a comma-separated list of IP addresses (this machine
/// first) or an mlx.launch host file; every MLX runner then starts as a distributed job.
pub const OLLMLX_MLX_HOSTS: &str = "OLLMLX_MLX_HOSTS";
/// How such a model is split: `auto` (tensor parallel where mlx_lm can, else pipeline),
/// `tensor` or `pipeline`.
pub const OLLMLX_MLX_SPLIT: &str = "OLLMLX_MLX_SPLIT";
/// The MLX ring backend's first port (one per rank from there; default: a free block when every
/// rank is local, else mlx.launch's 32323).
pub const OLLMLX_MLX_RING_PORT: &str = "OLLMLX_MLX_RING_PORT";
/// Threads for llama-server when a request does not set `num_thread` (default: llama.cpp's own).
pub const OLLMLX_LLAMA_THREADS: &str = "OLLMLX_LLAMA_THREADS";
/// llama.cpp rpc-servers (`ollmlx rpc-server` on other machines) that GGUF models are spread
/// over: `host:port`, comma separated (default: none, the model runs here alone). llama.cpp's RPC
/// is unauthenticated: list only servers on a trusted network.
pub const OLLMLX_RPC_SERVERS: &str = "OLLMLX_RPC_SERVERS";
/// llama.cpp's `rpc-server` binary for `ollmlx rpc-server` (default: beside llama-server, beside
/// ollmlx, on `PATH`, else the managed llama.cpp install).
pub const OLLMLX_RPC_SERVER: &str = "OLLMLX_RPC_SERVER";
/// Ollama's KV cache type for every runner: `f16` (default), `q8_0` or `q4_0`.
pub const OLLAMA_KV_CACHE_TYPE: &str = "OLLAMA_KV_CACHE_TYPE";
/// The MLX runner's prefix-cache budget per loaded model (bytes, `4GiB`, `0` off; default: a
/// quarter of the memory the weights leave, at most 8 GiB).
pub const OLLMLX_PREFIX_CACHE: &str = "OLLMLX_PREFIX_CACHE";
/// The memory loaded models may take together (bytes or `16GiB`; default: physical memory
/// less a tenth, at least 1 GiB, for the system).
pub const OLLMLX_MAX_MEMORY: &str = "OLLMLX_MAX_MEMORY";
/// Where `llama-server` is looked for last.
pub const PATH: &str = "PATH";
/// The Hugging Face hub's address (default `https://huggingface.co`); tests point it at their own.
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// A Hugging Face token (wins over the token file).
pub const HF_TOKEN: &str = "HF_TOKEN";
/// Where the Hugging Face token file is (default `$HF_HOME/token`).
pub const HF_TOKEN_PATH: &str = "HF_TOKEN_PATH";
