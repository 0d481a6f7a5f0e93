//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process (installing a second is an error in `metrics`), shared by every
//! router built in that process, which also keeps in-process HTTP tests independent.
//! Request latency is recorded by route template (`/api/v1/products/{id}`, not the raw path)
//! so label cardinality stays bounded whatever strangers request.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::memory;
use crate::state::AppState;

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
            Some(handle)
        })
        .as_ref()
}

/// Middleware recording `http_requests_total` and `http_request_duration_seconds`.
pub async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    resp
}

/// Records one model inference's latency.
pub fn record_inference(model: &str, seconds: f64) {
    metrics::histogram!("model_inference_duration_seconds", "model" => model.to_string()).record(seconds);
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
        };
        metrics::gauge!("model_state", "model" => s.name.clone()).set(state_value);
        metrics::gauge!("model_weight_bytes", "model" => s.name).set(s.bytes as f64);
    }
    let mem = memory::usage();
    if let Some(rss) = mem.rss_bytes {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    metrics::gauge!("inference_in_flight").set(state.admission.in_flight() as f64);
    let budget = state.admission.memory().status();
    if let Some(limit) = budget.limit_bytes {
        metrics::gauge!("memory_budget_bytes").set(limit as f64);
    }
    metrics::gauge!("memory_budget_reserved_bytes").set(budget.reserved_bytes as f64);
    metrics::gauge!("memory_budget_baseline_bytes").set(budget.baseline_bytes as f64);
    if let Some(usage) = mem.cgroup_usage_bytes {
        metrics::gauge!("cgroup_memory_usage_bytes").set(usage as f64);
    }
    crate::search::record_gauges(&state);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
