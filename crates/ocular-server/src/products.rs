//! The product catalog over HTTP: create, replace, patch, delete, read, list, and each
//! product's stored photo.
//!
//! Writes accept JSON (`image_url` is fetched through `ocular-fetch`) or a multipart form with
//! the same fields and an `image` file; features are computed once, here, and stored with the
//! product (see `ocular_search::ingest`). Writes need the API key when `OCULAR_API_KEY` is set
//! ([`WriteAccess`]); reads are open. Product JSON is `ocular_search::ProductView`: it never
//! exposes the store's internal key, and its `image_url` points at `/api/v1/products/{id}/image`
//! so browsers load the stored copy; a fetched photo's origin stays in `source_url`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use ocular_search::ingest::is_own_image;
use ocular_search::{ImageChange, ImageInput, ProductView, WriteMode};
use ocular_store::{NewProduct, Product, ProductFilter, ProductPatch};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Code};
use crate::extract::{ApiPath, ApiQuery};
use crate::form::Form;
use crate::form::{parse_field, read_form};
use crate::search::{api_error, fetch, require_catalog};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(list).post(create))
        .route("/api/v1/products/{id}", get(show).put(replace).patch(patch).delete(remove))
        .route("/api/v1/products/{id}/image", get(image))
}

/// Proof that a write request carries the API key (when one is configured), as
/// `Authorization: Bearer KEY` or `X-Api-Key: KEY`. Compared in constant time: both sides are
/// hashed first, so neither the key's content nor its length shows in the timing.
pub struct WriteAccess;

impl FromRequestParts<AppState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config.api_key.is_none() || crate::access::is_admin(state, &parts.headers) {
            Ok(WriteAccess)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// Content-Security-Policy of stored images (product photos, analysis photos and heatmaps):
/// should a browser ever open one as a document, it runs nothing and loads nothing.
pub const STORED_IMAGE_CSP: &str = "default-src 'none'; sandbox";

/// The writable fields of a product, as JSON or form fields.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = ProductRequest)]
pub(crate) struct ProductBody {
    id: Option<String>,
    title: Option<String>,
    #[serde(default)]
    description: String,
    category: Option<String>,
    price: Option<f64>,
    currency: Option<String>,
    image_url: Option<String>,
    /// Further photos after the main one, as URLs (module `photos`); in a multipart form, one
    /// `images` field holding the JSON array. At most OCULAR_MAX_PHOTOS_PER_PRODUCT - 1.
    images: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
}

/// `GET /api/v1/products`: a page of products.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ProductPage {
    items: Vec<ProductView>,
    /// The `offset` of the next page; `null` on the last one.
    next_offset: Option<usize>,
    /// Products matching the filter (counted when cheap).
    total: Option<u64>,
}

impl ProductBody {
    fn from_form(form: &Form) -> Result<Self, ApiError> {
        Ok(Self {
            id: form.text("id").map(str::to_string),
            title: form.text("title").map(str::to_string),
            description: form.text("description").unwrap_or_default().to_string(),
            category: form.text("category").map(str::to_string),
            price: parse_field(form, "price")?,
            currency: form.text("currency").map(str::to_string),
            image_url: form.text("image_url").map(str::to_string),
            images: None,
            attributes: form.text("attributes").map(parse_attributes).transpose()?,
        })
    }

    fn into_product(self, id: String) -> Result<(NewProduct, Option<String>), ApiError> {
        let title = self.title.ok_or_else(|| ApiError::bad_request(Code::InvalidProduct, "title is required"))?;
        let mut p = NewProduct::new(id, title);
        p.description = self.description;
        p.category = self.category;
        p.price = self.price;
        p.currency = self.currency;
        p.attributes = self.attributes.unwrap_or_else(|| Value::Object(Map::new()));
        Ok((p, self.image_url))
    }
}

fn parse_attributes(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(Code::InvalidProduct, format!("attributes is not JSON: {e}")))
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/"))
}

/// A write's body: the fields (as JSON) and an uploaded photo, from JSON or a form.
async fn read_body(state: &AppState, req: Request) -> Result<(Value, Option<Bytes>), ApiError> {
    if is_multipart(req.headers()) {
        state.admission.check_room()?;
        let mut form = read_form(req, state, "image").await?;
        let upload = form.file.take().filter(|b| !b.is_empty());
        let body = ProductBody::from_form(&form)?;
        let mut v = json!({
            "id": body.id, "title": body.title, "description": body.description, "category": body.category,
            "price": body.price, "currency": body.currency, "image_url": body.image_url,
        });
        if let Some(a) = body.attributes {
            v["attributes"] = a;
        }
        // Further photo URLs, then checked by the write as a JSON body's `images` are.
        if let Some(text) = form.text("images") {
            v["images"] = crate::photos::images_field(text)?;
        }
        // A form cannot send null: for a PATCH, absent fields stay as they are.
        let has_description = form.fields.contains_key("description");
        if let Value::Object(map) = &mut v {
            map.retain(|k, v| !v.is_null() && (k != "description" || has_description));
        }
        return Ok((v, upload));
    }
    // JSON only, at most OCULAR_MAX_JSON_BYTES (see `crate::json`): a `Value` keeps everything,
    // so its size must be bounded before parsing.
    let bytes = crate::json::read(req, state.config.json_limit()).await.map_err(|e| match e {
        ApiError::UnsupportedContentType { given, .. } => {
            ApiError::UnsupportedContentType { expected: "JSON or multipart/form-data", given }
        }
        other => other,
    })?;
    let v: Value = crate::json::parse(&bytes)?;
    if !v.is_object() {
        return Err(ApiError::bad_request(Code::InvalidJson, "the body must be a JSON object"));
    }
    Ok((v, None))
}

/// What a write does to the photo: an upload wins, then `image_url` (the product's own stored
/// photo or its recorded source means "keep"; another URL is fetched).
async fn image_change(
    state: &AppState,
    id: &str,
    current: Option<&Product>,
    upload: Option<Bytes>,
    image_url: Option<Option<String>>,
) -> Result<ImageChange, ApiError> {
    if let Some(bytes) = upload {
        return Ok(ImageChange::New(ImageInput { bytes: bytes.to_vec(), source_url: None }));
    }
    match image_url {
        None => Ok(ImageChange::Keep),
        Some(None) => Ok(ImageChange::Clear),
        Some(Some(url)) => {
            let keep = is_own_image(id, &url) || current.and_then(|c| c.image_url.as_deref()) == Some(url.as_str());
            if keep && current.is_some() {
                return Ok(ImageChange::Keep);
            }
            let bytes = fetch(state, &url).await?;
            Ok(ImageChange::New(ImageInput { bytes: bytes.to_vec(), source_url: Some(url) }))
        }
    }
}

/// Estimated peak memory of a product write: its photo's embedding, if it has a new one, and
/// its text's (see `ocular_models::estimate`); further photos are embedded one after another,
/// so the largest of them counts.
fn write_cost(
    state: &AppState,
    embedders: &dyn ocular_search::Embedders,
    change: &ImageChange,
    fetched: &crate::photos::Fetched,
) -> u64 {
    let limits = state.image_limits();
    let photo = |bytes: &[u8]| ocular_models::estimate::embed_image(bytes, &limits, embedders.image_input(), true);
    let main = match change {
        ImageChange::New(input) => photo(&input.bytes),
        _ => ocular_models::estimate::text(),
    };
    fetched.values().map(|i| photo(&i.bytes)).fold(main, u64::max)
}

async fn current(state: &AppState, id: &str) -> Result<Option<Product>, ApiError> {
    let id = id.to_string();
    state.db(move |s| s.get_product(&id)).await
}

/// A product's version as an HTTP entity tag: its `updated_at` in microseconds, which every
/// write moves forward (see `CatalogStore::replace_product_if_unchanged`).
fn etag(p: &Product) -> String {
    format!("\"{}\"", p.updated_at.unix_timestamp_nanos() / 1000)
}

/// A product answer with its `ETag`, so a client can send it back in `If-Match`.
fn with_etag(status: StatusCode, p: &Product) -> Response {
    (status, [(header::ETAG, etag(p))], Json(ProductView::from(p))).into_response()
}

/// Checks a write's `If-Match` (RFC 9110 strong comparison; `*` means "exists") against the
/// stored product. Without the header a write is still atomic against concurrent writers (409
/// `concurrent_update`), but only `If-Match` protects a read-modify-write that spans requests.
fn check_if_match(if_match: Option<&str>, current: Option<&Product>, id: &str) -> Result<(), ApiError> {
    let Some(cond) = if_match else { return Ok(()) };
    let ok = current.is_some_and(|p| {
        let tag = etag(p);
        cond.split(',').map(str::trim).any(|t| t == "*" || t == tag)
    });
    if ok { Ok(()) } else { Err(ApiError::PreconditionFailed(format!("product {id}"))) }
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("\u{0}").to_string())
}

/// With `If-Match`, a write that lost the race in the store is a failed precondition too.
fn lost_race(conditional: bool) -> impl Fn(ApiError) -> ApiError {
    move |e| match e {
        ApiError::Conflict { code: Code::ConcurrentUpdate, message } if conditional => {
            ApiError::PreconditionFailed(message.split(" was changed").next().unwrap_or("the product").to_string())
        }
        other => other,
    }
}

async fn write(state: &AppState, mode: WriteMode, path_id: Option<String>, req: Request) -> Result<Response, ApiError> {
    let catalog = require_catalog(state)?;
    let if_match = if_match(req.headers());
    if mode == WriteMode::Create && if_match.is_some() {
        return Err(ApiError::bad_request(Code::InvalidProduct, "If-Match applies to PUT and PATCH, not to a create"));
    }
    let (value, upload) = read_body(state, req).await?;
    let mut body: ProductBody = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(Code::InvalidProduct, format!("invalid product: {e}")))?;
    let images = body.images.take().unwrap_or_default();
    crate::photos::check_count(&images, catalog.max_photos())?;
    let id = match (path_id, body.id.clone()) {
        (Some(p), Some(b)) if p != b => {
            return Err(ApiError::bad_request(
                Code::InvalidProduct,
                format!("body id {b:?} differs from the URL's {p:?}"),
            ));
        }
        (Some(p), _) => p,
        (None, Some(b)) => b,
        (None, None) => return Err(ApiError::bad_request(Code::InvalidProduct, "id is required")),
    };
    let (mut product, image_url) = body.into_product(id.clone())?;
    let existing = if mode == WriteMode::Replace { current(state, &id).await? } else { None };
    check_if_match(if_match.as_deref(), existing.as_ref(), &id)?;
    // PUT replaces: no photo in the body means no photo.
    let change = image_change(state, &id, existing.as_ref(), upload, Some(image_url)).await?;
    let (further, fetched) = crate::photos::further(state, &id, existing.as_ref(), images).await?;
    product.images = further;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let cost = write_cost(state, embedders.as_ref(), &change, &fetched);
    // The version checked above is the one the store's compare-and-set expects, except for a
    // PUT that creates; with If-Match there is always a stored version.
    let upserted = state
        .infer_reserving(cost, move || {
            catalog.upsert_from(embedders.as_ref(), mode, existing, product, change, &fetched).map_err(api_error)
        })
        .await
        .map_err(lost_race(if_match.is_some()))?;
    let status = if upserted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(with_etag(status, &upserted.product))
}

async fn create(State(state): State<AppState>, _: WriteAccess, req: Request) -> Result<Response, ApiError> {
    write(&state, WriteMode::Create, None, req).await
}

async fn replace(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    write(&state, WriteMode::Replace, Some(id), req).await
}

async fn patch(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let catalog = require_catalog(&state)?;
    let if_match = if_match(req.headers());
    let (mut value, upload) = read_body(&state, req).await?;
    let Value::Object(map) = &mut value else { return Err(ApiError::bad_request(Code::InvalidJson, "not an object")) };
    if map.get("id").and_then(Value::as_str).is_some_and(|b| b != id) {
        return Err(ApiError::bad_request(Code::InvalidProduct, "the id of a product cannot be changed"));
    }
    // Read-only fields of a product JSON sent back are ignored, not errors.
    for k in ["id", "source_url", "created_at", "updated_at", "image_sha256"] {
        map.remove(k);
    }
    let image_url = map.remove("image_url").map(|v| v.as_str().map(str::to_string));
    let images = crate::photos::parse_images(map.remove("images"), catalog.max_photos())?;
    let mut patch: ProductPatch = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(Code::InvalidProduct, format!("invalid patch: {e}")))?;
    let existing = current(&state, &id).await?.ok_or_else(|| ApiError::NotFound(format!("product {id}")))?;
    check_if_match(if_match.as_deref(), Some(&existing), &id)?;
    let change = image_change(&state, &id, Some(&existing), upload, image_url).await?;
    let mut fetched = crate::photos::Fetched::new();
    if let Some(urls) = images {
        let (further, got) = crate::photos::further(&state, &id, Some(&existing), urls).await?;
        patch.images = Some(further);
        fetched = got;
    }
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let cost = write_cost(&state, embedders.as_ref(), &change, &fetched);
    // The patch applies to the version read (and checked) above, never to a newer one.
    let product = state
        .infer_reserving(cost, move || {
            catalog.patch_version(embedders.as_ref(), existing, &patch, change, &fetched).map_err(api_error)
        })
        .await
        .map_err(lost_race(if_match.is_some()))?;
    Ok(with_etag(StatusCode::OK, &product))
}

async fn remove(
    State(state): State<AppState>,
    _: WriteAccess,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let catalog = require_catalog(&state)?;
    tokio::task::spawn_blocking(move || catalog.delete(&id).map_err(api_error)).await.map_err(ApiError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}

async fn show(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let p = current(&state, &id).await?.ok_or_else(|| ApiError::NotFound(format!("product {id}")))?;
    Ok(with_etag(StatusCode::OK, &p))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    category: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// `GET /api/v1/products?category=&offset=&limit=` (limit 1–100, default 20).
async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<ProductPage>, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let filter = ProductFilter { category: q.category.filter(|c| !c.is_empty()), ..ProductFilter::default() };
    let page = state.db(move |s| s.list_products(&filter, q.offset, limit)).await?;
    let items: Vec<ProductView> = page.items.iter().map(ProductView::from).collect();
    Ok(Json(ProductPage { items, next_offset: page.next_offset, total: page.total }))
}

/// The stored photo with its content type. Its `ETag` is the content digest, so a browser
/// revalidates with one cheap request and a replaced photo is never served stale.
async fn image(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<crate::photos::PhotoQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = current(&state, &id).await?.ok_or_else(|| ApiError::NotFound(format!("product {id}")))?;
    let index = q.photo.unwrap_or(0);
    let sha =
        crate::photos::stored(&p, index).ok_or_else(|| ApiError::NotFound(format!("photo {index} of product {id}")))?;
    let etag = format!("\"{sha}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let img = state
        .db(move |s| s.get_image(&sha))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("image of product {id}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, img.content_type),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "no-cache".into()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            (header::CONTENT_SECURITY_POLICY, STORED_IMAGE_CSP.into()),
        ],
        img.bytes,
    )
        .into_response())
}
