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
use serde::{Deserialize, Serialize};
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

/// The body of `/health` and `/health/ready`; the verbose fields only with `verbose=1` and
/// internals visible.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` (the process answers).
    status: &'static str,
    ready: bool,
    /// Every configured model is loaded.
    model_loaded: bool,
    message: &'static str,
    // Absent, not null, without `verbose`: the schema names the type, whose fields are each
    // optional (all or none are there).
    #[serde(flatten)]
    #[schema(value_type = HealthDetails)]
    details: Option<HealthDetails>,
}

/// What `verbose=1` adds: internals for operators. Every field is there with `verbose`, none
/// without it, hence none is `required`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthDetails {
    #[schema(required = false)]
    models: Vec<ocular_models::ModelStatus>,
    /// int8 graphs configured but not served because they failed their self-check here.
    #[schema(required = false)]
    precision_fallbacks: Vec<ocular_models::registry::PrecisionFallback>,
    #[schema(required = false)]
    precision_warnings: Vec<String>,
    #[schema(required = false)]
    memory: memory::MemoryUsage,
    /// Admission's view: the limit and where it came from (config, cgroup, none), what running
    /// requests have reserved, RSS now, and the baseline requests are admitted against.
    #[schema(required = false)]
    memory_budget: ocular_models::budget::BudgetStatus,
    #[schema(required = false)]
    uptime_s: u64,
    #[schema(required = false)]
    version: &'static str,
    #[schema(required = false)]
    preload: bool,
    /// 0: never; models unloaded after that many idle seconds show `unloaded`.
    #[schema(required = false)]
    model_idle_unload_s: u64,
    #[schema(required = false)]
    storage: StorageHealth,
    #[schema(required = false)]
    admission: AdmissionHealth,
    /// Per space: model, state (loading, ready, reindex_required …), vectors and memory;
    /// `null` when search is off.
    #[schema(required = false)]
    search: Option<Vec<ocular_search::SpaceStatus>>,
    #[schema(required = false)]
    search_models: SearchModelsHealth,
}

/// The store behind the server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StorageHealth {
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// `null` when the database did not answer within [`STORAGE_TIMEOUT`].
    schema_version: Option<u32>,
}

/// Requests running or queued, and the limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdmissionHealth {
    in_flight: usize,
    max_concurrency: usize,
    max_queue: usize,
}

/// The search-model choice (the model of each space and its state are in `search`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchModelsHealth {
    /// `default` or `clip`.
    configured: &'static str,
    enabled: bool,
    /// Spaces no installed model fills.
    unfilled_spaces: Vec<&'static str>,
    /// Some space waits for `ocular reindex`.
    reindex_required: bool,
    zero_shot_labels: bool,
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
    let details = if verbose { Some(details(state).await) } else { None };
    let health = Health { status: "ok", ready, model_loaded, message, details };
    // Through a `Value`, whose maps sort their keys: the bytes stay those clients have always
    // read (every object's keys in alphabetical order), whatever the fields' order above.
    let v = serde_json::to_value(&health).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the health body did not serialize");
        json!({ "status": "ok", "ready": ready, "model_loaded": model_loaded, "message": message })
    });
    (ready, v)
}

async fn details(state: &AppState) -> HealthDetails {
    let (max_concurrency, max_queue) = state.admission.capacity();
    let schema = tokio::time::timeout(STORAGE_TIMEOUT, state.db(|s| s.schema_version())).await;
    HealthDetails {
        models: state.registry.statuses(),
        precision_fallbacks: state.registry.fallbacks.clone(),
        precision_warnings: state.registry.warnings.clone(),
        memory: memory::usage(),
        memory_budget: state.admission.memory().status(),
        uptime_s: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
        preload: state.config.preload,
        model_idle_unload_s: state.config.model_idle_unload_s,
        storage: StorageHealth { backend: state.store.backend(), schema_version: schema.ok().and_then(Result::ok) },
        admission: AdmissionHealth { in_flight: state.admission.in_flight(), max_concurrency, max_queue },
        search: state.catalog.as_ref().map(|c| c.status()),
        search_models: search_models(state),
    }
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

// Fields in alphabetical order: the bytes stay those of the `json!` map (sorted keys) this
// route answered before it was typed.

/// `GET /api/v1/health`: the body the original search service's clients expect, always the same.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LegacyHealth {
    /// Always `API is running`.
    message: &'static str,
    /// Always `healthy`.
    status: &'static str,
}

/// `GET /api/v1/health`.
pub async fn legacy() -> Json<LegacyHealth> {
    Json(LegacyHealth { message: "API is running", status: "healthy" })
}

/// `/health?verbose=1`'s `search_models`: the choice, the spaces no installed model fills,
/// and whether any space waits for `ocular reindex`.
fn search_models(state: &AppState) -> SearchModelsHealth {
    let catalog = state.catalog.as_ref();
    let models = catalog.map(|c| c.models()).unwrap_or_default();
    let unfilled_spaces = ocular_search::embed::SPACES
        .into_iter()
        .filter(|s| ocular_search::embed::model_of(&models, s).is_none())
        .collect();
    let clip = state.config.search_models == ocular_app::search_models::SearchModels::Clip;
    SearchModelsHealth {
        configured: state.config.search_models.as_str(),
        enabled: catalog.is_some(),
        unfilled_spaces,
        reindex_required: catalog.is_some_and(|c| c.reindex_required()),
        zero_shot_labels: clip && state.registry.clip_text.is_some(),
    }
}
