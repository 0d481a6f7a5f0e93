//! The HTTP layer: axum routes, middleware (limits, deadlines, metrics) and start-up.
//!
//! Handlers translate requests into calls on models and storage and results into responses;
//! they hold no model or storage logic themselves.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod analyze;
pub mod bulk;
pub mod code;
pub mod convert;
pub mod cors;
pub mod embed;
pub mod error;
pub mod extract;
pub mod form;
pub mod health;
pub mod import_jobs;
pub mod imports;
pub mod json;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod pending;
pub mod photos;
pub mod products;
pub mod reload;
pub mod retention;
pub mod routes;
pub mod search;
pub mod skin_card;
pub mod state;
pub mod trace;
pub mod web;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use error::{ApiError, Code};
// Composition lives in `ocular-app`; its modules stay reachable under their old paths so code
// written against `ocular_server::config` (and `crate::memory` here) keeps compiling.
pub use ocular_app::{Config, config, memory, search_models, secrets};
pub use state::AppState;

/// Builds the application router.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let cors = cors::layer(&state.config.cors_origins);
    metrics::handle();
    let app = Router::new()
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/api/v1/health", get(health::legacy))
        .route("/metrics", get(metrics::render))
        .merge(routes::router())
        .merge(openapi::router())
        .merge(analyze::router())
        .merge(models::router())
        .merge(skin_card::router())
        .merge(reload::router())
        .merge(products::router())
        .merge(bulk::router())
        .merge(imports::router())
        .merge(search::router())
        .merge(embed::router())
        .merge(web::router())
        .fallback(no_route)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), limit_errors))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), limits::bound_bodies))
        .layer(middleware::from_fn(metrics::track))
        .with_state(state);
    // Outermost but one, so a preflight is answered before routing; invalid origins were
    // refused at start-up (`Config::validate`), and are never half-applied here.
    let app = match cors {
        Ok(Some(layer)) => app.layer(layer),
        Ok(None) => app,
        Err(e) => {
            tracing::error!(error = %e, "invalid OCULAR_CORS_ORIGINS; no CORS headers are sent");
            app
        }
    };
    // Outermost: everything a request logs, its error line included, carries its route and id.
    app.layer(middleware::from_fn(trace::span))
}

async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(req.uri().path().chars().take(200).collect())
}

/// Bounds every request's total time; the client gets a clear 503 instead of a hung socket.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.request_timeout();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout(limit.as_secs()).into_response(),
    }
}

/// axum's body-limit rejection is plain text; give it the JSON envelope and a stable code.
/// The limit is `OCULAR_MAX_BODY_BYTES`, the only one axum enforces (`DefaultBodyLimit`).
async fn limit_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp.headers().get(axum::http::header::CONTENT_TYPE).is_none_or(|v| v != "application/json")
    {
        return ApiError::PayloadTooLarge { max: state.config.max_body_bytes }.into_response();
    }
    resp
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests; SIGHUP reloads replaced
/// models ([`reload`]).
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    reload::reload_on_hangup(state.registry.clone());
    serve_until(state, listener, shutdown_signal()).await
}

/// Serves until `shutdown` completes (tests stop a real server with this), with the
/// connection deadlines of [`listen`]. Returns once the connections in flight have finished
/// and the analysis images still being drawn after their answer ([`pending`]) are stored.
pub async fn serve_until(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = listen::ConnectionLimits {
        header_timeout: state.config.header_timeout(),
        max_connections: state.config.max_connections,
    };
    let renders = state.renders.clone();
    // A render runs inside its request's admission bounds and takes tens of milliseconds, so
    // the request deadline is a generous bound; past it, shutdown goes on rather than hang on
    // a stuck render (a container runtime would kill the process anyway).
    let limit = state.config.request_timeout();
    listen::serve_until(router(state), listener, limits, shutdown).await?;
    // Answered analyses whose photo and overlay are still being drawn: the client holds their
    // ids, so exiting now would lose their images for good.
    let pending = renders.in_flight();
    if pending > 0 {
        tracing::info!(pending, "waiting for analysis images still being drawn");
        let lost = renders.drain(limit).await;
        if lost > 0 {
            tracing::warn!(lost, limit_s = limit.as_secs(), "shutting down with analysis images not drawn");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; draining requests");
    // Give load balancers a moment to notice the closed listener before in-flight work ends.
    tokio::time::sleep(Duration::from_millis(50)).await;
}
