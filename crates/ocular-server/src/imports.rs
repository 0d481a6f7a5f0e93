//! Live catalog sync over HTTP (issue 20): `POST /api/v1/imports` takes a catalog file as it
//! would go to `ocular import` and answers `202` with a job; `GET /api/v1/imports/{id}` says
//! how the job goes.
//!
//! - **Streamed upload.** The body is written to a spool file under the data directory as it
//!   arrives, hashed on the way, and never held in memory (one chunk at a time). It is bounded
//!   by `OCULAR_MAX_IMPORT_BYTES`: a larger `Content-Length` is `413` before a byte is read, and
//!   a body that grows past it is `413` with the spool file deleted. This route is therefore
//!   exempt from `OCULAR_MAX_BODY_BYTES` and from the in-flight body budget (`crate::limits`),
//!   which bound bodies held in memory.
//! - **The CLI's code.** The job is `ocular_search::import::{begin_import, run_import}`, the two
//!   halves of `import_file`: the same formats, the same bookkeeping, the same resumption. The
//!   job id is the store's import job, begun before the answer, so a file that is no catalog at
//!   all (not UTF-8, a quote never closed) is `422 invalid_catalog` at once. Posting a file whose
//!   job did not finish (the server stopped, or crashed) resumes that job; posting a file that
//!   is being imported right now answers that job.
//! - **Bounded.** Each batch of records is admitted like a request (`Admission`, reserving its
//!   estimated memory), so an import slows down under load instead of pushing searches into
//!   `503`. At most `OCULAR_MAX_IMPORT_JOBS` jobs run at once; one more is refused with `503
//!   import_busy` and `Retry-After` before its body is read (no queue: a client that syncs on a
//!   schedule retries, and nothing piles up on disk). `queued` is a job waiting for its first
//!   admission.
//! - **Photos by URL only.** A photo path in an uploaded catalog would read the server's own
//!   files; such a record fails with its line, photo URLs go through the SSRF-guarded fetcher.
//!
//! Job state is in [`crate::import_jobs`].

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use ocular_search::import::{Format, ImportError, ImportOptions};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, Code};
use crate::extract::{ApiPath, ApiQuery};
use crate::import_jobs::{ImportJobView, JobStart};
use crate::products::WriteAccess;
use crate::search::require_catalog;
use crate::state::AppState;

/// The route, also named by `crate::limits` (exempt from the in-memory body bounds).
pub const PATH: &str = "/api/v1/imports";

pub fn router() -> Router<AppState> {
    // The literal path (not `PATH`): the OpenAPI test reads routes from the source.
    Router::new().route("/api/v1/imports", post(create)).route("/api/v1/imports/{id}", get(show))
}

/// `?format=` of `POST /api/v1/imports`.
#[derive(Debug, Deserialize)]
struct ImportQuery {
    format: Option<String>,
}

/// The format named by `?format=`, else by the Content-Type.
fn format(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(f) = query {
        return Format::resolve(Some(f), std::path::Path::new(""))
            .map_err(|e| ApiError::bad_request(Code::InvalidQuery, e));
    }
    let given = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = given.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" | "application/jsonlines" => {
            Ok(Format::Jsonl)
        }
        "text/csv" => Ok(Format::Csv),
        "application/json" => Ok(Format::Mongo),
        _ => Err(ApiError::UnsupportedContentType {
            expected: "application/x-ndjson, text/csv or application/json (or ?format=jsonl|csv|mongo)",
            given: given.chars().take(100).collect(),
        }),
    }
}

/// `POST /api/v1/imports`.
async fn create(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let catalog = require_catalog(&state)?;
    let format = format(query.format.as_deref(), &headers)?;
    let max = state.config.max_import_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge { max: usize::try_from(max).unwrap_or(usize::MAX) });
    }
    // A job slot before the body is read: a refused client has sent nothing yet.
    let slot = state.imports.try_slot()?;
    let spool = state.imports.spool_path();
    let sha256 = match spool_body(body, &spool, max).await {
        Ok(sha) => sha,
        Err(e) => {
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(e);
        }
    };
    let options = ImportOptions { format, batch_size: state.config.max_batch_size.clamp(1, 32), shared: false };
    let opened = {
        let (catalog, spool, options) = (catalog.clone(), spool.clone(), options.clone());
        tokio::task::spawn_blocking(move || ocular_search::import::begin_import(&catalog, &spool, &options))
            .await
            .map_err(ApiError::internal)?
    };
    let job = match opened {
        Ok(job) => job,
        Err(e) => {
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(match e {
                ImportError::Format { reason, .. } => ApiError::coded(Code::InvalidCatalog, reason),
                ImportError::Store(e) => ApiError::from(e),
                other => ApiError::internal(other),
            });
        }
    };
    tracing::info!(import.id = %job.id, import.sha256 = %sha256, import.records = job.total_lines, "import received");
    let id = job.id.clone();
    match state.imports.start(JobStart { state: state.clone(), catalog, job, spool: spool.clone(), options, slot }) {
        Ok(()) => {}
        // The same bytes are being imported right now: that job is the answer.
        Err(running) => {
            let _ = tokio::fs::remove_file(&spool).await;
            tracing::info!(import.id = %running, "the same file is being imported; answering its job");
        }
    }
    let view = state.imports.view(&state, &id).await?;
    let location = format!("{PATH}/{id}");
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
}

/// Writes the body to `path` as it arrives, hashing it; `413` past `max` bytes.
async fn spool_body(mut body: Body, path: &std::path::Path, max: u64) -> Result<String, ApiError> {
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(Code::InvalidBody, format!("the body cannot be read: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        received += chunk.len() as u64;
        if received > max {
            return Err(ApiError::PayloadTooLarge { max: usize::try_from(max).unwrap_or(usize::MAX) });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// `GET /api/v1/imports/{id}`.
async fn show(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImportJobView>, ApiError> {
    Ok(Json(state.imports.view(&state, &id).await?))
}
