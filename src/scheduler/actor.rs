//! The task that owns every loaded runner, the load queue and the keep-alive timers. It never
//! awaits a runner: loads, closes and timers run in their own tasks and report back by message,
//! so the actor always answers promptly.

use super::memory;
use super::state::{self, Candidate};
use super::{Grant, LoadedModel, SchedulerConfig, SchedulerError};
use crate::api::KeepAlive;
use crate::metrics::Metrics;
use crate::runner::{LoadOptions, LoadSpec, Runner, RunnerError, RunnerFactory};
use crate::store::LocalModel;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, Semaphore};

type Reply = oneshot::Sender<Result<Grant, SchedulerError>>;

pub enum Msg {
    Acquire {
        model: Box<LocalModel>,
        keep_alive: Option<KeepAlive>,
        options: LoadOptions,
        /// The load's estimate (weights + KV; 0 when memory is not accounted).
        need: u64,
        reply: Reply,
        /// The request's span: a load it starts logs inside it, so the lines carry its id.
        span: tracing::Span,
    },
    Release {
        key: PathBuf,
        id: u64,
    },
    Loaded {
        key: PathBuf,
        result: Result<Arc<dyn Runner>, RunnerError>,
    },
    TimerFired {
        key: PathBuf,
        id: u64,
        generation: u64,
    },
    Exited {
        key: PathBuf,
        id: u64,
    },
    Expire {
        key: PathBuf,
    },
    UnloadNow {
        key: PathBuf,
        reply: oneshot::Sender<()>,
    },
    Ps {
        reply: oneshot::Sender<Vec<LoadedModel>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

struct Entry {
    id: u64,
    runner: Arc<dyn Runner>,
    model: LocalModel,
    slots: Arc<Semaphore>,
    refs: usize,
    keep_alive: KeepAlive,
    /// Bumped whenever the model is used, so an older timer knows it is stale.
    timer_generation: u64,
    expires_at: SystemTime,
    /// Unload as soon as the last request finishes.
    expiring: bool,
    /// Memory counted for it: the load's estimate, and its prefix-cache budget (shrinkable).
    need: u64,
    prefix: u64,
    /// The helper machines it holds (`SchedulerConfig::exclusive_group`), decided at its load.
    group: Option<&'static str>,
}

struct Waiter {
    model: LocalModel,
    keep_alive: Option<KeepAlive>,
    options: LoadOptions,
    need: u64,
    reply: Reply,
    span: tracing::Span,
}

/// Whether a load fits in the memory budget.
enum Room {
    /// It fits, with this prefix-cache budget for an MLX runner.
    Fits(Option<u64>),
    /// Only once a busy runner goes idle and can be evicted.
    Wait,
    /// Not even alone.
    Never,
}

struct Loading {
    key: PathBuf,
    waiters: Vec<Waiter>,
    /// The memory its runner is counted for once loaded: the estimate and the prefix budget.
    need: u64,
    prefix: u64,
}

struct Actor {
    config: SchedulerConfig,
    factory: Arc<dyn RunnerFactory>,
    tx: mpsc::UnboundedSender<Msg>,
    loaded: HashMap<PathBuf, Entry>,
    /// Requests waiting for a model that is not loaded, in arrival order.
    queue: VecDeque<Waiter>,
    /// The load in progress and the requests waiting on it.
    loading: Option<Loading>,
    next_id: u64,
    metrics: Arc<Metrics>,
    /// Models whose runner crashed and has not been started again yet (for the restart count).
    crashed: HashSet<PathBuf>,
}

pub async fn run(
    config: SchedulerConfig,
    factory: Arc<dyn RunnerFactory>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::UnboundedSender<Msg>,
    metrics: Arc<Metrics>,
) {
    let mut a = Actor {
        config,
        factory,
        tx,
        loaded: HashMap::new(),
        queue: VecDeque::new(),
        loading: None,
        next_id: 1,
        metrics,
        crashed: HashSet::new(),
    };
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Acquire {
                model,
                keep_alive,
                options,
                need,
                reply,
                span,
            } => a.acquire(Waiter {
                model: *model,
                keep_alive,
                options,
                need,
                reply,
                span,
            }),
            Msg::Release { key, id } => a.release(key, id),
            Msg::Loaded { key, result } => a.loaded(key, result),
            Msg::TimerFired {
                key,
                id,
                generation,
            } => a.timer_fired(key, id, generation),
            Msg::Exited { key, id } => a.exited(key, id),
            Msg::Expire { key } => a.expire(key),
            Msg::UnloadNow { key, reply } => a.unload_now(key, reply),
            Msg::Ps { reply } => {
                let _ = reply.send(a.ps());
            }
            Msg::Shutdown { reply } => {
                a.shutdown().await;
                let _ = reply.send(());
                return;
            }
        }
    }
}

impl Actor {
    fn acquire(&mut self, w: Waiter) {
        let key = w.model.key();
        if let Some(e) = self.loaded.get(&key) {
            if !e.runner.is_alive() {
                tracing::warn!(model = %e.model.name, "runner is gone; reloading");
                self.crashed(&key);
                self.remove(&key);
            } else if compatible(e, &w.options) {
                self.grant(&key, w);
                return;
            }
            // Loaded with other load-time options: queue for a reload once it is idle.
        }
        let waiting = self.queue.len() + self.loading.as_ref().map_or(0, |l| l.waiters.len());
        if !state::queue_has_room(waiting, self.config.max_queue) {
            let _ = w.reply.send(Err(SchedulerError::QueueFull));
            return;
        }
        match &mut self.loading {
            // Join the load already under way for this model.
            Some(l) if l.key == key => l.waiters.push(w),
            _ => self.queue.push_back(w),
        }
        self.start_next_load();
    }

    /// Hands the loaded runner to a waiter, unless the waiter has gone away.
    fn grant(&mut self, key: &PathBuf, w: Waiter) {
        let Some(e) = self.loaded.get_mut(key) else {
            return;
        };
        if w.reply.is_closed() {
            return;
        }
        if let Some(k) = w.keep_alive {
            e.keep_alive = k;
        }
        e.expiring = false;
        e.refs += 1;
        e.timer_generation += 1; // a request in flight: any pending timer is stale
        let grant = Grant {
            runner: e.runner.clone(),
            key: key.clone(),
            id: e.id,
            slots: e.slots.clone(),
        };
        if w.reply.send(Ok(grant)).is_err() {
            // Lost the race with a client that just left: the Lease never existed.
            e.refs -= 1;
            self.maybe_idle(key);
        }
    }

    fn release(&mut self, key: PathBuf, id: u64) {
        if let Some(e) = self.loaded.get_mut(&key) {
            if e.id == id {
                e.refs = e.refs.saturating_sub(1);
                self.maybe_idle(&key);
            }
        }
        self.start_next_load(); // a runner may have become evictable
    }

    /// Starts the keep-alive clock of a runner that has no request in flight.
    fn maybe_idle(&mut self, key: &PathBuf) {
        let Some(e) = self.loaded.get_mut(key) else {
            return;
        };
        if e.refs > 0 {
            return;
        }
        if e.expiring || e.keep_alive == KeepAlive::Zero {
            self.unload(key);
            return;
        }
        e.timer_generation += 1;
        match e.keep_alive.duration() {
            None => e.expires_at = far_future(),
            Some(d) => {
                e.expires_at = SystemTime::now() + d;
                let (tx, key, id, generation) =
                    (self.tx.clone(), key.clone(), e.id, e.timer_generation);
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = tx.send(Msg::TimerFired {
                        key,
                        id,
                        generation,
                    });
                });
            }
        }
    }

    fn timer_fired(&mut self, key: PathBuf, id: u64, generation: u64) {
        let current = self
            .loaded
            .get(&key)
            .is_some_and(|e| e.id == id && e.timer_generation == generation && e.refs == 0);
        if current {
            tracing::info!(model = %self.loaded[&key].model.name, "keep_alive expired; unloading");
            self.unload(&key);
            self.start_next_load();
        }
    }

    fn exited(&mut self, key: PathBuf, id: u64) {
        if self.loaded.get(&key).is_some_and(|e| e.id == id) {
            tracing::warn!(model = %self.loaded[&key].model.name, "runner exited; it will be started again on the next request");
            self.crashed(&key);
            self.loaded.remove(&key);
            self.start_next_load();
        }
    }

    /// Counts the crash of a loaded runner (it exited without being asked to).
    fn crashed(&mut self, key: &PathBuf) {
        if let Some(e) = self.loaded.get(key) {
            let model = e.model.name.display_shortest();
            self.metrics.crashes.get(&[&model]).inc();
            self.crashed.insert(key.clone());
        }
    }

    fn expire(&mut self, key: PathBuf) {
        if let Some(e) = self.loaded.get_mut(&key) {
            e.keep_alive = KeepAlive::Zero;
            e.expiring = true;
            e.expires_at = SystemTime::now();
            self.maybe_idle(&key);
            self.start_next_load();
        }
    }

    fn unload_now(&mut self, key: PathBuf, reply: oneshot::Sender<()>) {
        match self.loaded.remove(&key) {
            Some(e) => {
                tokio::spawn(async move {
                    e.runner.close().await;
                    let _ = reply.send(());
                });
            }
            None => {
                let _ = reply.send(());
            }
        }
        self.start_next_load();
    }

    /// The idle runner to evict first (`state::pick_victim`), if any.
    fn victim(&self) -> Option<PathBuf> {
        let candidates: Vec<Candidate> = self
            .loaded
            .iter()
            .map(|(k, e)| Candidate {
                key: k.clone(),
                refs: e.refs,
                keep_alive: e.keep_alive,
            })
            .collect();
        state::pick_victim(&candidates)
    }

    /// Memory counted for the loaded runners (loads start one at a time, only when none is
    /// under way, so there is never a load in progress to count here).
    fn used(&self) -> u64 {
        self.loaded.values().map(|e| e.need + e.prefix).sum()
    }

    /// Makes memory for `w`'s load, in this order: shrink the MLX prefix caches of loaded
    /// runners (the cheapest memory to give back), then evict idle runners (shortest keep-alive
    /// first, as for the count limit), else wait for one to go idle. An MLX load gets the
    /// default prefix budget, or what is left of the memory if that is less.
    fn make_room(&mut self, w: &Waiter) -> Room {
        let Some(limit) = self.config.memory_limit else {
            return Room::Fits(None);
        };
        if w.need > limit {
            return Room::Never;
        }
        while self.used() + w.need > limit {
            let mut over = self.used() + w.need - limit;
            for e in self.loaded.values_mut().filter(|e| e.prefix > 0) {
                let take = e.prefix.min(over);
                e.prefix -= take;
                over -= take;
                let (runner, budget) = (e.runner.clone(), e.prefix);
                tracing::info!(model = %e.model.name, budget, "shrinking the prefix cache to make room");
                tokio::spawn(async move {
                    if let Err(err) = runner.shrink_cache(budget).await {
                        tracing::warn!(error = %err, "could not shrink a prefix cache");
                    }
                });
                if over == 0 {
                    break;
                }
            }
            if over == 0 {
                break;
            }
            match self.victim() {
                Some(victim) => {
                    tracing::info!(model = %self.loaded[&victim].model.name, "unloading to make room in memory");
                    self.unload(&victim);
                }
                None => return Room::Wait,
            }
        }
        if !matches!(w.model.format, crate::store::format::Format::Mlx(_)) {
            return Room::Fits(None);
        }
        let left = limit.saturating_sub(self.used() + w.need);
        let wanted = self
            .config
            .prefix_cache_bytes
            .unwrap_or_else(|| memory::default_prefix(limit, w.model.size));
        Room::Fits(Some(wanted.min(left)))
    }

    /// Fails `w` and every queued request for the same model: it cannot fit in memory.
    fn refuse(&mut self, w: Waiter) {
        let limit = self.config.memory_limit.unwrap_or(0);
        let err = SchedulerError::Memory {
            need: w.need,
            available: limit,
        };
        tracing::warn!(model = %w.model.name, error = %err, "refusing a load");
        let key = w.model.key();
        let (same, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|o| o.model.key() == key);
        self.queue = rest.into();
        for o in std::iter::once(w).chain(same) {
            let _ = o.reply.send(Err(err.clone()));
        }
    }

    /// Removes a runner and stops its process in the background.
    fn unload(&mut self, key: &PathBuf) {
        if let Some(e) = self.loaded.remove(key) {
            tracing::info!(model = %e.model.name, "unloading");
            tokio::spawn(async move { e.runner.close().await });
        }
    }

    fn remove(&mut self, key: &PathBuf) {
        self.unload(key);
    }

    /// Starts the next load if none is running and there is (or can be made) room.
    fn start_next_load(&mut self) {
        while self.loading.is_none() {
            let Some(w) = self.queue.pop_front() else {
                return;
            };
            if w.reply.is_closed() {
                continue; // the client left while queued; nobody needs this load
            }
            let key = w.model.key();
            if let Some(e) = self.loaded.get(&key) {
                if compatible(e, &w.options) {
                    self.grant(&key, w);
                    continue;
                }
                if e.refs > 0 {
                    // Reload with the new options once the requests in flight finish.
                    self.queue.push_front(w);
                    return;
                }
                tracing::info!(model = %e.model.name, "load-time options changed; reloading");
                self.unload(&key);
            }
            if state::needs_room(self.loaded.len(), self.config.max_loaded_models) {
                match self.victim() {
                    Some(victim) => self.unload(&victim),
                    None => {
                        // Everything is busy: wait for a release.
                        self.queue.push_front(w);
                        return;
                    }
                }
            }
            // The helper machines serve one load of a kind at a time: an idle holder goes, a
            // busy one is waited for (an rpc-server would otherwise refuse the load as busy).
            if let Some(group) = self.config.exclusive_group(&w.model, &w.options) {
                let holders: Vec<(PathBuf, usize)> = self
                    .loaded
                    .iter()
                    .filter(|(k, e)| **k != key && e.group == Some(group))
                    .map(|(k, e)| (k.clone(), e.refs))
                    .collect();
                if holders.iter().any(|(_, refs)| *refs > 0) {
                    self.queue.push_front(w);
                    return;
                }
                for (k, _) in holders {
                    tracing::info!(model = %self.loaded[&k].model.name, group, "unloading: the next load needs its helper machines");
                    self.unload(&k);
                }
            }
            let prefix = match self.make_room(&w) {
                Room::Fits(prefix) => prefix,
                Room::Wait => {
                    self.queue.push_front(w);
                    return;
                }
                Room::Never => {
                    self.refuse(w);
                    continue;
                }
            };
            // Everyone queued for the same model rides on this load.
            let (same, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|o| o.model.key() == key && o.options == w.options);
            self.queue = rest.into();
            let spec = LoadSpec {
                model: w.model.clone(),
                num_parallel: self.config.parallel_for(&w.model),
                options: w.options.clone(),
                prefix_cache_bytes: prefix,
            };
            let (need, span) = (w.need, w.span.clone());
            let mut waiters = vec![w];
            waiters.extend(same);
            self.loading = Some(Loading {
                key: key.clone(),
                waiters,
                need,
                prefix: prefix.unwrap_or(0),
            });
            let (factory, tx) = (self.factory.clone(), self.tx.clone());
            let metrics = self.metrics.clone();
            span.in_scope(|| tracing::info!(model = %spec.model.name, "loading model"));
            // The load runs to completion even if every waiter gives up: the model is then
            // loaded for the next request, and nobody else's load is aborted.
            let load = async move {
                let (model, started) = (spec.model.name.display_shortest(), Instant::now());
                let result = factory.start(spec).await;
                metrics.load(&model, result.is_ok(), started.elapsed());
                let _ = tx.send(Msg::Loaded { key, result });
            };
            tokio::spawn(tracing::Instrument::instrument(load, span));
        }
    }

    fn loaded(&mut self, key: PathBuf, result: Result<Arc<dyn Runner>, RunnerError>) {
        let (waiters, need, prefix) = match self.loading.take() {
            Some(l) if l.key == key => (l.waiters, l.need, l.prefix),
            other => {
                self.loading = other;
                (Vec::new(), 0, 0)
            }
        };
        match result {
            Ok(runner) => {
                let Some(first) = waiters.first() else {
                    // Shutdown raced the load; close it.
                    tokio::spawn(async move { runner.close().await });
                    return;
                };
                if self.crashed.remove(&key) {
                    let model = first.model.name.display_shortest();
                    self.metrics.restarts.get(&[&model]).inc();
                }
                let id = self.next_id;
                self.next_id += 1;
                let watch_runner = runner.clone();
                let (tx, watch_key) = (self.tx.clone(), key.clone());
                tokio::spawn(async move {
                    watch_runner.exited().await;
                    let _ = tx.send(Msg::Exited { key: watch_key, id });
                });
                self.loaded.insert(
                    key.clone(),
                    Entry {
                        id,
                        runner,
                        model: first.model.clone(),
                        slots: Arc::new(Semaphore::new(self.config.parallel_for(&first.model))),
                        refs: 0,
                        keep_alive: first.keep_alive.unwrap_or(self.config.default_keep_alive),
                        timer_generation: 0,
                        expires_at: SystemTime::now(),
                        expiring: false,
                        need,
                        prefix,
                        group: self.config.exclusive_group(&first.model, &first.options),
                    },
                );
                for w in waiters {
                    self.grant(&key, w);
                }
                self.maybe_idle(&key);
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the model failed");
                for w in waiters {
                    let _ = w.reply.send(Err(SchedulerError::Runner(e.clone())));
                }
            }
        }
        self.start_next_load();
    }

    fn ps(&self) -> Vec<LoadedModel> {
        let mut out: Vec<LoadedModel> = self
            .loaded
            .values()
            .map(|e| {
                let expires_at = if e.refs > 0 && e.expires_at <= SystemTime::now() {
                    // In use and never idle yet: estimate from the keep-alive, as Ollama does.
                    e.keep_alive
                        .duration()
                        .map_or(far_future(), |d| SystemTime::now() + d)
                } else {
                    e.expires_at
                };
                let info = e.runner.info();
                LoadedModel {
                    model: e.model.clone(),
                    estimate: e.need + e.prefix,
                    runner: e.runner.clone(),
                    expires_at,
                    context_length: info.context_length,
                    backend: info.backend.clone(),
                    pid: info.pid,
                }
            })
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse(m.expires_at));
        out
    }

    async fn shutdown(&mut self) {
        for w in self.queue.drain(..) {
            let _ = w.reply.send(Err(SchedulerError::ShuttingDown));
        }
        if let Some(l) = self.loading.take() {
            for w in l.waiters {
                let _ = w.reply.send(Err(SchedulerError::ShuttingDown));
            }
        }
        let closing: Vec<_> = self.loaded.drain().map(|(_, e)| e.runner).collect();
        futures_util::future::join_all(closing.iter().map(|r| r.close())).await;
    }
}

/// Whether a loaded runner serves a request with these load-time options.
fn compatible(e: &Entry, wanted: &LoadOptions) -> bool {
    e.runner
        .info()
        .load
        .as_ref()
        .is_none_or(|have| have == wanted)
}

/// What a negative keep-alive shows as: Go's maximum duration from now (around the year 2318).
fn far_future() -> SystemTime {
    SystemTime::now() + Duration::from_nanos(i64::MAX as u64)
}
