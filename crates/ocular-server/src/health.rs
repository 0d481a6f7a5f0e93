//! Liveness, readiness and the original services' health routes.
//!
//! `/health` answers 200 as long as the process lives (liveness); `/health/ready` answers 503
//! until the models the configuration requires are loaded and warmed (readiness), so a load
//! balancer never sends traffic to a replica that would answer slowly or not at all.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::memory;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    verbose: Option<String>,
}

fn body(state: &AppState, verbose: bool) -> (bool, Value) {
    let ready = state.is_ready();
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
        v["storage"] = json!({ "backend": state.store.backend(), "schema_version": state.store.schema_version().ok() });
        v["admission"] = json!({
            "in_flight": state.admission.in_flight(), "max_concurrency": max_concurrency, "max_queue": max_queue,
        });
        // Per space: model, state (loading, ready, reindex_required …), vectors and memory.
        v["search"] = json!(state.catalog.as_ref().map(|c| c.status()));
        // default or clip, spaces no installed model fills, and whether a reindex is due.
        v["search_models"] = crate::search_models::health(state);
    }
    (ready, v)
}

fn is_verbose(q: &HealthQuery) -> bool {
    q.verbose.as_deref().is_some_and(|v| matches!(v, "1" | "true" | "yes"))
}

/// `GET /health[?verbose=1]`: 200 while the process lives.
pub async fn health(State(state): State<AppState>, Query(q): Query<HealthQuery>) -> impl IntoResponse {
    Json(body(&state, is_verbose(&q)).1)
}

/// `GET /health/ready`: 200 when ready, 503 with the same body otherwise.
pub async fn ready(State(state): State<AppState>, Query(q): Query<HealthQuery>) -> impl IntoResponse {
    let (ready, v) = body(&state, is_verbose(&q));
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(v))
}

/// `GET /api/v1/health`: the body the original search service's clients expect.
pub async fn legacy() -> impl IntoResponse {
    Json(json!({ "status": "healthy", "message": "API is running" }))
}
