//! Actor behaviour with fake runners: reuse, parallel slots, the queue bound, keep-alive,
//! eviction, dead runners and clients that give up during a load.

use super::*;
use crate::metrics::Metrics;
use crate::runner::fake::FakeFactory;
use crate::runner::LoadOptions;
use crate::store::format::{Format, MlxLayout};
use crate::store::hf::HfEntry;
use crate::store::name::ModelName;
use crate::store::Source;
use std::sync::atomic::Ordering;

fn model(name: &str) -> LocalModel {
    let dir = PathBuf::from(format!("/models/{name}"));
    LocalModel {
        name: ModelName::parse(&format!("org/{name}")).unwrap(),
        format: Format::Mlx(MlxLayout {
            dir: dir.clone(),
            index: None,
            shards: vec![],
        }),
        source: Source::HfCache(HfEntry {
            repo_id: format!("org/{name}"),
            repo_dir: dir.clone(),
            ref_name: "main".into(),
            revision: "r".into(),
            snapshot: dir,
            modified: SystemTime::UNIX_EPOCH,
        }),
        config: Default::default(),
        size: 1,
        digest: "0".repeat(64),
        modified: SystemTime::UNIX_EPOCH,
    }
}

fn config() -> SchedulerConfig {
    SchedulerConfig {
        default_keep_alive: KeepAlive::DEFAULT,
        max_loaded_models: 2,
        num_parallel: 1,
        mlx_num_parallel: 1,
        max_queue: 4,
        memory_limit: None,
        kv_cache_type: Default::default(),
        prefix_cache_bytes: None,
        rpc_hosts: 0,
        mlx_clusters: Default::default(),
    }
}

fn start(f: &Arc<FakeFactory>, c: SchedulerConfig) -> SchedulerHandle {
    SchedulerHandle::start(c, f.clone())
}

#[tokio::test]
async fn reuses_one_runner_per_model() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(f.starts.load(Ordering::SeqCst), 1);
    assert_eq!(s.ps().await.len(), 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_load() {
    let f = Arc::new(FakeFactory {
        load_delay: Duration::from_millis(100),
        ..FakeFactory::new(&["a"])
    });
    let s = start(
        &f,
        SchedulerConfig {
            mlx_num_parallel: 4,
            ..config()
        },
    );
    let leases = futures_util::future::join_all(
        (0..4).map(|_| s.acquire(model("m"), None, LoadOptions::default())),
    )
    .await;
    assert!(leases.iter().all(|l| l.is_ok()));
    assert_eq!(f.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn num_parallel_limits_concurrent_use() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config()); // num_parallel 1
    let first = s
        .acquire(model("m"), None, LoadOptions::default())
        .await
        .unwrap();
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        s2.acquire(model("m"), None, LoadOptions::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !second.is_finished(),
        "the second request must wait for the slot"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn mlx_and_gguf_models_get_their_own_slot_counts() {
    let f = Arc::new(FakeFactory::new(&["m", "g"]));
    let s = start(
        &f,
        SchedulerConfig {
            num_parallel: 1,
            mlx_num_parallel: 3,
            ..config()
        },
    );
    let mlx: Vec<_> = futures_util::future::join_all(
        (0..3).map(|_| s.acquire(model("m"), None, LoadOptions::default())),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let fourth = tokio::time::timeout(
        Duration::from_millis(200),
        s.acquire(model("m"), None, LoadOptions::default()),
    );
    assert!(fourth.await.is_err(), "an MLX model has three slots here");
    let mut gguf = model("g");
    gguf.format = Format::Gguf(PathBuf::from("/models/g.gguf"));
    let one = s
        .acquire(gguf.clone(), None, LoadOptions::default())
        .await
        .unwrap();
    let second = tokio::time::timeout(
        Duration::from_millis(200),
        s.acquire(gguf, None, LoadOptions::default()),
    );
    assert!(second.await.is_err(), "a GGUF model keeps one slot");
    drop((mlx, one));
}

fn sized(name: &str, bytes: u64) -> LocalModel {
    LocalModel {
        size: bytes,
        ..model(name)
    }
}

fn with_memory(limit: u64) -> SchedulerConfig {
    SchedulerConfig {
        memory_limit: Some(limit),
        prefix_cache_bytes: Some(0),
        max_loaded_models: 10,
        ..config()
    }
}

#[tokio::test]
async fn a_model_larger_than_the_memory_budget_is_refused_in_ollamas_words() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, with_memory(3 << 30));
    let err = s
        .acquire(sized("big", 4 << 30), None, LoadOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "model requires more system memory (4.0 GiB) than is available (3.0 GiB)"
    );
    assert_eq!(f.starts.load(Ordering::SeqCst), 0, "nothing was started");
    // A model that fits still loads.
    s.acquire(sized("small", 1 << 30), None, LoadOptions::default())
        .await
        .unwrap();
}

/// With rpc-servers a GGUF model's layers go to other machines: this one counts its share, so
/// a model bigger than its budget loads; `num_gpu: 0` keeps it all here, and MLX models are not
/// spread by llama.cpp.
#[tokio::test]
async fn a_gguf_model_spread_over_rpc_servers_counts_a_share_here() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(
        &f,
        SchedulerConfig {
            rpc_hosts: 2,
            ..with_memory(3 << 30)
        },
    );
    let mut big = sized("big", 6 << 30);
    big.format = Format::Gguf(PathBuf::from("/models/big.gguf"));
    drop(
        s.acquire(big.clone(), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    let here = LoadOptions {
        num_gpu: Some(0),
        ..LoadOptions::default()
    };
    let mut alone = sized("alone", 6 << 30);
    alone.format = Format::Gguf(PathBuf::from("/models/alone.gguf"));
    let err = s.acquire(alone, None, here).await.err().unwrap();
    assert!(err.to_string().contains("(6.0 GiB)"), "{err}");
    let err = s
        .acquire(sized("mlx", 6 << 30), None, LoadOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("(6.0 GiB)"), "{err}");
}

/// An MLX model split over ranks (`OLLMLX_MLX_HOSTS`) counts rank 0's share here; a model its
/// rules keep here counts whole.
#[tokio::test]
async fn a_split_mlx_model_counts_rank_zeros_share_here() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let clusters = crate::runner::cluster::MlxClusters::parse(
        "10.0.0.1,10.0.0.2,10.0.0.3; org/alone=local",
        "auto",
        None,
    )
    .unwrap();
    let s = start(
        &f,
        SchedulerConfig {
            mlx_clusters: clusters,
            ..with_memory(3 << 30)
        },
    );
    drop(
        s.acquire(sized("big", 6 << 30), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    let err = s
        .acquire(sized("alone", 6 << 30), None, LoadOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("(6.0 GiB)"), "{err}");
}

/// An rpc-server serves one llama-server at a time: a second GGUF model spread over the
/// rpc-servers unloads an idle first one, and waits for a busy one; models kept here
/// (`num_gpu: 0`) and MLX models are not in the way.
#[tokio::test]
async fn models_spread_over_the_rpc_servers_take_turns() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(
        &f,
        SchedulerConfig {
            rpc_hosts: 1,
            max_loaded_models: 4,
            ..config()
        },
    );
    let gguf = |name: &str| {
        let mut m = model(name);
        m.format = Format::Gguf(PathBuf::from(format!("/models/{name}.gguf")));
        m
    };
    let here = LoadOptions {
        num_gpu: Some(0),
        ..LoadOptions::default()
    };
    let _local = s.acquire(gguf("local"), None, here).await.unwrap();
    let _mlx = s
        .acquire(model("mlx"), None, LoadOptions::default())
        .await
        .unwrap();
    drop(
        s.acquire(gguf("a"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    let a = f.last();
    let b = s
        .acquire(gguf("b"), None, LoadOptions::default())
        .await
        .unwrap();
    assert!(
        a.closed.load(Ordering::SeqCst),
        "the idle spread model went"
    );
    let names = |v: Vec<crate::scheduler::LoadedModel>| {
        let mut n: Vec<String> = v.iter().map(|m| m.model.name.model.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(s.ps().await), ["b", "local", "mlx"]);
    // b is busy: c waits for it, then takes its place.
    let s2 = s.clone();
    let c = tokio::spawn(async move { s2.acquire(gguf("c"), None, LoadOptions::default()).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!c.is_finished(), "c waits while b is in use");
    drop(b);
    let _c = tokio::time::timeout(std::time::Duration::from_secs(5), c)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(names(s.ps().await), ["c", "local", "mlx"]);
}

#[tokio::test]
async fn a_load_that_does_not_fit_evicts_an_idle_runner_first() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, with_memory(3 << 30));
    drop(
        s.acquire(sized("a", 2 << 30), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    let first = f.last();
    // Two 2 GiB models do not fit in 3 GiB: the idle one goes.
    let _b = s
        .acquire(sized("b", 2 << 30), None, LoadOptions::default())
        .await
        .unwrap();
    assert!(first.closed.load(Ordering::SeqCst));
    let names: Vec<String> = s
        .ps()
        .await
        .iter()
        .map(|m| m.model.name.to_string())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].contains("/b"), "{names:?}");
    assert_eq!(s.ps().await[0].estimate, 2 << 30);
}

#[tokio::test]
async fn a_load_that_does_not_fit_waits_for_a_busy_runner() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, with_memory(3 << 30));
    let busy = s
        .acquire(sized("a", 2 << 30), None, LoadOptions::default())
        .await
        .unwrap();
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        s2.acquire(sized("b", 2 << 30), None, LoadOptions::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!second.is_finished(), "a busy runner is never evicted");
    assert_eq!(f.starts.load(Ordering::SeqCst), 1);
    drop(busy);
    tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(f.starts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn prefix_caches_shrink_before_any_runner_is_evicted() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(
        &f,
        SchedulerConfig {
            prefix_cache_bytes: None, // the default share of what is left
            ..with_memory(8 << 30)
        },
    );
    let _a = s
        .acquire(sized("a", 2 << 30), None, LoadOptions::default())
        .await
        .unwrap();
    let a = f.last();
    // A quarter of what the 2 GiB of weights leave of 8 GiB.
    assert_eq!(*a.prefix_budget.lock().unwrap(), Some(3 << 29));
    assert_eq!(s.ps().await[0].estimate, (2 << 30) + (3 << 29));
    // 5.5 GiB more: 2 + 1.5 + 5.5 > 8, so 1 GiB of a's prefix cache is given back, nothing is
    // evicted, and the new runner gets what is left for its own cache (nothing).
    let _b = s
        .acquire(sized("b", 11 << 29), None, LoadOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // the shrink request is sent async
    assert_eq!(*a.prefix_budget.lock().unwrap(), Some(1 << 29));
    assert!(!a.closed.load(Ordering::SeqCst));
    assert_eq!(*f.last().prefix_budget.lock().unwrap(), Some(0));
    let total: u64 = s.ps().await.iter().map(|m| m.estimate).sum();
    assert_eq!(total, 8 << 30);
}

#[tokio::test]
async fn queue_is_bounded() {
    let f = Arc::new(FakeFactory {
        load_delay: Duration::from_millis(300),
        ..FakeFactory::new(&["a"])
    });
    let s = start(
        &f,
        SchedulerConfig {
            max_queue: 2,
            ..config()
        },
    );
    let mut waiting = Vec::new();
    for i in 0..2 {
        let s = s.clone();
        waiting.push(tokio::spawn(async move {
            s.acquire(model(&format!("m{i}")), None, LoadOptions::default())
                .await
                .map(|_| ())
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = s.acquire(model("m9"), None, LoadOptions::default()).await;
    assert!(matches!(third, Err(SchedulerError::QueueFull)));
    assert_eq!(
        SchedulerError::QueueFull.to_string(),
        "server busy, please try again.  maximum pending requests exceeded"
    );
}

#[tokio::test]
async fn keep_alive_zero_unloads_when_idle() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    let lease = s
        .acquire(model("m"), Some(KeepAlive::Zero), LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(s.ps().await.len(), 1);
    drop(lease);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.ps().await.is_empty());
    assert!(f.last().closed.load(Ordering::SeqCst));
}

#[tokio::test]
async fn keep_alive_timer_starts_when_idle_and_last_explicit_value_sticks() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    let short = KeepAlive::For(Duration::from_millis(200));
    let lease = s
        .acquire(model("m"), Some(short), LoadOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.ps().await.len(),
        1,
        "no expiry while a request is in flight"
    );
    drop(lease);
    // A request without keep_alive keeps the 200 ms set before.
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(s.ps().await.is_empty(), "expired 200 ms after going idle");
    assert_eq!(f.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn forever_never_expires_and_shows_far_future() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    drop(
        s.acquire(model("m"), Some(KeepAlive::Forever), LoadOptions::default())
            .await
            .unwrap(),
    );
    let ps = s.ps().await;
    let years = ps[0]
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap()
        .as_secs()
        / (365 * 86400);
    assert!(years > 200, "{years}");
}

#[tokio::test]
async fn evicts_idle_runner_when_full() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config()); // max 2 loaded
    drop(
        s.acquire(model("a"), Some(KeepAlive::Forever), LoadOptions::default())
            .await
            .unwrap(),
    );
    drop(
        s.acquire(
            model("b"),
            Some(KeepAlive::For(Duration::from_secs(60))),
            LoadOptions::default(),
        )
        .await
        .unwrap(),
    );
    let busy_c = s
        .acquire(model("c"), None, LoadOptions::default())
        .await
        .unwrap();
    let names: Vec<String> = s
        .ps()
        .await
        .iter()
        .map(|m| m.model.name.model.clone())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"a".to_string()),
        "the shortest keep_alive (b) goes first: {names:?}"
    );
    assert!(names.contains(&"c".to_string()));
    drop(busy_c);
}

#[tokio::test]
async fn waits_for_a_busy_runner_instead_of_evicting_it() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(
        &f,
        SchedulerConfig {
            max_loaded_models: 1,
            ..config()
        },
    );
    let busy = s
        .acquire(model("a"), None, LoadOptions::default())
        .await
        .unwrap();
    let s2 = s.clone();
    let other = tokio::spawn(async move {
        s2.acquire(model("b"), None, LoadOptions::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!other.is_finished());
    drop(busy);
    tokio::time::timeout(Duration::from_secs(2), other)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn dead_runner_is_replaced() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    f.last().kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.ps().await.is_empty(), "a dead runner leaves ps");
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(f.starts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_giving_up_does_not_abort_the_load() {
    let f = Arc::new(FakeFactory {
        load_delay: Duration::from_millis(200),
        ..FakeFactory::new(&["a"])
    });
    let s = start(&f, config());
    let s2 = s.clone();
    let impatient = tokio::spawn(async move {
        s2.acquire(model("m"), None, LoadOptions::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let s3 = s.clone();
    let patient = tokio::spawn(async move {
        s3.acquire(model("m"), None, LoadOptions::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    impatient.abort();
    patient.await.unwrap().unwrap();
    assert_eq!(f.starts.load(Ordering::SeqCst), 1);
    assert_eq!(s.ps().await.len(), 1);
}

#[tokio::test]
async fn load_errors_reach_every_waiter() {
    let f = Arc::new(FakeFactory {
        fail_load: Some("bad weights".into()),
        ..FakeFactory::new(&["a"])
    });
    let s = start(&f, config());
    let (a, b) = tokio::join!(
        s.acquire(model("m"), None, LoadOptions::default()),
        s.acquire(model("m"), None, LoadOptions::default())
    );
    for r in [a, b] {
        match r {
            Err(SchedulerError::Runner(RunnerError::Load { message })) => {
                assert_eq!(message, "bad weights")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("load should fail"),
        }
    }
}

#[tokio::test]
async fn expire_unloads_after_the_last_request() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    let lease = s
        .acquire(model("m"), None, LoadOptions::default())
        .await
        .unwrap();
    s.expire(model("m").key());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.ps().await.len(), 1, "still in use");
    drop(lease);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.ps().await.is_empty());
}

#[tokio::test]
async fn shutdown_closes_every_runner() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let s = start(&f, config());
    drop(
        s.acquire(model("a"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    drop(
        s.acquire(model("b"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    s.shutdown().await;
    assert!(f
        .made
        .lock()
        .unwrap()
        .iter()
        .all(|r| r.closed.load(Ordering::SeqCst)));
    assert!(matches!(
        s.acquire(model("a"), None, LoadOptions::default()).await,
        Err(SchedulerError::ShuttingDown)
    ));
}

#[tokio::test]
async fn changed_load_options_reload_the_runner_once_idle() {
    let f = Arc::new(FakeFactory {
        fixed_options: true,
        ..FakeFactory::new(&["a"])
    });
    let s = start(&f, config());
    let small = LoadOptions {
        num_ctx: 2048,
        ..Default::default()
    };
    let big = LoadOptions {
        num_ctx: 4096,
        ..Default::default()
    };
    let busy = s.acquire(model("m"), None, small.clone()).await.unwrap();
    let s2 = s.clone();
    let b2 = big.clone();
    let wait = tokio::spawn(async move { s2.acquire(model("m"), None, b2).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !wait.is_finished(),
        "the reload waits for the request in flight"
    );
    drop(busy);
    tokio::time::timeout(Duration::from_secs(2), wait)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(f.starts.load(Ordering::SeqCst), 2);
    assert!(
        f.made.lock().unwrap()[0].closed.load(Ordering::SeqCst),
        "the old runner is stopped"
    );
    // Same options again: reused.
    drop(s.acquire(model("m"), None, big).await.unwrap());
    assert_eq!(f.starts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn loads_waits_crashes_and_restarts_are_counted() {
    let f = Arc::new(FakeFactory::new(&["a"]));
    let metrics = Arc::new(Metrics::default());
    let s = SchedulerHandle::start_metered(config(), f.clone(), metrics.clone());
    let busy = s
        .acquire(model("m"), None, LoadOptions::default())
        .await
        .unwrap();
    // One slot, taken: a second request waits, and shows in the queue depth until it has one.
    let s2 = s.clone();
    let second = tokio::spawn(async move {
        s2.acquire(model("m"), None, LoadOptions::default())
            .await
            .map(drop)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metrics.queue_depth.get(), 1);
    drop(busy);
    second.await.unwrap().unwrap();
    assert_eq!(metrics.queue_depth.get(), 0);
    assert_eq!(metrics.queue_wait.snapshot().count, 2);

    f.last().kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(
        s.acquire(model("m"), None, LoadOptions::default())
            .await
            .unwrap(),
    );
    let name = "org/m:latest";
    assert_eq!(metrics.crashes.get(&[name]).get(), 1);
    assert_eq!(metrics.restarts.get(&[name]).get(), 1);
    assert_eq!(metrics.loads.get(&[name, "ok"]).get(), 2);
    assert_eq!(metrics.load_seconds.get(&[name]).snapshot().count, 2);
    // An unload that was asked for is no crash.
    s.unload_now(model("m").key()).await;
    assert_eq!(metrics.crashes.get(&[name]).get(), 1);
}
