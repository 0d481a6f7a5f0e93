//! Product search over HTTP: by uploaded photo, by photo URL (the original service's request,
//! `{"image_url": "...", "top_k": 5}`), and by text (hybrid; see `ocular_search::search`).
//!
//! Handlers only translate: options from the form or JSON body (defaults from `TOP_K` and
//! `SIMILARITY_THRESHOLD`), the photo from the upload or from `ocular-fetch`, then one call to
//! the [`Catalog`] on a blocking thread after admission. This module also loads the search
//! indexes at start-up ([`spawn_index_load`]; the catalog and fetcher are built by
//! `ocular_app::catalog`) and keeps [`api_error`] for handlers (the mapping itself is
//! `crate::convert`'s).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use ocular_search::{Catalog, SearchError, SearchOptions, SearchResults};
use ocular_store::{AttributeCondition, ProductFilter};
use serde::Deserialize;

use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::extract::{ApiPath, ApiQuery};
use crate::form::{Form, parse_field, read_form};
use crate::json::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/search", post(by_image))
        .route("/api/v1/search/url", post(by_url))
        .route("/api/v1/search/text", post(by_text))
        .route("/api/v1/products/{id}/similar", get(similar))
}

// The catalog and fetcher are built by `ocular_app::catalog`, the same way for every command.
pub use ocular_app::catalog::{AUTO_COMPACT_FROM, IndexChoice, catalog, fetcher, index_precision};

/// Marks the indexes as loading and loads them on a blocking thread, so `/health` answers
/// meanwhile and searches get `503 index_loading` rather than partial results. In preload
/// mode the embedders are then warmed (ConSE's class prompts), so the first product write
/// does not pay for them.
pub fn spawn_index_load(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let catalog = state.catalog.clone()?;
    if let Err(e) = catalog.begin_loading() {
        tracing::error!(error = %ocular_models::registry::error_chain(&e), "search indexes cannot be created");
        return None;
    }
    let preload = state.config.preload;
    Some(tokio::spawn(async move {
        let loading = catalog.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || loading.load()).await {
            tracing::error!(error = %e, "search index loading panicked");
        }
        if !preload {
            return;
        }
        let warmed = match catalog.embedders().await {
            Ok(embedders) => tokio::task::spawn_blocking(move || embedders.warm_up().map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = warmed {
            tracing::warn!(error = %e, "search embedders not warmed; the first write will be slower");
        }
    }))
}

/// Per-space gauges for `/metrics`: vectors held, index bytes, and state
/// (0 unloaded, 1 loading, 2 ready, 3 reindex required, 4 failed).
pub fn record_gauges(state: &AppState) {
    let Some(catalog) = &state.catalog else { return };
    for s in catalog.status() {
        use ocular_search::SpaceState as S;
        let (code, vectors) = match &s.state {
            S::Unloaded => (0.0, 0),
            S::Loading => (1.0, 0),
            S::Ready { vectors, .. } => (2.0, *vectors),
            S::ReindexRequired { .. } => (3.0, 0),
            S::Failed { .. } => (4.0, 0),
        };
        metrics::gauge!(crate::metrics::names::SEARCH_INDEX_STATE, "space" => s.space).set(code);
        metrics::gauge!(crate::metrics::names::SEARCH_INDEX_VECTORS, "space" => s.space).set(vectors as f64);
        metrics::gauge!(crate::metrics::names::SEARCH_INDEX_BYTES, "space" => s.space).set(s.memory_bytes as f64);
    }
}

/// Records a search's total time by kind (`image`, `url`, `text`).
fn observe(kind: &'static str, results: &SearchResults) {
    let ms = results.timings_ms.0.get("total").copied().unwrap_or_default();
    metrics::histogram!(crate::metrics::names::SEARCH_DURATION_SECONDS, "kind" => kind).record(ms / 1e3);
}

/// The catalog, or 404 `model_not_configured` when search models are missing.
pub fn require_catalog(state: &AppState) -> Result<Arc<Catalog>, ApiError> {
    let needs = match state.config.search_models {
        crate::search_models::SearchModels::Default => "product search (an image classifier and a text encoder)",
        crate::search_models::SearchModels::Clip => "product search (the CLIP image tower)",
    };
    state
        .catalog
        .clone()
        .ok_or_else(|| ApiError::ModelUnavailable(ocular_models::ModelError::NotConfigured(needs.into())))
}

/// A search error in the API's envelope; the mapping itself is `crate::convert`'s, the one
/// place library errors become codes.
pub fn api_error(e: SearchError) -> ApiError {
    e.into()
}

/// Attribute filters as requests give them: `{"color": "red", "size": {"min": 38, "max": 42}}`
/// (see `ocular_store::AttributeCondition`), as a JSON object in a JSON body and as that
/// object's JSON text where only text travels (a multipart field, a query-string parameter).
pub type AttributeFilters = BTreeMap<String, AttributeCondition>;

/// Reads [`AttributeFilters`] from an object or from JSON text.
fn attributes_object_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AttributeFilters>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => parse_attributes(&text).map(Some).map_err(D::Error::custom),
        Some(v) => serde_json::from_value(v).map(Some).map_err(|e| D::Error::custom(attributes_error(&e))),
    }
}

fn parse_attributes(text: &str) -> Result<AttributeFilters, String> {
    serde_json::from_str(text).map_err(|e| attributes_error(&e))
}

fn attributes_error(e: &serde_json::Error) -> String {
    format!(
        "`attributes` must be an object of attribute name to a string, a number or {{\"min\": n, \"max\": n}} ({e})"
    )
}

/// Options every search accepts, as JSON fields (and query-string parameters for `similar`).
#[derive(Debug, Default, Deserialize)]
pub struct OptionsBody {
    top_k: Option<usize>,
    threshold: Option<f32>,
    category: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    offset: Option<usize>,
    #[serde(default, deserialize_with = "attributes_object_or_text")]
    attributes: Option<AttributeFilters>,
}

impl OptionsBody {
    fn resolve(self, config: &Config) -> Result<SearchOptions, ApiError> {
        let opts = SearchOptions {
            top_k: self.top_k.unwrap_or(config.top_k),
            threshold: self.threshold.unwrap_or(config.similarity_threshold),
            offset: self.offset.unwrap_or(0),
            filter: ProductFilter {
                category: self.category,
                min_price: self.min_price,
                max_price: self.max_price,
                attributes: self.attributes.unwrap_or_default(),
            },
            facets: true,
        };
        opts.validate().map_err(api_error)?;
        Ok(opts)
    }

    /// The same options from multipart text fields.
    fn from_form(form: &Form) -> Result<Self, ApiError> {
        Ok(Self {
            top_k: parse_field(form, "top_k")?,
            threshold: parse_field(form, "threshold")?,
            category: form.text("category").map(str::to_string),
            min_price: parse_field(form, "min_price")?,
            max_price: parse_field(form, "max_price")?,
            offset: parse_field(form, "offset")?,
            attributes: form
                .text("attributes")
                .map(parse_attributes)
                .transpose()
                .map_err(|e| ApiError::bad_request(Code::InvalidRequest, e))?,
        })
    }
}

/// Runs a photo search on a blocking thread after admission.
async fn run_image_search(state: &AppState, bytes: Bytes, opts: SearchOptions) -> Result<SearchResults, ApiError> {
    let catalog = require_catalog(state)?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let cost = ocular_models::estimate::embed_image(&bytes, &state.image_limits(), embedders.image_input(), false);
    state
        .infer_reserving(cost, move || catalog.search_image(embedders.as_ref(), &bytes, &opts).map_err(api_error))
        .await
}

/// `POST /api/v1/search`: multipart `image` + option fields.
async fn by_image(State(state): State<AppState>, req: Request) -> Result<Json<SearchResults>, ApiError> {
    require_catalog(&state)?;
    state.admission.check_room()?;
    let mut form = read_form(req, &state, "image").await?;
    let opts = OptionsBody::from_form(&form)?.resolve(&state.config)?;
    let bytes = form.require_file("image")?;
    let results = run_image_search(&state, bytes, opts).await?;
    observe("image", &results);
    Ok(Json(results))
}

/// The JSON body of a search: the options, and the route's own field (`image_url` for
/// `/search/url`, `query` for `/search/text`). No `flatten`: unknown fields are skipped where
/// they stand instead of being collected (see `crate::json`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SearchRequest)]
pub(crate) struct SearchBody {
    image_url: Option<String>,
    query: Option<String>,
    top_k: Option<usize>,
    threshold: Option<f32>,
    category: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    offset: Option<usize>,
    /// Attribute filters, all of which must hold: `{"color": "red", "size": {"min": 38},
    /// "dims.width": 30}`. A dotted name (up to 4 steps) reaches into nested objects and arrays
    /// of objects (`variants.size`: any element's field); an array attribute passes when any one
    /// element does.
    #[serde(default, deserialize_with = "attributes_object_or_text")]
    #[schema(value_type = Option<Object>)]
    attributes: Option<AttributeFilters>,
}

impl SearchBody {
    fn split(self, field: &'static str) -> Result<(String, OptionsBody), ApiError> {
        let value = match field {
            "image_url" => self.image_url,
            _ => self.query,
        };
        let value = value
            .ok_or_else(|| ApiError::bad_request(Code::InvalidJson, format!("the body needs a `{field}` string")))?;
        let options = OptionsBody {
            top_k: self.top_k,
            threshold: self.threshold,
            category: self.category,
            min_price: self.min_price,
            max_price: self.max_price,
            offset: self.offset,
            attributes: self.attributes,
        };
        Ok((value, options))
    }
}

/// `POST /api/v1/search/url`: `{"image_url": "...", "top_k": 5, ...}`.
async fn by_url(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchResults>, ApiError> {
    let (image_url, options) = body.split("image_url")?;
    let opts = options.resolve(&state.config)?;
    require_catalog(&state)?;
    let started = Instant::now();
    let bytes = fetch(&state, &image_url).await?;
    let fetched = started.elapsed();
    let mut results = run_image_search(&state, bytes, opts).await?;
    results.timings_ms.add("fetch", fetched);
    results.timings_ms.add("total", fetched);
    observe("url", &results);
    Ok(Json(results))
}

/// Fetches an image URL through the SSRF-guarded fetcher.
pub async fn fetch(state: &AppState, url: &str) -> Result<Bytes, ApiError> {
    let fetcher = state.fetcher.as_ref().ok_or_else(|| ApiError::Unavailable {
        code: Code::UrlFetchUnavailable,
        message: "fetching URLs is disabled on this server (see the start-up log)".into(),
        retry_after_s: 60,
    })?;
    Ok(fetcher.fetch_image(url).await?.bytes)
}

/// `POST /api/v1/search/text`: `{"query": "...", ...}`, hybrid.
async fn by_text(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchResults>, ApiError> {
    let (query, options) = body.split("query")?;
    let opts = options.resolve(&state.config)?;
    let catalog = require_catalog(&state)?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let results =
        state.infer(move || catalog.search_text(embedders.as_ref(), &query, &opts).map_err(api_error)).await?;
    observe("text", &results);
    Ok(Json(results))
}

/// `GET /api/v1/products/{id}/similar?top_k=&threshold=&category=&min_price=&max_price=&offset=`:
/// "more like this", by the product's stored photo vector (its text vector without a photo):
/// nothing is uploaded or embedded, and the options of every search apply.
async fn similar(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(options): ApiQuery<OptionsBody>,
) -> Result<Json<SearchResults>, ApiError> {
    let opts = options.resolve(&state.config)?;
    let catalog = require_catalog(&state)?;
    let results = state.infer(move || catalog.search_similar(&id, &opts).map_err(api_error)).await?;
    observe("similar", &results);
    Ok(Json(results))
}
