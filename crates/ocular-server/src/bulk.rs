//! Bulk catalog writes over HTTP: `POST /api/v1/products:delete` removes many products by id
//! in one request.
//!
//! A shop that syncs its catalog from elsewhere deletes what it stopped selling in batches;
//! one `DELETE` per product costs a round trip, an admission and a log line each. The list is
//! bounded ([`MAX_IDS`]) like every body, so one request cannot hold the writer for long. Each
//! product is deleted through the same code as `DELETE /api/v1/products/{id}` (store, then
//! index), in its own transaction: an error part-way leaves the earlier deletions done, and
//! sending the same list again is harmless (already-deleted ids come back as `not_found`).
//!
//! Why `products:delete` (a custom method, as Google's API guidelines name them) rather than
//! `products/delete`: a product may be called `delete`, and its own URL must keep working.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ocular_search::SearchError;
use ocular_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::json::ApiJson;
use crate::products::WriteAccess;
use crate::search::{api_error, require_catalog};
use crate::state::AppState;

/// Ids one request may delete.
pub const MAX_IDS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/products:delete", post(delete_many))
}

/// `POST /api/v1/products:delete`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkDeleteRequest {
    /// 1 to 1000 product ids; duplicates count once.
    ids: Vec<String>,
}

/// What happened to each id, in the order given.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BulkDeleteResponse {
    deleted: Vec<String>,
    /// Ids with no product (never created, or deleted before).
    not_found: Vec<String>,
}

async fn delete_many(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiJson(body): ApiJson<BulkDeleteRequest>,
) -> Result<Json<BulkDeleteResponse>, ApiError> {
    if body.ids.is_empty() || body.ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("ids must list 1 to {MAX_IDS} products, got {}", body.ids.len()),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(body.ids.len());
    for id in body.ids {
        // An id no product can have (too long, odd characters) simply matches none.
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let catalog = require_catalog(&state)?;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut out = BulkDeleteResponse { deleted: Vec::new(), not_found: Vec::new() };
        for id in ids {
            match catalog.delete(&id) {
                Ok(()) => out.deleted.push(id),
                Err(SearchError::Store(StoreError::NotFound(_))) => out.not_found.push(id),
                Err(e) => return Err(api_error(e)),
            }
        }
        Ok(out)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(outcome))
}
