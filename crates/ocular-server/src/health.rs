//! Liveness, readiness and the original services' health routes.
//!
//! `/health` answers 200 as long as the process lives (liveness); `/health/ready` answers 503
//! until the models the configuration requires are loaded and warmed (readiness), so a load
//! balancer never sends traffic to a replica that would answer slowly or not at all.
//!
//! The database is asked off the async runtime and for at most [`STORAGE_TIMEOUT`]: a probe
//! waiting on SQLite's writer lock or a full PostgreSQL pool (10 s) used to do it on a tokio
//! worker, and two probes froze both workers of a 2-core machine. A store that does not answer
//! in time makes the replica not ready, which is what it is.
//!
//! Verbose details (models, memory, admission, storage, search) are internals: on a public
//! address ([`crate::Config::is_public`]) they need the API key, and strangers get the short
//! body the original clients read.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::extract::ApiQuery;
use crate::memory;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    verbose: Option<String>,
}

/// Longest a health probe waits for the database.
pub const STORAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the request may see internals: always on a loopback address, with the API key
/// otherwise.
pub fn internals_visible(state: &AppState, headers: &HeaderMap) -> bool {
    !state.config.is_public() || crate::access::is_admin(state, headers)
}

async fn body(state: &AppState, verbose: bool) -> (bool, Value) {
    let ready = state.is_ready().await;
    let model_loaded = !state.registry.is_empty() && state.registry.all_ready();
    let message = match (ready, model_loaded) {
        (true, true) => "all models loaded",
        (true, false) if state.registry.is_empty() => "no models configured",
        (true, false) => "models load on first use",
        (false, _) => "starting: models are loading",
    };
    let mut v = json!({ "status": "ok", "ready": ready, "model_loaded": model_loaded, "message": message });
    if verbose {
        let (max_concurrency, max_queue) = state.admission.capacity();
        v["models"] = json!(state.registry.statuses());
        // int8 graphs configured but not served because they failed their self-check here.
        v["precision_fallbacks"] = json!(state.registry.fallbacks);
        v["precision_warnings"] = json!(state.registry.warnings);
        v["memory"] = json!(memory::usage());
        // Admission's view: the limit and where it came from (config, cgroup, none), what running
        // requests have reserved, RSS now, and the baseline requests are admitted against.
        v["memory_budget"] = json!(state.admission.memory().status());
        v["uptime_s"] = json!(state.started.elapsed().as_secs());
        v["version"] = json!(env!("CARGO_PKG_VERSION"));
        v["preload"] = json!(state.config.preload);
        // 0: never; models unloaded after that many idle seconds show `unloaded`.
        v["model_idle_unload_s"] = json!(state.config.model_idle_unload_s);
        let schema = tokio::time::timeout(STORAGE_TIMEOUT, state.db(|s| s.schema_version())).await;
        v["storage"] = json!({ "backend": state.store.backend(), "schema_version": schema.ok().and_then(Result::ok) });
        v["admission"] = json!({
            "in_flight": state.admission.in_flight(), "max_concurrency": max_concurrency, "max_queue": max_queue,
        });
        // Per space: model, state (loading, ready, reindex_required …), vectors and memory.
        v["search"] = json!(state.catalog.as_ref().map(|c| c.status()));
        // default or clip, spaces no installed model fills, and whether a reindex is due.
        v["search_models"] = search_models(state);
    }
    (ready, v)
}

/// Verbose when asked for and allowed; a stranger's `verbose=1` on a public address gets the
/// short body (the original clients ask for it and read only the short fields).
fn is_verbose(q: &HealthQuery, state: &AppState, headers: &HeaderMap) -> bool {
    q.verbose.as_deref().is_some_and(|v| matches!(v, "1" | "true" | "yes")) && internals_visible(state, headers)
}

/// `GET /health[?verbose=1]`: 200 while the process lives.
pub async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> impl IntoResponse {
    Json(body(&state, is_verbose(&q, &state, &headers)).await.1)
}

/// `GET /health/ready`: 200 when ready, 503 with the same body otherwise.
pub async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> impl IntoResponse {
    let (ready, v) = body(&state, is_verbose(&q, &state, &headers)).await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(v))
}

/// `GET /api/v1/health`: the body the original search service's clients expect.
pub async fn legacy() -> impl IntoResponse {
    Json(json!({ "status": "healthy", "message": "API is running" }))
}

/// `/health?verbose=1`'s `search_models`: the choice, the spaces no installed model fills,
/// and whether any space waits for `ocular reindex` (the model of each space and its state are
/// in `search`).
fn search_models(state: &AppState) -> Value {
    let catalog = state.catalog.as_ref();
    let models = catalog.map(|c| c.models()).unwrap_or_default();
    let unfilled: Vec<&str> = ocular_search::embed::SPACES
        .into_iter()
        .filter(|s| ocular_search::embed::model_of(&models, s).is_none())
        .collect();
    let clip = state.config.search_models == ocular_app::search_models::SearchModels::Clip;
    json!({
        "configured": state.config.search_models.as_str(),
        "enabled": catalog.is_some(),
        "unfilled_spaces": unfilled,
        "reindex_required": catalog.is_some_and(|c| c.reindex_required()),
        "zero_shot_labels": clip && state.registry.clip_text.is_some(),
    })
}
