//! `ocular reindex`: recompute the vectors that the configured models did not make.
//!
//! After a model change the stored vectors of its spaces are incomparable with new queries, so
//! the server refuses to search those spaces. Reindexing walks the products that lack a vector
//! of the configured model (`products_needing_embeddings`, paged by key), re-embeds them from
//! every stored photo (the main one and each further photo, photo `i` from its own stored
//! bytes or, failing that, the URL it came from, as ingest embedded it) and their text, and
//! replaces the old vectors, one per (product, space, photo). Only the first
//! [`Catalog::max_photos`] photos are embedded: a product stored under a higher limit keeps
//! its further photos listed, without vectors. A photo that can no longer be read loses its
//! stale image vectors rather than blocking the space forever; the report lists it.

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
    /// Photos that could not be read (`id` for the main photo, `id photo i` for a further
    /// one): their image vectors were removed.
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
                .filter(|p| space == TEXT || !photo_refs(p, catalog.max_photos()).is_empty())
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
    // Every photo of every product, photo `i` under its own number: a reindex that made only
    // the main photo's vectors would drop the further photos' (a merged space gets exactly
    // the photos listed).
    let mut images = Vec::new();
    let mut owners: Vec<(usize, u16)> = Vec::new();
    let mut read = vec![0usize; batch.len()];
    for (i, p) in batch.iter().enumerate() {
        let refs = photo_refs(p, catalog.max_photos());
        for (number, sha, url) in &refs {
            match photo(catalog, loader, sha.as_deref(), url.as_deref())
                .and_then(|input| catalog.decode(embedders, &input.bytes))
            {
                Ok(d) => {
                    images.push(d.image);
                    owners.push((i, *number));
                    read[i] += 1;
                }
                Err(e) => {
                    let which = if *number == 0 { p.id.clone() } else { format!("{} photo {number}", p.id) };
                    failures.push(format!("{which}: {}", ocular_models::registry::error_chain(&e)));
                }
            }
        }
        lost[i] = !refs.is_empty() && read[i] == 0;
    }
    // Model batches no larger than the product batch, whatever the photos per product.
    let refs: Vec<&ocular_image::image::RgbImage> = images.iter().collect();
    let mut embedded = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(batch.len().max(1)) {
        embedded.extend(embedders.embed_images(chunk)?);
    }
    for (v, &(i, number)) in embedded.into_iter().zip(&owners) {
        if spaces.contains(&IMAGE) {
            per_product[i].push(Embedding::new(IMAGE, model(embedders, IMAGE), v.image).of_photo(number));
        }
        if fills(embedders, IMAGE_TEXT) {
            per_product[i]
                .push(Embedding::new(IMAGE_TEXT, model(embedders, IMAGE_TEXT), v.image_text).of_photo(number));
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

/// A product's first `most` photos as (photo number, stored digest, source URL): 0 for the
/// main photo, `i` for `images[i - 1]`.
fn photo_refs(p: &Product, most: usize) -> Vec<(u16, Option<String>, Option<String>)> {
    let main =
        (p.image_sha256.is_some() || p.image_url.is_some()).then(|| (0, p.image_sha256.clone(), p.image_url.clone()));
    // At most `MAX_PHOTOS` (the store refuses more), so the numbers fit.
    let further = p.images.iter().enumerate().map(|(i, im)| (i as u16 + 1, im.sha256.clone(), im.url.clone()));
    // Numbered before the cut, so photo `i` keeps its number whatever the limit.
    main.into_iter().chain(further).filter(|(number, ..)| usize::from(*number) < most).collect()
}

/// One photo's bytes: the stored copy, else the URL it came from.
fn photo(
    catalog: &Catalog,
    loader: &ImageLoader,
    sha256: Option<&str>,
    url: Option<&str>,
) -> Result<ImageInput, SearchError> {
    if let Some(sha) = sha256
        && let Some(img) = catalog.store().get_image(sha)?
    {
        return Ok(ImageInput { bytes: img.bytes, source_url: url.map(str::to_string) });
    }
    match url {
        Some(url) => loader.load(&ImageRef::Url(url.to_string())),
        None => Err(SearchError::invalid("image", "the product's stored photo is missing")),
    }
}
