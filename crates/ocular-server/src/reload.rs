//! Replacing served models without a restart: `POST /api/v1/models:reload` (every model folder),
//! `POST /api/v1/models/{name}/reload` (one model), both with the API key, and SIGHUP (every
//! folder, the way daemons reread their configuration).
//!
//! The work is `ocular_models::reload`: each changed model loads beside the one it replaces,
//! inside the load gate and memory budget, and is swapped in when it works; requests already
//! running finish on the old one. An answer lists what each model folder got (`unchanged`,
//! `replaced`, `added`, `skipped` with the reason); if any load failed the answer is the error
//! envelope, `409 model_reload_failed`, naming each failure, and the models served before keep
//! serving.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ocular_models::reload::{Outcome, Reloaded};
use serde::Serialize;

use crate::access::AdminAccess;
use crate::error::{ApiError, Code};
use crate::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/models:reload", post(reload_all))
        .route("/api/v1/models/{name}/reload", post(reload_one))
}

/// A reload's answer: one line per model folder looked at.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    pub models: Vec<Reloaded>,
}

async fn reload_all(_admin: AdminAccess, State(state): State<AppState>) -> Result<Json<ReloadReport>, ApiError> {
    answer(state.registry.reload().await)
}

async fn reload_one(
    _admin: AdminAccess,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ReloadReport>, ApiError> {
    match state.registry.reload_one(&name).await {
        Some(line) => answer(vec![line]),
        None => Err(ApiError::ModelUnavailable(ocular_models::ModelError::NotConfigured(name))),
    }
}

fn answer(models: Vec<Reloaded>) -> Result<Json<ReloadReport>, ApiError> {
    let failed: Vec<String> = models
        .iter()
        .filter(|m| m.outcome == Outcome::Failed)
        .map(|m| format!("{}: {}", m.name, m.error.as_deref().unwrap_or("failed")))
        .collect();
    if failed.is_empty() {
        return Ok(Json(ReloadReport { models }));
    }
    Err(ApiError::Conflict {
        code: Code::ModelReloadFailed,
        message: format!("not reloaded, the model served before keeps serving: {}", failed.join("; ")),
    })
}

/// Reloads every model folder on each SIGHUP until the process ends; the outcome goes to the
/// log (the HTTP route answers with it).
pub fn reload_on_hangup(registry: std::sync::Arc<ocular_models::Registry>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /api/v1/models:reload");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading models");
            for line in registry.reload().await {
                tracing::info!(
                    model.name = %line.name,
                    outcome = ?line.outcome,
                    version = line.version.as_deref().unwrap_or("-"),
                    error = line.error.as_deref().unwrap_or(""),
                    "model reload"
                );
            }
        }
    });
}
