//! API routes beyond health, grouped by job.

use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ocular_models::ModelError;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::json::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/fixture", post(fixture))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct FixtureRequest {
    input: Vec<f32>,
}

/// The fixture model's output.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FixtureOutput {
    output: Vec<f32>,
}

/// `POST /api/v1/fixture`: runs the test fixture model when it is configured. It exists so
/// the whole path (admission, lazy loading, ONNX Runtime, errors) can be exercised over HTTP
/// with a model small enough for any test; production model folders never contain it.
async fn fixture(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<FixtureRequest>,
) -> Result<Json<FixtureOutput>, ApiError> {
    let slot = state
        .registry
        .fixture
        .clone()
        .ok_or_else(|| ApiError::ModelUnavailable(ModelError::NotConfigured("fixture".into())))?;
    let model = slot.get().await?;
    let started = Instant::now();
    let output = state
        .infer(move || model.run(&req.input).map_err(|e| ApiError::bad_request(Code::InvalidInput, e.to_string())))
        .await?;
    crate::metrics::record_inference("fixture", started.elapsed().as_secs_f64());
    Ok(Json(FixtureOutput { output }))
}
