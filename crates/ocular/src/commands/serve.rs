//! `ocular serve`: migrate, discover models, listen, then load models in the background.
//!
//! The listener is bound before models load so `/health` answers at once (liveness) while
//! `/health/ready` stays 503 until every enabled model is loaded and warmed (preload mode).

use std::time::Duration;

use anyhow::Context;
use ocular_app::{Config, search_models};
use ocular_models::RegistryOptions;
use ocular_models::session::SessionOptions;
use ocular_server::AppState;

pub fn run(config: Config) -> anyhow::Result<()> {
    // Request handling gets the same thread budget as inference (`Config::threads`): with
    // --intra-threads 1 on a shared host, neither takes a second core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = %config.redacted(), "effective configuration");
    // Before anything is opened: a public address without a key is refused unless the
    // operator opted in, and then said loudly.
    match config.check_public_bind() {
        Ok(None) => {}
        Ok(Some(exposed)) => {
            tracing::warn!("OCULAR_ALLOW_PUBLIC_WITHOUT_KEY=true: {exposed}");
            eprintln!("WARNING: OCULAR_ALLOW_PUBLIC_WITHOUT_KEY=true: {exposed}");
        }
        Err(refusal) => anyhow::bail!(refusal),
    }
    let store = super::open_store(&config)?;
    let options = RegistryOptions {
        models_dir: config.models_dir.clone(),
        ort_library: config.ort_library.clone(),
        session: SessionOptions { intra_threads: config.threads() },
        enabled: config.models.clone(),
    };
    // One intra-op pool for every model: the process's thread budget (cores, or the cgroup's
    // CPU quota, unless --intra-threads says otherwise).
    ocular_models::runtime::share_threads(options.session.intra_threads);
    ocular_models::session::set_max_batch(config.inference_batch);
    ocular_app::memory::spawn_idle_trim().context("starting the idle-trim thread")?;
    let registry = search_models::discover(options, config.search_models, config.precisions())
        .context("reading model manifests")?;
    // A chosen search model that is not installed stops start-up (the default models being
    // absent only turns search off, as it always has).
    search_models::provider(config.search_models, &registry).context("--search-models")?;
    if registry.is_empty() {
        tracing::warn!(models_dir = %config.models_dir.display(), "no models found; run `ocular models fetch`");
    }
    let addr = config.listen_addr();
    let preload = config.preload;
    let state = AppState::new(config, registry, store);
    // Search indexes stream in from the store in the background; searches answer 503
    // `index_loading` meanwhile and `/health` answers throughout.
    ocular_server::search::spawn_index_load(&state);
    // Writes by other processes on the same SQLite file (`ocular import` beside this server)
    // reach the indexes within a second; PostgreSQL needs nothing (searched in the database).
    if let Some(catalog) = state.catalog.clone() {
        tokio::spawn(ocular_search::follow::follow(catalog));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "listening");
    if preload {
        let registry = state.registry.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let errors = registry.preload_all().await;
            let rss = ocular_app::memory::usage().rss_bytes.unwrap_or(0);
            if errors.is_empty() {
                tracing::info!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    rss_bytes = rss,
                    "models preloaded; ready"
                );
            } else {
                // Never fatal: failed models retry with back-off on later requests.
                tracing::warn!(failed = errors.len(), rss_bytes = rss, "some models failed to preload");
            }
        });
    }
    tokio::spawn(ocular_server::retention::run(state.clone()));
    if state.config.model_idle_unload_s > 0 {
        let (registry, idle) = (state.registry.clone(), Duration::from_secs(state.config.model_idle_unload_s));
        tokio::spawn(async move {
            // Checked a few times per idle period, so a model goes at most ~25 % late.
            let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)));
            loop {
                tick.tick().await;
                let unloaded = registry.unload_idle(idle);
                if !unloaded.is_empty() {
                    let rss = ocular_app::memory::usage().rss_bytes.unwrap_or(0);
                    tracing::info!(models = ?unloaded, rss_bytes = rss, "idle models unloaded");
                }
            }
        });
    }
    ocular_server::serve(state, listener).await.context("serving HTTP")
}
