//! Skin-lesion analysis over HTTP: `POST /api/v1/analyze` (and `/upload` for the original
//! clients), stored analyses and their images (the model card: [`crate::skin_card`]).
//!
//! Stored analyses are private (see [`crate::access`]): creating one answers its capability
//! token, which (or the API key) every later read, download and delete needs; listing them all
//! needs the key. Their JSON and images are never cached (`no-store`), and the images are
//! served so that a browser can only ever show them as images (`nosniff`, a sandbox CSP).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ocular_models::analysis::{self, AnalyzeOptions, Analyzed};
use ocular_models::report::SkinReport;
use ocular_models::skin::{BodySite, Sex, SkinMeta, SkinModel};
use ocular_store::types::{Analysis, AnalysisImage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::access::{AdminAccess, AnalysisAccess, Opener};
use crate::error::{ApiError, Code};
use crate::extract::ApiQuery;
use crate::form;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/analyze", post(analyze))
        .route("/upload", post(analyze))
        .route("/api/v1/analyses", get(list))
        .route("/api/v1/analyses/{id}", get(show).delete(remove))
        .route("/api/v1/analyses/{id}/heatmap.jpg", get(heatmap))
        .route("/api/v1/analyses/{id}/image.jpg", get(photo))
}

#[derive(Debug, Default, Deserialize)]
struct AnalyzeQuery {
    gradcam: Option<bool>,
    force: Option<bool>,
}

fn parse_meta(form: &form::Form) -> Result<SkinMeta, ApiError> {
    let age = match form.text("age") {
        None => None,
        Some(a) => match a.parse::<f32>() {
            Ok(v) if (0.0..=120.0).contains(&v) => Some(v),
            _ => {
                return Err(ApiError::bad_request(
                    Code::InvalidAge,
                    format!("age must be a number from 0 to 120, got {a:?}"),
                ));
            }
        },
    };
    let enum_field = |name: &str, allowed: &str| -> Result<Option<Value>, ApiError> {
        match form.text(name) {
            None => Ok(None),
            Some(v) if allowed.split('|').any(|a| a == v.to_ascii_lowercase()) => {
                Ok(Some(json!(v.to_ascii_lowercase())))
            }
            Some(v) => Err(ApiError::bad_request(
                if name == "sex" { Code::InvalidSex } else { Code::InvalidLocation },
                format!("{name} must be one of {allowed}, got {v:?}"),
            )),
        }
    };
    let sex: Sex = enum_field("sex", "female|male|unknown")?
        .map(serde_json::from_value)
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let location: BodySite = enum_field("location", "arm|head-or-neck|leg-or-genital|trunk|unknown")?
        .map(serde_json::from_value)
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    Ok(SkinMeta { age, sex, location })
}

/// Takes the raw request for its multipart body (`crate::form`, whose refusals are the
/// envelope), after the query (`ApiQuery`, likewise).
async fn analyze(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AnalyzeQuery>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    // Refusals that need no photo come before reading it: no model, a full queue.
    state.registry.skin.as_ref().ok_or_else(|| not_configured("sklesion"))?;
    state.admission.check_room()?;
    let mut form = crate::form::read_form(req, &state, "image").await?;
    let meta = parse_meta(&form)?;
    let bytes = form.require_file("image")?;
    let opts =
        AnalyzeOptions { gradcam: q.gradcam.unwrap_or(state.config.enable_gradcam), force: q.force.unwrap_or(false) };
    let skin = state.registry.skin.clone().ok_or_else(|| not_configured("sklesion"))?.get().await?;
    // The object check is an extra signal: without the ImageNet model the colour check still runs.
    let objects = match &state.registry.image {
        Some(slot) => slot.get().await.ok(),
        None => None,
    };
    let limits = state.image_limits();
    let model = skin.clone();
    let cost = ocular_models::estimate::analyze(&bytes, &limits);
    // Admission as in `AppState::infer_reserving`, but the permit outlives the answer: it moves
    // with the decoded photo into the render below, so the deferred work stays inside the same
    // concurrency and memory bounds. It travels through the blocking task so that a client
    // hanging up mid-inference does not free the slot while the model still runs.
    let permit = state.admission.admit_reserving(cost).await?;
    let (measured, permit) = tokio::task::spawn_blocking(move || {
        (analysis::analyze_unrendered(&model, objects.as_deref(), &bytes, &limits, meta, opts), permit)
    })
    .await
    .map_err(ApiError::internal)?;
    let (analyzed, img) = measured?;
    let grid = analyzed.gradcam.clone();
    let mut record = to_record(&skin, meta, opts, analyzed);
    // Not drawn yet: null (pending) in the answer and in the row until the render below
    // stores its real time, rather than a 0 that reads as "took no time".
    record.timings["render"] = Value::Null;
    let timings = record.timings.clone();
    let (token, hash) = crate::access::new_token();
    record.token_sha256 = Some(hash);
    let mut body = present(&record, &Opener::Token(token.clone()));
    // Shown once: only its hash is stored. The page link carries it in the fragment, which
    // browsers never send to a server or in a Referer.
    body["token"] = json!(token);
    body["page_url"] = json!(format!("/analyses/{}#token={token}", record.id));
    let id = record.id.clone();
    // Registered before the answer leaves, so an image GET that follows it waits for the render.
    let pending = state.renders.begin(&id);
    state.db(move |s| s.insert_analysis(&record)).await?;
    let store = state.store.clone();
    // Not awaited: the answer goes now. The task ends by unregistering (waking image GETs) and
    // freeing the permit, whatever happens in between.
    tokio::task::spawn_blocking(move || {
        let (_permit, _pending) = (permit, pending);
        let started = std::time::Instant::now();
        let attached = analysis::render(img, grid.as_ref()).map_err(|e| e.to_string()).and_then(|(photo, overlay)| {
            let timings = with_render(timings, started.elapsed());
            store.attach_analysis_images(&id, &photo, overlay.as_deref(), &timings).map_err(|e| e.to_string())
        });
        match attached {
            Ok(true) => {}
            Ok(false) => tracing::debug!(analysis = %id, "analysis deleted before its images were drawn"),
            Err(error) => tracing::error!(analysis = %id, %error, "analysis images could not be drawn or stored"),
        }
    });
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// The stored timings once the images exist: `render` is the drawing and encoding of both
/// JPEGs, in milliseconds as every other stage, and `total` grows by it (so that it sums the
/// same stages as `ocular analyze`'s eager path).
fn with_render(mut timings: Value, took: std::time::Duration) -> Value {
    let render = (took.as_secs_f64() * 1e6).round() / 1e3;
    let total = timings["total"].as_f64().unwrap_or(0.0) + render;
    timings["render"] = json!(render);
    timings["total"] = json!((total * 1e3).round() / 1e3);
    timings
}

fn not_configured(name: &str) -> ApiError {
    ApiError::ModelUnavailable(ocular_models::ModelError::NotConfigured(name.into()))
}

/// What is stored: everything needed to present the analysis again later. The result is the
/// one report type the CLI prints too (`ocular_models::report`).
fn to_record(skin: &SkinModel, meta: SkinMeta, opts: AnalyzeOptions, a: Analyzed) -> Analysis {
    let result = serde_json::to_value(SkinReport::new(skin, &a)).unwrap_or(Value::Null);
    let input = json!({ "age": meta.age, "sex": meta.sex, "location": meta.location, "force": opts.force, "gradcam": opts.gradcam });
    let mut record = Analysis::new(input, result, json!(a.timings));
    // Empty when the images are drawn after the answer (`analysis::analyze_unrendered`).
    record.thumbnail_jpeg = (!a.photo_jpeg.is_empty()).then_some(a.photo_jpeg);
    record.heatmap_jpeg = a.heatmap_jpeg;
    record
}

/// The URL of one of an analysis's images; a token opener gets it with `?token=`, so an
/// `<img>` (which cannot send headers) can load it.
fn image_url(id: &str, file: &str, opener: &Opener) -> String {
    match opener {
        Opener::Admin => format!("/api/v1/analyses/{id}/{file}"),
        Opener::Token(t) => format!("/api/v1/analyses/{id}/{file}?token={t}"),
    }
}

/// The API body of a stored analysis, for whoever opened it.
fn present(a: &Analysis, opener: &Opener) -> Value {
    let mut body = a.result.clone();
    body["id"] = json!(a.id);
    body["created_at"] = json!(a.created_at.format(&time::format_description::well_known::Rfc3339).ok());
    body["input"] = a.input.clone();
    body["timings_ms"] = a.timings.clone();
    if body["heatmap"].is_object() {
        body["heatmap"]["url"] = json!(image_url(&a.id, "heatmap.jpg", opener));
    }
    body["image_url"] = json!(image_url(&a.id, "image.jpg", opener));
    body
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// `GET /api/v1/analyses`: every stored analysis, newest first — the API key only.
async fn list(
    State(state): State<AppState>,
    _: AdminAccess,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let page = state.db(move |s| s.list_analyses(q.offset, limit)).await?;
    let items = page
        .items
        .iter()
        .map(|a| {
            let p = &a.result["prediction"];
            AnalysisSummary {
                created_at: a.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                forced: a.result["forced"].clone(),
                id: a.id.clone(),
                prediction: PredictionSummary {
                    code: p["code"].clone(),
                    name: p["name"].clone(),
                    probability: p["probability"].clone(),
                },
                thumbnail_url: a.has_thumbnail.then(|| format!("/api/v1/analyses/{}/image.jpg", a.id)),
            }
        })
        .collect();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(AnalysisPage { items, next_offset: page.next_offset })))
}

// The fields of these three are in alphabetical order: the body's bytes stay those of the
// `json!` map (sorted keys) this list answered before it was typed.

/// `GET /api/v1/analyses`: a page of stored analyses, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AnalysisPage {
    items: Vec<AnalysisSummary>,
    /// The `offset` of the next page; `null` on the last one.
    next_offset: Option<usize>,
}

/// One stored analysis in the list (the whole of it: `GET /api/v1/analyses/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AnalysisSummary {
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// Analysed although the photo did not look like skin (`force`).
    #[schema(value_type = Option<bool>)]
    forced: Value,
    id: String,
    prediction: PredictionSummary,
    /// The stored photo's thumbnail; `null` when none was stored.
    thumbnail_url: Option<String>,
}

/// The top class of a stored analysis, copied from its stored report (values stay what was
/// stored, rather than being read back through today's report type).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PredictionSummary {
    #[schema(value_type = String)]
    code: Value,
    #[schema(value_type = String)]
    name: Value,
    #[schema(value_type = f64)]
    probability: Value,
}

async fn show(State(state): State<AppState>, access: AnalysisAccess) -> Result<impl IntoResponse, ApiError> {
    let AnalysisAccess { id, opener } = access;
    let key = id.clone();
    state.renders.wait(&id).await;
    let a = state.db(move |s| s.get_analysis(&key)).await?.ok_or(ApiError::AnalysisHidden(id))?;
    let mut body = present(&a, &opener);
    // Images may have been purged by the retention policy; the result itself stays.
    if a.heatmap_jpeg.is_none() && body["heatmap"].is_object() {
        body["heatmap"]["url"] = Value::Null;
    }
    if a.thumbnail_jpeg.is_none() {
        body["image_url"] = Value::Null;
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

async fn remove(State(state): State<AppState>, access: AnalysisAccess) -> Result<StatusCode, ApiError> {
    let id = access.id;
    let key = id.clone();
    match state.db(move |s| s.delete_analysis(&key)).await {
        Err(ApiError::Store(ocular_store::StoreError::NotFound(_))) => Err(ApiError::AnalysisHidden(id)),
        other => other.map(|()| StatusCode::NO_CONTENT),
    }
}

/// Headers of every stored photo and heatmap: health data, so never stored by any cache
/// (a deleted photo must not stay readable from one), never sniffed as anything but the
/// image it is, and sandboxed with no capability should a browser open it as a document.
pub const PHOTO_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_TYPE, "image/jpeg"),
    (header::CACHE_CONTROL, "private, no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CONTENT_SECURITY_POLICY, crate::products::STORED_IMAGE_CSP),
    // The URL may carry the token: never pass it on.
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Whether an analysis with missing images may be one whose images another replica is still
/// drawing (`crate::pending`): young enough, and missing only images it will have.
fn still_rendering(a: &Analysis) -> bool {
    let young = (time::OffsetDateTime::now_utc() - a.created_at) < crate::pending::RENDER_GRACE;
    let heatmap_due = a.result["heatmap"].is_object() && a.heatmap_jpeg.is_none();
    young && (a.thumbnail_jpeg.is_none() || heatmap_due)
}

async fn image(state: AppState, access: AnalysisAccess, which: AnalysisImage) -> Result<Response, ApiError> {
    let id = access.id;
    // Asked before this process's render has stored it: wait for it, never a 404 race.
    let waited = state.renders.wait(&id).await;
    let deadline = tokio::time::Instant::now() + crate::pending::RENDER_GRACE;
    loop {
        let key = id.clone();
        match state.db(move |s| s.analysis_image(&key, which)).await {
            Err(ApiError::Store(ocular_store::StoreError::NotFound(_))) => return Err(ApiError::AnalysisHidden(id)),
            Err(e) => return Err(e),
            Ok(Some(bytes)) => return Ok((PHOTO_HEADERS, bytes).into_response()),
            Ok(None) => {}
        }
        // Missing. After our own render that is final (it failed, or the analysis has none);
        // otherwise another replica may be drawing it: poll until it lands or the grace ends.
        // With an image retention of 0 hours a young analysis's images are gone for good.
        let purging_all = state.config.analysis_image_retention_hours == Some(0);
        if waited || purging_all || tokio::time::Instant::now() >= deadline {
            return Err(ApiError::NotFound(format!("image of analysis {id}")));
        }
        let key = id.clone();
        let pending = match state.db(move |s| s.get_analysis(&key)).await? {
            Some(a) => still_rendering(&a),
            None => return Err(ApiError::AnalysisHidden(id)),
        };
        if !pending {
            return Err(ApiError::NotFound(format!("image of analysis {id}")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn heatmap(State(state): State<AppState>, access: AnalysisAccess) -> Result<Response, ApiError> {
    image(state, access, AnalysisImage::Heatmap).await
}

async fn photo(State(state): State<AppState>, access: AnalysisAccess) -> Result<Response, ApiError> {
    image(state, access, AnalysisImage::Thumbnail).await
}
