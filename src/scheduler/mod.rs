//! The scheduler: one runner per model, reused; `OLLAMA_NUM_PARALLEL` requests at a time per
//! runner; one load at a time; a bounded queue of requests waiting for loads; keep-alive timers
//! that start when a model goes idle; eviction of idle runners when too many are loaded or when
//! a load would not fit in memory (after shrinking MLX prefix caches); and replacement of
//! runners that died.
//!
//! All of that state has one owner, the actor task in `actor.rs`. [`SchedulerHandle`] is a cheap
//! clone that sends it messages. A [`Lease`] is what a request holds while it uses a runner: it
//! owns a parallelism permit, and dropping it (the response finished, or the client went away)
//! tells the actor the runner is free, which starts the keep-alive timer.

mod actor;
pub mod memory;
pub mod state;

use crate::api::KeepAlive;
use crate::metrics::Metrics;
use crate::runner::{LoadOptions, Runner, RunnerError, RunnerFactory};
use crate::store::LocalModel;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

pub use actor::Msg;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SchedulerError {
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    QueueFull,
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("server is shutting down")]
    ShuttingDown,
    /// Ollama's text when a model cannot fit even with every other model unloaded.
    #[error("model requires more system memory ({}) than is available ({})", memory::gib(*.need), memory::gib(*.available))]
    Memory { need: u64, available: u64 },
}

/// Settings the scheduler needs (from `Config`).
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub default_keep_alive: KeepAlive,
    pub max_loaded_models: usize,
    /// Slots of a GGUF model.
    pub num_parallel: usize,
    /// Slots of an MLX model (its runner batches them).
    pub mlx_num_parallel: usize,
    pub max_queue: usize,
    /// The memory loaded models may take together; `None`: no memory accounting (only
    /// `max_loaded_models`).
    pub memory_limit: Option<u64>,
    pub kv_cache_type: crate::config::KvCacheType,
    /// `OLLMLX_PREFIX_CACHE`; `None`: the default share of the memory left.
    pub prefix_cache_bytes: Option<u64>,
    /// How many llama.cpp rpc-servers GGUF models are spread over (`OLLMLX_RPC_SERVERS`).
    pub rpc_hosts: usize,
    /// `OLLMLX_MLX_HOSTS`: the MLX models split over ranks on several machines.
    pub mlx_clusters: crate::runner::cluster::MlxClusters,
}

impl SchedulerConfig {
    /// How many requests one loaded `model` serves at once.
    pub fn parallel_for(&self, model: &LocalModel) -> usize {
        match model.format {
            crate::store::format::Format::Mlx(_) => self.mlx_num_parallel,
            crate::store::format::Format::Gguf(_) => self.num_parallel,
        }
    }

    /// Loads that cannot share their helper machines with another load of the same kind: an
    /// rpc-server serves one llama-server at a time, and MLX jobs over real hosts share the
    /// ring's ports (jobs all on loopback take free ports each, so they can run side by side).
    pub fn exclusive_group(
        &self,
        model: &LocalModel,
        options: &LoadOptions,
    ) -> Option<&'static str> {
        match model.format {
            crate::store::format::Format::Gguf(_) if self.machines_for(model, options) > 1 => {
                Some("llama-rpc")
            }
            crate::store::format::Format::Mlx(_) => self
                .mlx_clusters
                .for_model(&model.name)
                .filter(|c| !c.is_local())
                .map(|_| "mlx-ring"),
            _ => None,
        }
    }

    /// Over how many machines a load of `model` with `options` is spread (1: this one alone).
    /// A GGUF model goes over the rpc-servers too, unless `num_gpu: 0` keeps every layer here.
    pub fn machines_for(&self, model: &LocalModel, options: &LoadOptions) -> usize {
        match model.format {
            crate::store::format::Format::Gguf(_)
                if self.rpc_hosts > 0 && options.num_gpu != Some(0) =>
            {
                self.rpc_hosts + 1
            }
            // Tensor parallel puts 1/N of every layer (and its KV heads) on each rank, pipeline
            // about 1/N of the layers: this machine holds rank 0's share.
            crate::store::format::Format::Mlx(_) => self
                .mlx_clusters
                .for_model(&model.name)
                .map_or(1, |c| c.ranks().max(1)),
            _ => 1,
        }
    }
}

/// A loaded model, as `/api/ps` shows it.
#[derive(Clone)]
pub struct LoadedModel {
    pub model: LocalModel,
    /// What the scheduler counts for it: the estimate of weights, KV and prefix cache.
    pub estimate: u64,
    /// To ask for measured memory.
    pub runner: Arc<dyn crate::runner::Runner>,
    pub expires_at: SystemTime,
    pub context_length: Option<u64>,
    pub backend: String,
    pub pid: Option<u32>,
}

/// A model's key, its digest, the `num_ctx` of the load and the machines it is spread over.
type EstimateKey = (PathBuf, String, u64, usize);

#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Msg>,
    config: Arc<SchedulerConfig>,
    /// Load estimates by (model, digest, num_ctx, machines): reading them touches the model's files, so
    /// each is read once, not on every request.
    estimates: Arc<std::sync::Mutex<HashMap<EstimateKey, u64>>>,
    metrics: Arc<Metrics>,
}

impl SchedulerHandle {
    /// Starts the actor, recording into metrics of its own.
    pub fn start(config: SchedulerConfig, factory: Arc<dyn RunnerFactory>) -> SchedulerHandle {
        Self::start_metered(config, factory, Arc::default())
    }

    /// Starts the actor, recording the queue, loads and crashes into `metrics`.
    pub fn start_metered(
        config: SchedulerConfig,
        factory: Arc<dyn RunnerFactory>,
        metrics: Arc<Metrics>,
    ) -> SchedulerHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(config.clone());
        tokio::spawn(actor::run(config, factory, rx, tx.clone(), metrics.clone()));
        SchedulerHandle {
            tx,
            config: shared,
            estimates: Default::default(),
            metrics,
        }
    }

    /// Gets a runner for `model`, loading it if needed, and waits for a free parallel slot.
    /// `keep_alive` replaces the runner's keep-alive only when given.
    pub async fn acquire(
        &self,
        model: LocalModel,
        keep_alive: Option<KeepAlive>,
        options: LoadOptions,
    ) -> Result<Lease, SchedulerError> {
        let started = Instant::now();
        // Queued until this returns (or the caller gives up): a load, then a free slot.
        let _waiting = self.metrics.waiting();
        let need = self.need(&model, &options).await;
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Acquire {
            model: Box::new(model),
            keep_alive,
            options,
            need,
            reply,
            span: tracing::Span::current(),
        })?;
        let grant = rx.await.map_err(|_| SchedulerError::ShuttingDown)??;
        // The lease exists before the permit, so giving up while waiting for a slot still
        // releases the reference.
        let mut lease = Lease {
            runner: grant.runner,
            key: grant.key,
            id: grant.id,
            tx: self.tx.clone(),
            permit: None,
            load_duration: Duration::ZERO,
        };
        let permit = grant
            .slots
            .acquire_owned()
            .await
            .map_err(|_| SchedulerError::ShuttingDown)?;
        lease.permit = Some(permit);
        lease.load_duration = started.elapsed();
        Ok(lease)
    }

    /// The estimate of loading `model` (read from its files off the async threads); 0 when
    /// memory is not accounted.
    async fn need(&self, model: &LocalModel, options: &LoadOptions) -> u64 {
        if self.config.memory_limit.is_none() {
            return 0;
        }
        let num_ctx = if options.num_ctx > 0 {
            options.num_ctx
        } else {
            4096
        };
        let machines = self.config.machines_for(model, options);
        let key = (model.key(), model.digest.clone(), num_ctx, machines);
        if let Some(n) = self.estimates.lock().unwrap().get(&key) {
            return *n;
        }
        let (model, config) = (model.clone(), self.config.clone());
        let need = tokio::task::spawn_blocking(move || {
            let parallel = config.parallel_for(&model);
            let whole = memory::estimate(&model, parallel, num_ctx, config.kv_cache_type);
            memory::local_share(whole, machines)
        })
        .await
        .unwrap_or(0);
        self.estimates.lock().unwrap().insert(key, need);
        need
    }

    /// Marks a model to unload as soon as it is idle (`keep_alive: 0` with no prompt). Returns
    /// at once.
    pub fn expire(&self, key: PathBuf) {
        let _ = self.tx.send(Msg::Expire { key });
    }

    /// Stops a model's runner now and waits until it is gone (before deleting its files).
    pub async fn unload_now(&self, key: PathBuf) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::UnloadNow { key, reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// The loaded models, latest expiry first.
    pub async fn ps(&self) -> Vec<LoadedModel> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Ps { reply }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Fails waiting requests, stops every runner, and ends the actor.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    fn send(&self, m: Msg) -> Result<(), SchedulerError> {
        self.tx.send(m).map_err(|_| SchedulerError::ShuttingDown)
    }
}

/// What the actor hands out: a runner and the semaphore of its parallel slots.
pub struct Grant {
    runner: Arc<dyn Runner>,
    key: PathBuf,
    id: u64,
    slots: Arc<Semaphore>,
}

/// A request's hold on a runner. Dropping it frees the slot and the reference.
pub struct Lease {
    pub runner: Arc<dyn Runner>,
    /// Time spent getting the runner (loading, waiting for a slot).
    pub load_duration: Duration,
    key: PathBuf,
    id: u64,
    tx: mpsc::UnboundedSender<Msg>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.permit.take();
        let _ = self.tx.send(Msg::Release {
            key: self.key.clone(),
            id: self.id,
        });
    }
}

#[cfg(test)]
mod tests;
