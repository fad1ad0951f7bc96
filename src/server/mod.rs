//! The HTTP server: the route table ([`router`]), and [`run`], which wires configuration, store,
//! scheduler and runners together, serves until SIGINT/SIGTERM, then shuts everything down.

pub mod cors;
pub mod create;
pub mod error;
pub mod extract;
pub mod host_guard;
pub mod infer;
pub mod listen;
pub mod ndjson;
pub mod plan;
pub mod request;
pub mod routes;
pub mod shutdown;
pub mod state;
#[cfg(test)]
mod tests;
pub mod ui;

use crate::config::Config;
use crate::runner::llamacpp::LlamaFactory;
use crate::runner::mlx::MlxFactory;
use crate::runner::python::PythonRuntime;
use crate::runner::DispatchFactory;
use crate::scheduler::{SchedulerConfig, SchedulerHandle};
use crate::store::Store;
use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use routes::{
    anthropic, blobs, chat, embed, generate, metrics, models, openai, ps, pull, responses, version,
};
use state::AppState;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// The route table. A pure function of the state, so tests drive it without a socket.
pub fn router(state: AppState) -> Router {
    let origins = cors::Origins::new(&state.config.origins);
    let guard = host_guard::HostGuard::new(state.config.listen.ip().is_loopback());
    let metered = state.metrics.clone();
    Router::new()
        .route("/", get(version::root))
        .route("/api/version", get(version::version))
        .route("/api/tags", get(models::tags))
        .route("/api/show", post(models::show))
        .route("/api/delete", delete(models::delete))
        .route("/api/create", post(models::create))
        .route("/api/copy", post(models::copy))
        .route("/api/pull", post(pull::pull))
        .route("/api/push", post(pull::push))
        .route("/api/status", get(version::status))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*model}", get(openai::model))
        .route(
            "/api/blobs/{digest}",
            axum::routing::head(blobs::head).post(blobs::upload),
        )
        .route("/api/ps", get(ps::ps))
        .route("/api/generate", post(generate::generate))
        .route("/api/chat", post(chat::chat))
        .route("/api/embed", post(embed::embed))
        .route("/api/embeddings", post(embed::embeddings))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn(request::remember_route))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
        })
        // Ollama has no body limit; chat bodies with long histories or images exceed axum's 2 MB,
        // but no request may take the machine (see `MAX_BODY`).
        .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(origins, cors::layer))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            host_guard::layer,
        ))
        // Outermost, so refused requests are counted and logged with an id too.
        .layer(axum::middleware::from_fn_with_state(
            metered,
            request::layer,
        ))
        .with_state(state)
}

/// Builds the state for a configuration, with the real runners.
pub fn state(config: Config, shutdown: CancellationToken) -> AppState {
    let runtime = PythonRuntime::new(config.python.clone(), &config.home, &config.mlx_backend);
    let mlx = Arc::new(MlxFactory {
        runtime: runtime.clone(),
        home: config.home.clone(),
        load_timeout: config.load_timeout,
        debug: config.debug_level > 0,
        prefix_cache_bytes: config.prefix_cache_bytes,
        kv_bits: config.kv_cache_type.mlx_bits(),
        install_wait: config.install_wait,
        clusters: config.mlx_clusters.clone(),
    });
    let gguf = Arc::new(LlamaFactory {
        binary: config.llama_server.clone(),
        exe_dir: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
        search_path: config.search_path.clone(),
        load_timeout: config.load_timeout,
        threads: config.llama_threads,
        cache_type: config.kv_cache_type.llama_arg(),
        records: Some(crate::runner::leftovers::dir(&config.home)),
        pick_port: crate::runner::llamacpp::free_port,
        install: Some(Arc::new(
            crate::runner::llamacpp::install::LlamaInstall::new(
                crate::runner::llamacpp::install::Source::pinned(config.llama_source.as_deref()),
                config.home.join("llama-server"),
            ),
        )),
        install_wait: config.install_wait,
        rpc_servers: config.rpc_servers.clone(),
    });
    let mut state = state_with(config, Arc::new(DispatchFactory { mlx, gguf }), shutdown);
    state.puller.runtime = Some(runtime);
    state
}

/// Builds the state with a given runner factory (the test seam).
pub fn state_with(
    config: Config,
    factory: Arc<dyn crate::runner::RunnerFactory>,
    shutdown: CancellationToken,
) -> AppState {
    let config = Arc::new(config);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let scheduler = SchedulerHandle::start_metered(
        SchedulerConfig {
            default_keep_alive: config.keep_alive,
            max_loaded_models: config.max_loaded_models,
            num_parallel: config.num_parallel,
            mlx_num_parallel: config.mlx_num_parallel,
            max_queue: config.max_queue,
            memory_limit: config.max_memory,
            kv_cache_type: config.kv_cache_type,
            prefix_cache_bytes: config.prefix_cache_bytes,
            rpc_hosts: config.rpc_servers.len(),
            mlx_clusters: config.mlx_clusters.clone(),
        },
        factory,
        metrics.clone(),
    );
    let store = Arc::new(Store::new(
        config.hf_cache.clone(),
        config.models_dir.clone(),
    ));
    let puller = crate::pull::Puller::new(
        config.hf_endpoint.clone(),
        config.hf_token.0.clone(),
        Some(config.hf_token_path.clone()),
        config.hf_cache.clone(),
        store.ollama.clone(),
    );
    AppState {
        puller,
        store,
        config,
        scheduler,
        metrics,
        shutdown,
        store_lock: Arc::default(),
    }
}

/// Serves until SIGINT or SIGTERM; then stops accepting, ends in-flight streams with a final
/// line, stops every runner and returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if !listen.ip().is_loopback() {
        tracing::warn!("listening on {listen}, which is reachable from other machines");
    }
    // Runners a killed daemon left behind still hold ports and memory: stop them first.
    let home = config.home.clone();
    tokio::task::spawn_blocking(move || {
        crate::runner::leftovers::reap(&crate::runner::leftovers::dir(&home))
    })
    .await?;
    let shutdown = CancellationToken::new();
    let state = state(config, shutdown.clone());
    // Temporary files a killed ollmlx left in Ollama's store (uploads, manifests) and in the
    // hub cache's refs.
    let store = state.store.clone();
    let removed = tokio::task::spawn_blocking(move || store.remove_stale_temps()).await?;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed temporary files a previous ollmlx left behind"
        );
    }
    tracing::info!(
        models = %state.config.models_dir.display(),
        hf_cache = %state.config.hf_cache.display(),
        home = %state.config.home.display(),
        keep_alive = ?state.config.keep_alive,
        num_parallel = state.config.num_parallel,
        mlx_num_parallel = state.config.mlx_num_parallel,
        kv_cache_type = ?state.config.kv_cache_type,
        max_loaded_models = state.config.max_loaded_models,
        max_memory = ?state.config.max_memory,
        "server config"
    );
    tracing::info!(
        "Listening on {} (version {}, ollmlx {})",
        listener.local_addr()?,
        crate::api::OLLAMA_COMPAT_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    let scheduler = state.scheduler.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        token.cancel();
    });
    let serve = listen::serve(
        listener,
        router(state),
        shutdown.clone(),
        listen::Timeouts::default(),
    );
    let drained = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        _ = serve => {}
        _ = drained => tracing::warn!("in-flight requests did not finish in time"),
    }
    scheduler.shutdown().await;
    tracing::info!("all runners stopped; bye");
    Ok(())
}
