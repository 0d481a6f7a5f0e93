//! Raw embeddings for users who keep their own vector database:
//! `POST /api/v1/embed/image` (multipart `image`) → the image-space vector, its model and the
//! top-5 ImageNet labels; `POST /api/v1/embed/text` (`{"text": "..."}`) → the text-space vector
//! and its model. These are the same vectors the catalog stores, from the same embedders.

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use ocular_search::embed::{IMAGE, TEXT, model_of};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::search::{api_error, parse_json, read_form, require_catalog};
use crate::state::AppState;

/// Longest text accepted (MiniLM reads 256 tokens; more text only costs tokenisation).
const MAX_TEXT_CHARS: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/embed/image", post(image)).route("/api/v1/embed/text", post(text))
}

async fn image(State(state): State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    let catalog = require_catalog(&state)?;
    let mut form = read_form(req, &state, "image").await?;
    let bytes = form.require_file("image")?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let model = model_of(embedders.spaces(), IMAGE).map(|m| m.model.clone());
    let vectors = state
        .infer(move || {
            let decoded = catalog.decode(embedders.as_ref(), &bytes).map_err(api_error)?;
            let mut out = embedders.embed_images(&[&decoded.image]).map_err(ApiError::from)?;
            out.pop().ok_or_else(|| ApiError::internal(std::io::Error::other("the image model returned nothing")))
        })
        .await?;
    Ok(Json(json!({
        "embedding": vectors.image,
        "dim": vectors.image.len(),
        "model": model,
        "labels": vectors.labels,
    })))
}

#[derive(Debug, Deserialize)]
struct TextBody {
    text: String,
}

async fn text(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: TextBody = parse_json(&body)?;
    let text = body.text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::bad_request("invalid_request", format!("text must be 1 to {MAX_TEXT_CHARS} characters")));
    }
    let catalog = require_catalog(&state)?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let model = model_of(embedders.spaces(), TEXT).map(|m| m.model.clone());
    let embedding = state
        .infer(move || {
            let mut out = embedders.embed_texts(&[&text]).map_err(ApiError::from)?;
            out.pop().ok_or_else(|| ApiError::internal(std::io::Error::other("the text model returned nothing")))
        })
        .await?;
    Ok(Json(json!({ "embedding": embedding, "dim": embedding.len(), "model": model })))
}
