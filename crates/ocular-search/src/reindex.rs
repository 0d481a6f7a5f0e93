//! `ocular reindex`: recompute the vectors that the configured models did not make.
//!
//! After a model change the stored vectors of its spaces are incomparable with new queries, so
//! the server refuses to search those spaces. Reindexing walks the products that lack a vector
//! of the configured model (`products_needing_embeddings`, paged by key), re-embeds them from
//! their stored photo (or, failing that, the URL it came from) and their text, and replaces the
//! old vectors. A product whose photo can no longer be read loses its stale image vectors
//! rather than blocking the space forever; the report lists it.

use std::time::Instant;

use ocular_store::{Embedding, Product, ProductKey};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::embed::{Embedders, IMAGE, IMAGE_TEXT, TEXT, fills, product_text};
use crate::error::SearchError;
use crate::import::{ImageRef, Progress};
use crate::ingest::{ImageInput, model};
use crate::loader::ImageLoader;

/// Which spaces to recompute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `image` and `image_text` (the photo's vectors).
    Image,
    /// `text` and `image_text` (ConSE and CLIP text towers shape `image_text` too).
    Text,
    All,
}

impl Which {
    pub fn spaces(self) -> &'static [&'static str] {
        match self {
            Which::Image => &[IMAGE, IMAGE_TEXT],
            Which::Text => &[TEXT, IMAGE_TEXT],
            Which::All => &[IMAGE, TEXT, IMAGE_TEXT],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReindexReport {
    pub products: u64,
    pub vectors: u64,
    /// Products whose photo could not be read: their image vectors were removed.
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Recomputes every vector of `which` not made by the configured model.
pub fn reindex(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    loader: &ImageLoader,
    which: Which,
    batch_size: usize,
    progress: &mut dyn Progress,
) -> Result<ReindexReport, SearchError> {
    let started = Instant::now();
    let mut report = ReindexReport::default();
    let store = catalog.store().clone();
    // Spaces no configured model fills (the text space of image-only CLIP) are skipped.
    for &space in which.spaces().iter().filter(|s| fills(embedders, s)) {
        let configured = model(embedders, space);
        let todo: u64 =
            catalog.census()?.iter().filter(|c| c.space == space && c.model != configured).map(|c| c.count).sum();
        let mut after: Option<ProductKey> = None;
        let mut done = 0;
        loop {
            let batch = store.products_needing_embeddings(space, &configured, after, batch_size.max(1))?;
            let Some(last) = batch.last() else { break };
            after = Some(last.key);
            // Products without a photo have no image vector to make; skipping them is right.
            let batch: Vec<Product> = batch
                .into_iter()
                .filter(|p| space == TEXT || p.image_sha256.is_some() || p.image_url.is_some())
                .collect();
            let (products, vectors) = reindex_batch(catalog, embedders, loader, which, &batch, &mut report.failures)?;
            report.products += products;
            report.vectors += vectors;
            done += batch.len() as u64;
            progress.update(done, todo.max(done));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Re-embeds one batch in every requested space; returns (products, vectors) written.
fn reindex_batch(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    loader: &ImageLoader,
    which: Which,
    batch: &[Product],
    failures: &mut Vec<String>,
) -> Result<(u64, u64), SearchError> {
    let spaces = which.spaces();
    let mut per_product: Vec<Vec<Embedding>> = vec![Vec::new(); batch.len()];
    let mut lost: Vec<bool> = vec![false; batch.len()];
    if spaces.contains(&TEXT) && fills(embedders, TEXT) {
        let texts: Vec<String> = batch.iter().map(|p| product_text(&p.title, &p.description)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for (i, v) in embedders.embed_texts(&refs)?.into_iter().enumerate() {
            per_product[i].push(Embedding::new(TEXT, model(embedders, TEXT), v));
        }
    }
    let mut images = Vec::new();
    let mut owners = Vec::new();
    for (i, p) in batch.iter().enumerate() {
        if p.image_sha256.is_none() && p.image_url.is_none() {
            continue;
        }
        match photo(catalog, loader, p).and_then(|input| catalog.decode(embedders, &input.bytes)) {
            Ok(d) => {
                images.push(d.image);
                owners.push(i);
            }
            Err(e) => {
                failures.push(format!("{}: {}", p.id, ocular_models::registry::error_chain(&e)));
                lost[i] = true;
            }
        }
    }
    let refs: Vec<&ocular_image::image::RgbImage> = images.iter().collect();
    for (v, &i) in embedders.embed_images(&refs)?.into_iter().zip(&owners) {
        if spaces.contains(&IMAGE) {
            per_product[i].push(Embedding::new(IMAGE, model(embedders, IMAGE), v.image));
        }
        if fills(embedders, IMAGE_TEXT) {
            per_product[i].push(Embedding::new(IMAGE_TEXT, model(embedders, IMAGE_TEXT), v.image_text));
        }
    }
    let (mut products, mut vectors) = (0, 0);
    for ((p, list), lost) in batch.iter().zip(&per_product).zip(lost) {
        let remove: &[&str] = if lost { &[IMAGE, IMAGE_TEXT] } else { &[] };
        if list.is_empty() && remove.is_empty() {
            continue;
        }
        catalog.set_vectors(p.key, list, remove)?;
        products += 1;
        vectors += list.len() as u64;
    }
    Ok((products, vectors))
}

/// A product's photo: the stored copy, else the URL it came from.
fn photo(catalog: &Catalog, loader: &ImageLoader, p: &Product) -> Result<ImageInput, SearchError> {
    if let Some(sha) = &p.image_sha256
        && let Some(img) = catalog.store().get_image(sha)?
    {
        return Ok(ImageInput { bytes: img.bytes, source_url: p.image_url.clone() });
    }
    match &p.image_url {
        Some(url) => loader.load(&ImageRef::Url(url.clone())),
        None => Err(SearchError::invalid("image", "the product's stored photo is missing")),
    }
}
