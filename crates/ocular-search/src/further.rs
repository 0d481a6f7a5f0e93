//! The further photos of a product write (`NewProduct::images`, photos 1 and up): each is
//! embedded once, when it first appears, and its vectors are kept for as long as the product
//! shows it (reused, renumbered, by later writes that keep it).
//!
//! A further photo comes as a stored upload (`sha256`: read back from the store) or as a URL,
//! whose bytes the caller fetched beforehand (`fetched`, keyed by URL: fetching is the
//! server's and the importer's business, with their own limits); it is stored like the main
//! photo (metadata stripped) and its `sha256` recorded.

use std::collections::HashMap;

use ocular_store::{Embedding, NewProduct, Product, ProductImage};

use crate::catalog::Catalog;
use crate::error::SearchError;
use crate::ingest::{ImageInput, embed_one, image_embeddings};

impl Catalog {
    /// The vectors of `next`'s further photos, photo `i + 1` for `next.images[i]`; records the
    /// stored digest of each photo fetched from a URL in `next`. `stored` are the current
    /// product's vectors (empty for a new product).
    pub(crate) fn further_vectors(
        &self,
        embedders: &dyn crate::Embedders,
        current: Option<&Product>,
        stored: &[Embedding],
        next: &mut NewProduct,
        fetched: &HashMap<String, ImageInput>,
    ) -> Result<Vec<Embedding>, SearchError> {
        let mut out = Vec::new();
        for i in 0..next.images.len() {
            let photo = u16::try_from(i + 1).map_err(|_| SearchError::invalid("images", "too many photos"))?;
            let image = &next.images[i];
            // A photo the product already showed keeps its vectors.
            let before = current.and_then(|c| c.images.iter().position(|o| o == image)).map(|j| j + 1);
            let reused: Vec<Embedding> = before
                .map(|j| stored.iter().filter(|e| usize::from(e.photo) == j).cloned().collect())
                .unwrap_or_default();
            if !reused.is_empty() {
                out.extend(reused.into_iter().map(|e| e.of_photo(photo)));
                continue;
            }
            let (vectors, sha) = match (&image.sha256, &image.url) {
                (Some(sha), _) => {
                    let img = self.store.get_image(sha)?.ok_or_else(|| {
                        SearchError::invalid("images", format!("no image with digest {sha} has been stored"))
                    })?;
                    let decoded = self.decode(embedders, &img.bytes)?;
                    (embed_one(embedders, &decoded.image)?, sha.clone())
                }
                (None, Some(url)) => {
                    let input = fetched
                        .get(url)
                        .ok_or_else(|| SearchError::invalid("images", format!("photo {url} could not be read")))?;
                    let prepared = self.prepare_image(embedders, input.clone())?;
                    (prepared.vectors, prepared.sha256)
                }
                (None, None) => return Err(SearchError::invalid("images", "each photo needs a `url` or a `sha256`")),
            };
            next.images[i].sha256 = Some(sha);
            out.extend(image_embeddings(embedders, vectors).into_iter().map(|e| e.of_photo(photo)));
        }
        Ok(out)
    }
}

impl Catalog {
    /// Stores and embeds further photos already read (bulk import: photo `i + 1` for
    /// `inputs[i]`): the product's `images` and their vectors. One photo at a time: few
    /// products have many, and the main photos are what the import batches.
    pub(crate) fn embed_further(
        &self,
        embedders: &dyn crate::Embedders,
        inputs: &[ImageInput],
    ) -> Result<(Vec<ProductImage>, Vec<Embedding>), SearchError> {
        let mut images = Vec::with_capacity(inputs.len());
        let mut vectors = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let photo = u16::try_from(i + 1).map_err(|_| SearchError::invalid("images", "too many photos"))?;
            let prepared = self.prepare_image(embedders, input.clone())?;
            images.push(ProductImage { url: input.source_url.clone(), sha256: Some(prepared.sha256) });
            vectors.extend(image_embeddings(embedders, prepared.vectors).into_iter().map(|e| e.of_photo(photo)));
        }
        Ok((images, vectors))
    }
}
