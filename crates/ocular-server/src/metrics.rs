//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process (installing a second is an error in `metrics`), shared by every
//! router built in that process, which also keeps in-process HTTP tests independent.
//! Request latency is recorded by route template (`/api/v1/products/{id}`, not the raw path)
//! so label cardinality stays bounded whatever strangers request.
//!
//! Every name is in [`names`]: an `ocular_` namespace, the base unit in the name (`_seconds`,
//! `_bytes`), `_total` on counters — Prometheus's naming conventions
//! (<https://prometheus.io/docs/practices/naming/>). Each gets `# HELP` text in `describe`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::memory;
use crate::state::AppState;

/// The metric names this process exports (README, *HTTP*; docs/DEPLOY.md, *Memory*).
pub mod names {
    /// Counter: requests answered, by `route` template, `method` and `status`.
    pub const HTTP_REQUESTS_TOTAL: &str = "ocular_http_requests_total";
    /// Histogram: request latency by `route` template.
    pub const HTTP_REQUEST_DURATION_SECONDS: &str = "ocular_http_request_duration_seconds";
    /// Histogram: one model call's latency, by `model`.
    pub const MODEL_INFERENCE_DURATION_SECONDS: &str = "ocular_model_inference_duration_seconds";
    /// Gauge: 0 not loaded, 1 loading, 2 ready, 3 failed, 4 unloaded after being idle, by `model`.
    pub const MODEL_STATE: &str = "ocular_model_state";
    /// Gauge: the model's weight files, by `model`.
    pub const MODEL_WEIGHT_BYTES: &str = "ocular_model_weight_bytes";
    /// Gauge: resident set size of the process.
    pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "ocular_process_resident_memory_bytes";
    /// Gauge: inferences running now.
    pub const INFERENCE_IN_FLIGHT: &str = "ocular_inference_in_flight";
    /// Gauge: the memory budget's limit (absent without one).
    pub const MEMORY_BUDGET_BYTES: &str = "ocular_memory_budget_bytes";
    /// Gauge: memory reserved by admitted requests.
    pub const MEMORY_BUDGET_RESERVED_BYTES: &str = "ocular_memory_budget_reserved_bytes";
    /// Gauge: the idle baseline the budget measures against.
    pub const MEMORY_BUDGET_BASELINE_BYTES: &str = "ocular_memory_budget_baseline_bytes";
    /// Gauge: the cgroup's memory usage (absent outside a cgroup limit).
    pub const CGROUP_MEMORY_USAGE_BYTES: &str = "ocular_cgroup_memory_usage_bytes";
    /// Gauge: 0 unloaded, 1 loading, 2 ready, 3 reindex required, 4 failed, by `space`.
    pub const SEARCH_INDEX_STATE: &str = "ocular_search_index_state";
    /// Gauge: vectors held in memory, by `space`.
    pub const SEARCH_INDEX_VECTORS: &str = "ocular_search_index_vectors";
    /// Gauge: the in-memory index's size, by `space`.
    pub const SEARCH_INDEX_BYTES: &str = "ocular_search_index_bytes";
    /// Histogram: one search's total time, by `kind` (`image`, `url`, `text`).
    pub const SEARCH_DURATION_SECONDS: &str = "ocular_search_duration_seconds";
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once; `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// `# HELP` text and units for every metric in [`names`].
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(HTTP_REQUESTS_TOTAL, Unit::Count, "HTTP requests answered, by route template, method and status");
    describe_histogram!(HTTP_REQUEST_DURATION_SECONDS, Unit::Seconds, "HTTP request latency by route template");
    describe_histogram!(MODEL_INFERENCE_DURATION_SECONDS, Unit::Seconds, "Model call latency by model");
    describe_gauge!(
        MODEL_STATE,
        "Model state: 0 not loaded, 1 loading, 2 ready, 3 failed, 4 unloaded after being idle"
    );
    describe_gauge!(MODEL_WEIGHT_BYTES, Unit::Bytes, "Size of the model's weight files");
    describe_gauge!(PROCESS_RESIDENT_MEMORY_BYTES, Unit::Bytes, "Resident set size of the process");
    describe_gauge!(INFERENCE_IN_FLIGHT, Unit::Count, "Inferences running now");
    describe_gauge!(MEMORY_BUDGET_BYTES, Unit::Bytes, "Memory the process may use (OCULAR_MEMORY_BUDGET)");
    describe_gauge!(MEMORY_BUDGET_RESERVED_BYTES, Unit::Bytes, "Memory reserved by admitted requests");
    describe_gauge!(MEMORY_BUDGET_BASELINE_BYTES, Unit::Bytes, "Idle memory the budget measures against");
    describe_gauge!(CGROUP_MEMORY_USAGE_BYTES, Unit::Bytes, "Memory usage of the process's cgroup");
    describe_gauge!(SEARCH_INDEX_STATE, "Index state: 0 unloaded, 1 loading, 2 ready, 3 reindex required, 4 failed");
    describe_gauge!(SEARCH_INDEX_VECTORS, Unit::Count, "Vectors held in the in-memory index");
    describe_gauge!(SEARCH_INDEX_BYTES, Unit::Bytes, "Size of the in-memory index");
    describe_histogram!(SEARCH_DURATION_SECONDS, Unit::Seconds, "Search latency by kind");
}

/// Middleware recording [`names::HTTP_REQUESTS_TOTAL`] and
/// [`names::HTTP_REQUEST_DURATION_SECONDS`].
pub async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS_TOTAL, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(names::HTTP_REQUEST_DURATION_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}

/// Records one model inference's latency.
pub fn record_inference(model: &str, seconds: f64) {
    metrics::histogram!(names::MODEL_INFERENCE_DURATION_SECONDS, "model" => model.to_string()).record(seconds);
}

/// `GET /metrics`: Prometheus text format. Internals: on a public address only with the API
/// key (`Authorization: Bearer KEY`, which Prometheus sends with `authorization`).
pub async fn render(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !crate::health::internals_visible(&state, &headers) {
        return crate::error::ApiError::AdminOnly { key_configured: state.config.api_key.is_some() }.into_response();
    }
    let Some(handle) = handle() else {
        return String::from("# metrics recorder unavailable\n").into_response();
    };
    for s in state.registry.statuses() {
        let state_value = match s.state {
            ocular_models::ModelState::NotLoaded => 0.0,
            ocular_models::ModelState::Loading => 1.0,
            ocular_models::ModelState::Ready => 2.0,
            ocular_models::ModelState::Failed => 3.0,
            ocular_models::ModelState::Unloaded => 4.0,
        };
        metrics::gauge!(names::MODEL_STATE, "model" => s.name.clone()).set(state_value);
        metrics::gauge!(names::MODEL_WEIGHT_BYTES, "model" => s.name).set(s.bytes as f64);
    }
    let mem = memory::usage();
    if let Some(rss) = mem.rss_bytes {
        metrics::gauge!(names::PROCESS_RESIDENT_MEMORY_BYTES).set(rss as f64);
    }
    metrics::gauge!(names::INFERENCE_IN_FLIGHT).set(state.admission.in_flight() as f64);
    let budget = state.admission.memory().status();
    if let Some(limit) = budget.limit_bytes {
        metrics::gauge!(names::MEMORY_BUDGET_BYTES).set(limit as f64);
    }
    metrics::gauge!(names::MEMORY_BUDGET_RESERVED_BYTES).set(budget.reserved_bytes as f64);
    metrics::gauge!(names::MEMORY_BUDGET_BASELINE_BYTES).set(budget.baseline_bytes as f64);
    if let Some(usage) = mem.cgroup_usage_bytes {
        metrics::gauge!(names::CGROUP_MEMORY_USAGE_BYTES).set(usage as f64);
    }
    crate::search::record_gauges(&state);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
