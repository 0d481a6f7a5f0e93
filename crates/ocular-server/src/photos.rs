//! A product's further photos over HTTP (`images`: photos after the main `image_url`).
//!
//! A client writes them as a list of URLs: a JSON array in a JSON body, that array's JSON text
//! in a multipart form's `images` field. A URL the product already shows (as it was given,
//! or as the stored copy's path that product JSON reports) keeps that photo and its vectors;
//! any other is fetched here, through `ocular-fetch` like `image_url`, before the write runs,
//! and embedded once by the catalog (`ocular_search::ingest`). `GET
//! /api/v1/products/{id}/image?photo=i` serves the stored copy of photo `i`.

use std::collections::HashMap;

use ocular_search::ImageInput;
use ocular_search::query::photo_path;
use ocular_store::{Product, ProductImage};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::search::fetch;
use crate::state::AppState;

/// The photo bytes a write fetched, by URL (what `Catalog::upsert_from` takes).
pub type Fetched = HashMap<String, ImageInput>;

/// `?photo=` of the image route: which of the product's photos (0, the default: the main one).
#[derive(Debug, Default, Deserialize)]
pub struct PhotoQuery {
    /// 0 for the main photo, `i` for the further photo `images[i - 1]`.
    pub photo: Option<usize>,
}

/// Reads a write's `images` (absent: `None`): a JSON array of URL strings, at most
/// `max_photos - 1` of them (the main photo is the first of `max_photos`).
pub fn parse_images(v: Option<Value>, max_photos: usize) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    if v.is_null() {
        return Ok(Some(Vec::new()));
    }
    let urls: Vec<String> = serde_json::from_value(v)
        .map_err(|_| ApiError::bad_request(Code::InvalidProduct, "images must be an array of URLs"))?;
    check_count(&urls, max_photos)?;
    Ok(Some(urls))
}

/// A multipart form's `images` field: the JSON text of the array a JSON body would carry, as
/// that JSON, so the write checks it exactly as it checks a JSON body's `images`.
pub fn images_field(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(Code::InvalidProduct, format!("images must be a JSON array of URLs: {e}")))
}

/// Refuses more further photos than a product may have (`OCULAR_MAX_PHOTOS_PER_PRODUCT`, the
/// main one included), before anything is fetched.
pub fn check_count(urls: &[String], max_photos: usize) -> Result<(), ApiError> {
    if urls.len() >= max_photos {
        let most = max_photos.saturating_sub(1);
        return Err(ApiError::bad_request(
            Code::InvalidProduct,
            format!("images: at most {most} further photos ({max_photos} photos per product)"),
        ));
    }
    Ok(())
}

/// The further photos `urls` name for product `id` (see the module docs), fetching those the
/// product does not show yet.
pub async fn further(
    state: &AppState,
    id: &str,
    current: Option<&Product>,
    urls: Vec<String>,
) -> Result<(Vec<ProductImage>, Fetched), ApiError> {
    let mut images = Vec::with_capacity(urls.len());
    let mut fetched = Fetched::new();
    for url in urls {
        let shown = current.and_then(|c| {
            c.images.iter().enumerate().find(|(i, img)| {
                img.url.as_deref() == Some(url.as_str()) || (img.sha256.is_some() && url == photo_path(id, i + 1))
            })
        });
        if let Some((_, img)) = shown {
            images.push(img.clone());
            continue;
        }
        if !fetched.contains_key(&url) {
            let bytes = fetch(state, &url).await?;
            fetched.insert(url.clone(), ImageInput { bytes: bytes.to_vec(), source_url: Some(url.clone()) });
        }
        images.push(ProductImage { url: Some(url), sha256: None });
    }
    Ok((images, fetched))
}

/// The stored digest of photo `index` of `p`, if it has a stored copy.
pub fn stored(p: &Product, index: usize) -> Option<String> {
    p.photo(index).and_then(|(_, sha)| sha.map(str::to_string))
}
