//! What ollmlx measures, and `/metrics`' text. [`Metrics`] names every metric the daemon records
//! as it works (requests, tokens, latencies, the scheduler's queue and loads); [`Metrics::render`]
//! adds what is read at scrape time (the loaded runners, their memory and MLX prefix caches).
//! docs/monitoring.md documents each metric; keep the two in step.
//!
//! The registry is written here rather than taken from a crate (docs/architecture.md says why):
//! recording is a relaxed atomic add, and the output is the plain Prometheus text format.

pub mod registry;
pub mod text;

use crate::runner::PrefixCacheStats;
use registry::{Counter, Family, Gauge, Histogram};
use std::sync::Arc;
use std::time::{Duration, Instant};
use text::Text;

/// Time to first token: from a fast cached prompt to a cold load of a large model.
const TTFT_BUCKETS: &[f64] = &[
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Gaps between tokens: 200 tokens/s down to a token a second.
const INTER_TOKEN_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
];
/// Waiting for a runner: a free slot at once, up to a queue behind a long load.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Loads: a tiny model in a second to a large one read from a slow disk.
const LOAD_BUCKETS: &[f64] = &[0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// Every metric the daemon records. One per server, shared by the routes and the scheduler.
pub struct Metrics {
    /// Finished HTTP requests by method, route template and status.
    pub requests: Family<Counter>,
    pub prompt_tokens: Family<Counter>,
    pub generated_tokens: Family<Counter>,
    pub ttft: Family<Histogram>,
    pub inter_token: Family<Histogram>,
    /// Requests waiting for a runner (a load, or a free parallel slot).
    pub queue_depth: Gauge,
    pub queue_wait: Histogram,
    pub loads: Family<Counter>,
    pub load_seconds: Family<Histogram>,
    pub crashes: Family<Counter>,
    pub restarts: Family<Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: Family::counters(&["method", "route", "status"]),
            prompt_tokens: Family::counters(&["model"]),
            generated_tokens: Family::counters(&["model"]),
            ttft: Family::new(&["model"], || Histogram::new(TTFT_BUCKETS)),
            inter_token: Family::new(&["model"], || Histogram::new(INTER_TOKEN_BUCKETS)),
            queue_depth: Gauge::default(),
            queue_wait: Histogram::new(WAIT_BUCKETS),
            loads: Family::counters(&["model", "result"]),
            load_seconds: Family::new(&["model"], || Histogram::new(LOAD_BUCKETS)),
            crashes: Family::counters(&["model"]),
            restarts: Family::counters(&["model"]),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A loaded runner as a scrape sees it.
#[derive(Debug, Clone)]
pub struct LoadedSample {
    pub model: String,
    /// `mlx` or `gguf`.
    pub format: &'static str,
    /// Measured by the runner where it can, else the scheduler's estimate.
    pub memory_bytes: u64,
    /// MLX runners only.
    pub prefix_cache: Option<PrefixCacheStats>,
}

impl Metrics {
    /// Starts counting one completion's tokens and latencies for `model`. `started` is when the
    /// request arrived, so time to first token includes queueing and loading, as a client sees.
    pub fn meter(&self, model: &str, started: Instant) -> TokenMeter {
        TokenMeter {
            ttft: self.ttft.get(&[model]),
            inter_token: self.inter_token.get(&[model]),
            prompt: self.prompt_tokens.get(&[model]),
            generated: self.generated_tokens.get(&[model]),
            started,
            last: None,
        }
    }

    /// Counts a request as waiting for a runner until the guard is dropped, and then records
    /// how long it waited.
    pub fn waiting(self: &Arc<Self>) -> WaitGuard {
        self.queue_depth.inc();
        WaitGuard {
            metrics: self.clone(),
            since: Instant::now(),
        }
    }

    /// Records a finished load.
    pub fn load(&self, model: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.loads.get(&[model, result]).inc();
        if ok {
            self.load_seconds.get(&[model]).observe(took);
        }
    }

    /// The exposition: everything recorded, then the loaded runners as sampled now.
    pub fn render(&self, loaded: &[LoadedSample]) -> String {
        let mut t = Text::default();
        t.header(
            "ollmlx_build_info",
            "gauge",
            "ollmlx's version and the Ollama API version it serves; always 1.",
        );
        t.sample(
            "ollmlx_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("ollama_version", crate::api::OLLAMA_COMPAT_VERSION),
            ],
            1.0,
        );
        counters(
            &mut t,
            "ollmlx_http_requests_total",
            "HTTP requests answered, by method, matched route template and status.",
            &self.requests,
        );
        counters(
            &mut t,
            "ollmlx_prompt_tokens_total",
            "Prompt tokens read (completions and embeddings), by model.",
            &self.prompt_tokens,
        );
        counters(
            &mut t,
            "ollmlx_generated_tokens_total",
            "Tokens generated, by model.",
            &self.generated_tokens,
        );
        histograms(
            &mut t,
            "ollmlx_time_to_first_token_seconds",
            "From a completion request's arrival to its first generated output, by model.",
            &self.ttft,
        );
        histograms(
            &mut t,
            "ollmlx_inter_token_latency_seconds",
            "Time between consecutive generated outputs of one completion, by model.",
            &self.inter_token,
        );
        t.header(
            "ollmlx_queue_depth",
            "gauge",
            "Requests waiting for a runner: for a model to load or a parallel slot to free.",
        );
        t.sample("ollmlx_queue_depth", &[], self.queue_depth.get() as f64);
        t.header(
            "ollmlx_queue_wait_seconds",
            "histogram",
            "How long requests waited for a runner (loading included).",
        );
        t.histogram(
            "ollmlx_queue_wait_seconds",
            &[],
            &self.queue_wait.snapshot(),
        );
        counters(
            &mut t,
            "ollmlx_model_loads_total",
            "Runner starts, by model and result (ok or error).",
            &self.loads,
        );
        histograms(
            &mut t,
            "ollmlx_model_load_seconds",
            "How long successful runner starts took, by model.",
            &self.load_seconds,
        );
        counters(
            &mut t,
            "ollmlx_runner_crashes_total",
            "Runners that exited while loaded, without being asked to stop, by model.",
            &self.crashes,
        );
        counters(
            &mut t,
            "ollmlx_runner_restarts_total",
            "Runners started again for a model whose previous runner crashed, by model.",
            &self.restarts,
        );
        loaded_runners(&mut t, loaded);
        t.finish()
    }
}

/// One completion's recorder: looked up once, then only atomic adds per token.
pub struct TokenMeter {
    ttft: Arc<Histogram>,
    inter_token: Arc<Histogram>,
    prompt: Arc<Counter>,
    generated: Arc<Counter>,
    started: Instant,
    last: Option<Instant>,
}

impl TokenMeter {
    /// Generated output arrived (the runners stream a token per chunk).
    pub fn output(&mut self) {
        let now = Instant::now();
        match self.last {
            None => self.ttft.observe(now - self.started),
            Some(prev) => self.inter_token.observe(now - prev),
        }
        self.last = Some(now);
    }

    /// The completion finished: its token counts, as the runner reports them.
    pub fn done(&self, prompt_tokens: u64, generated_tokens: u64) {
        self.prompt.add(prompt_tokens);
        self.generated.add(generated_tokens);
    }
}

/// See [`Metrics::waiting`].
pub struct WaitGuard {
    metrics: Arc<Metrics>,
    since: Instant,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.metrics.queue_depth.dec();
        self.metrics.queue_wait.observe(self.since.elapsed());
    }
}

fn counters(t: &mut Text, name: &str, help: &str, family: &Family<Counter>) {
    t.header(name, "counter", help);
    for (values, c) in family.entries() {
        t.sample(name, &labelled(family.labels(), &values), c.get() as f64);
    }
}

fn histograms(t: &mut Text, name: &str, help: &str, family: &Family<Histogram>) {
    t.header(name, "histogram", help);
    for (values, h) in family.entries() {
        t.histogram(name, &labelled(family.labels(), &values), &h.snapshot());
    }
}

fn labelled<'a>(names: &[&'a str], values: &'a [String]) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (*n, v.as_str()))
        .collect()
}

/// The scrape-time part: loaded runners, their memory and their prefix caches.
fn loaded_runners(t: &mut Text, loaded: &[LoadedSample]) {
    t.header("ollmlx_loaded_models", "gauge", "Runners loaded now.");
    t.sample("ollmlx_loaded_models", &[], loaded.len() as f64);
    t.header(
        "ollmlx_runner_memory_bytes",
        "gauge",
        "Memory of each loaded runner: measured by the runner where it can (MLX), else the scheduler's estimate.",
    );
    for l in loaded {
        let labels = [("model", l.model.as_str()), ("format", l.format)];
        t.sample("ollmlx_runner_memory_bytes", &labels, l.memory_bytes as f64);
    }
    let caches: Vec<(&str, &PrefixCacheStats)> = loaded
        .iter()
        .filter_map(|l| Some((l.model.as_str(), l.prefix_cache.as_ref()?)))
        .collect();
    type Field = fn(&PrefixCacheStats) -> Option<f64>;
    let series: [(&str, &str, &str, Field); 6] = [
        (
            "ollmlx_prefix_cache_bytes",
            "gauge",
            "Bytes an MLX runner's prefix cache holds.",
            |c| Some(c.bytes as f64),
        ),
        (
            "ollmlx_prefix_cache_budget_bytes",
            "gauge",
            "An MLX runner's prefix-cache budget.",
            |c| Some(c.budget as f64),
        ),
        (
            "ollmlx_prefix_cache_hits_total",
            "counter",
            "Prompts that reused a cached prefix, since the runner started.",
            |c| Some(c.hits as f64),
        ),
        (
            "ollmlx_prefix_cache_misses_total",
            "counter",
            "Prompts that found no cached prefix, since the runner started.",
            |c| Some(c.misses as f64),
        ),
        (
            "ollmlx_prefix_cache_reused_tokens_total",
            "counter",
            "Prompt tokens served from the prefix cache instead of computed, since the runner started.",
            |c| Some(c.reused_tokens as f64),
        ),
        (
            "ollmlx_prefix_cache_hit_ratio",
            "gauge",
            "hits / (hits + misses) since the runner started; absent before its first lookup.",
            |c| {
                let lookups = c.hits + c.misses;
                (lookups > 0).then(|| c.hits as f64 / lookups as f64)
            },
        ),
    ];
    for (name, kind, help, field) in series {
        t.header(name, kind, help);
        for (model, c) in &caches {
            if let Some(v) = field(c) {
                t.sample(name, &[("model", model)], v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
