//! Product writes: features are computed here, once, and stored with the product in one
//! transaction, then applied to the in-memory indexes. The service this replaces recomputed
//! every product's features on every search; here a search never embeds a product.
//!
//! A PATCH re-embeds only what changed: a new title or description re-embeds the text, a new
//! photo the image spaces, a new price nothing. A product's photo is stored (content-addressed)
//! so browsers load it from `/api/v1/products/{id}/image`; the URL it came from is kept as
//! `source_url`.

use std::collections::HashMap;

use ocular_image::image::RgbImage;
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, Product, ProductKey, ProductPatch, ProductWrite, Upserted};

use crate::catalog::Catalog;
use crate::embed::{Embedders, IMAGE, IMAGE_TEXT, ImageVectors, TEXT, fills, product_text};
use crate::error::SearchError;
use crate::query::image_path;

/// A product photo as received.
#[derive(Debug, Clone)]
pub struct ImageInput {
    pub bytes: Vec<u8>,
    /// Where it was fetched from, if from a URL.
    pub source_url: Option<String>,
}

/// What a write does to the product's photo.
#[derive(Debug, Clone)]
pub enum ImageChange {
    /// Keep the stored photo and its vectors.
    Keep,
    /// Remove the photo and its vectors.
    Clear,
    /// A new photo: store it and embed it.
    New(ImageInput),
}

/// Create (an existing id is a conflict) or create-or-replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Replace,
}

/// A photo decoded and embedded, ready to store.
pub struct PreparedImage {
    pub vectors: ImageVectors,
    pub sha256: String,
    pub source_url: Option<String>,
}

impl Catalog {
    /// Decodes a photo at the size the image model needs (large JPEGs at reduced scale).
    pub fn decode(&self, embedders: &dyn Embedders, bytes: &[u8]) -> Result<ocular_image::Decoded, SearchError> {
        Ok(ocular_image::decode(bytes, &self.limits, Some(embedders.image_input()))?)
    }

    /// Decodes, embeds and stores a photo (the image row is harmless if the product write then
    /// fails: unreferenced images are purged later).
    pub fn prepare_image(&self, embedders: &dyn Embedders, input: ImageInput) -> Result<PreparedImage, SearchError> {
        let decoded = self.decode(embedders, &input.bytes)?;
        let vectors = embed_one(embedders, &decoded.image)?;
        let sha256 = self.store_photo(&input.bytes, decoded.format)?;
        Ok(PreparedImage { vectors, sha256, source_url: input.source_url })
    }

    /// Stores a product photo without its metadata (GPS position, camera, text: see
    /// [`ocular_image::strip_metadata`]) and returns its address. Every stored product photo
    /// goes through here, served to anyone as it is.
    pub fn store_photo(&self, bytes: &[u8], format: ocular_image::Format) -> Result<String, SearchError> {
        let clean = ocular_image::strip_metadata(bytes)?;
        Ok(self.store.put_image(&clean, format.mime_type())?)
    }

    /// POST (`Create`) or PUT (`Replace`): the product becomes exactly `product` plus the photo
    /// `image` says. `Keep` keeps the stored photo of a replaced product.
    pub fn upsert(
        &self,
        embedders: &dyn Embedders,
        mode: WriteMode,
        product: NewProduct,
        image: ImageChange,
    ) -> Result<Upserted, SearchError> {
        let current = self.store.get_product(&product.id)?;
        if mode == WriteMode::Create && current.is_some() {
            return Err(ocular_store::StoreError::Conflict(format!("product {}", product.id)).into());
        }
        self.write(embedders, current, product, image, mode, &HashMap::new())
    }

    /// [`Catalog::upsert`] computed from a version of the product the caller has already read
    /// (`None`: it did not exist): the write happens only while that is still the stored
    /// version (else [`SearchError::Concurrent`]), so a version the caller checked (`If-Match`)
    /// is the one replaced. `fetched`: the bytes of further photos given by URL that the
    /// product did not show before (module `further`).
    pub fn upsert_from(
        &self,
        embedders: &dyn Embedders,
        mode: WriteMode,
        current: Option<Product>,
        product: NewProduct,
        image: ImageChange,
        fetched: &HashMap<String, ImageInput>,
    ) -> Result<Upserted, SearchError> {
        if current.as_ref().is_some_and(|c| c.id != product.id) {
            return Err(SearchError::invalid("id", "differs from the product read"));
        }
        if mode == WriteMode::Create && current.is_some() {
            return Err(ocular_store::StoreError::Conflict(format!("product {}", product.id)).into());
        }
        self.write(embedders, current, product, image, mode, fetched)
    }

    /// [`Catalog::patch`] applied to a version of the product the caller has already read: the
    /// write happens only while that is still the stored version (else
    /// [`SearchError::Concurrent`]). `fetched` as for [`Catalog::upsert_from`].
    pub fn patch_version(
        &self,
        embedders: &dyn Embedders,
        current: Product,
        patch: &ProductPatch,
        image: ImageChange,
        fetched: &HashMap<String, ImageInput>,
    ) -> Result<Product, SearchError> {
        let next = patch.apply(&current);
        Ok(self.write(embedders, Some(current), next, image, WriteMode::Replace, fetched)?.product)
    }

    /// PATCH: applies `patch` to the stored product, re-embedding only what changed.
    pub fn patch(
        &self,
        embedders: &dyn Embedders,
        id: &str,
        patch: &ProductPatch,
        image: ImageChange,
    ) -> Result<Product, SearchError> {
        let current =
            self.store.get_product(id)?.ok_or_else(|| ocular_store::StoreError::NotFound(format!("product {id}")))?;
        let next = patch.apply(&current);
        Ok(self.write(embedders, Some(current), next, image, WriteMode::Replace, &HashMap::new())?.product)
    }

    fn write(
        &self,
        embedders: &dyn Embedders,
        current: Option<Product>,
        mut next: NewProduct,
        image: ImageChange,
        mode: WriteMode,
        fetched: &HashMap<String, ImageInput>,
    ) -> Result<Upserted, SearchError> {
        // The client never sets the stored-image digest: it follows from `image`.
        next.image_sha256 = None;
        let main_new = matches!(image, ImageChange::New(_));
        let mut computed: Vec<Embedding> = Vec::new();
        let mut cleared = false;
        match image {
            ImageChange::New(input) => {
                let prepared = self.prepare_image(embedders, input)?;
                next.image_sha256 = Some(prepared.sha256);
                next.image_url = prepared.source_url;
                computed.extend(image_embeddings(embedders, prepared.vectors));
            }
            ImageChange::Keep => {
                if let Some(c) = &current {
                    next.image_sha256.clone_from(&c.image_sha256);
                    next.image_url.clone_from(&c.image_url);
                }
            }
            ImageChange::Clear => {
                next.image_url = None;
                cleared = current.as_ref().is_some_and(|c| c.image_sha256.is_some() || c.image_url.is_some());
            }
        }
        let text = product_text(&next.title, &next.description);
        let text_changed = current.as_ref().is_none_or(|c| product_text(&c.title, &c.description) != text);
        // Without a text model (image-only CLIP) the product is found by its photo alone.
        if text_changed && fills(embedders, TEXT) {
            let v = embedders.embed_texts(&[&text])?.into_iter().next().ok_or_else(|| no_output("text"))?;
            computed.push(Embedding::new(TEXT, model(embedders, TEXT), v));
        }

        let key = current.as_ref().map(|c| c.key);
        // Further photos: a photo space is written whole (every photo's vector) or not at all,
        // so a write that touches the photos lists all of them.
        let photos_changed = current.as_ref().is_none_or(|c| c.images != next.images);
        let rewrite = cleared || (current.is_some() && (photos_changed || (main_new && !next.images.is_empty())));
        let stored = match (rewrite, key) {
            (true, Some(key)) => self.store.embeddings_of(key)?,
            _ => Vec::new(),
        };
        if rewrite && !main_new && !cleared {
            computed.extend(stored.iter().filter(|e| e.photo == 0 && e.space != TEXT).cloned());
        }
        if current.is_none() || rewrite {
            let further = self.further_vectors(embedders, current.as_ref(), &stored, &mut next, fetched)?;
            computed.extend(further);
        }
        let kept_text = if rewrite && !text_changed { stored.iter().find(|e| e.space == TEXT).cloned() } else { None };
        let update = match (&current, rewrite) {
            (None, _) => EmbeddingUpdate::Replace(&computed),
            (Some(_), true) => {
                computed.extend(kept_text);
                EmbeddingUpdate::Replace(&computed)
            }
            (Some(_), false) if computed.is_empty() => EmbeddingUpdate::Keep,
            (Some(_), false) => EmbeddingUpdate::Merge(&computed),
        };

        let _guard = self.write_lock.lock();
        let upserted = match (mode, &current) {
            (WriteMode::Create, _) => {
                let product = self.store.create_product(&next, &computed)?;
                Upserted { product, created: true }
            }
            // Everything above was computed from `c`: the store writes only if `c` is still the
            // stored version, in one atomic step that holds across replicas too.
            (WriteMode::Replace, Some(c)) => {
                match self.store.replace_product_if_unchanged(&next, update, c.updated_at) {
                    Err(ocular_store::StoreError::Stale(_)) => {
                        return Err(SearchError::Concurrent { id: c.id.clone() });
                    }
                    other => other?,
                }
            }
            (WriteMode::Replace, None) => self.store.put_product(&next, update)?,
        };
        let replace = matches!(update, EmbeddingUpdate::Replace(_));
        self.sync_index(upserted.product.key, &computed, replace)?;
        Ok(upserted)
    }

    /// Deletes a product and its vectors.
    pub fn delete(&self, id: &str) -> Result<(), SearchError> {
        let _guard = self.write_lock.lock();
        let key = self.store.delete_product(id)?;
        self.sync_index(key, &[], true)
    }

    /// Writes a batch of already-embedded products, each replacing its id's product and
    /// vectors (bulk import). Per-item results; the outer error means nothing was written.
    pub fn write_batch(
        &self,
        batch: &[(NewProduct, Vec<Embedding>)],
    ) -> Result<Vec<Result<Product, SearchError>>, SearchError> {
        let writes: Vec<ProductWrite<'_>> =
            batch.iter().map(|(p, e)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(e) }).collect();
        let _guard = self.write_lock.lock();
        let results = self.store.put_products(&writes)?;
        let mut out = Vec::with_capacity(results.len());
        for (result, (_, embeddings)) in results.into_iter().zip(batch) {
            out.push(match result {
                Ok(u) => self.sync_index(u.product.key, embeddings, true).map(|()| u.product),
                Err(e) => Err(e.into()),
            });
        }
        Ok(out)
    }

    /// Replaces some of a product's vectors (reindex); `remove` lists spaces whose stale vector
    /// is dropped because it cannot be recomputed.
    pub fn set_vectors(&self, key: ProductKey, vectors: &[Embedding], remove: &[&str]) -> Result<(), SearchError> {
        let _guard = self.write_lock.lock();
        if remove.is_empty() {
            self.store.set_embeddings(key, EmbeddingUpdate::Merge(vectors))?;
        } else {
            let mut kept: Vec<Embedding> = self
                .store
                .embeddings_of(key)?
                .into_iter()
                .filter(|e| !remove.contains(&e.space.as_str()) && !vectors.iter().any(|v| v.space == e.space))
                .collect();
            kept.extend_from_slice(vectors);
            self.store.set_embeddings(key, EmbeddingUpdate::Replace(&kept))?;
        }
        for (i, v) in vectors.iter().enumerate() {
            if !vectors[..i].iter().any(|o| o.space == v.space) {
                self.space(&v.space)?.apply_photos(key, &photos_of(vectors, &v.space, &v.model))?;
            }
        }
        for space in remove {
            if let Ok(index) = self.space(space) {
                index.apply(key, None)?;
            }
        }
        Ok(())
    }

    /// Applies a committed write to the indexes: `vectors` are upserted; with `replace`, the
    /// spaces without a vector in the list are removed.
    pub(crate) fn sync_index(&self, key: ProductKey, vectors: &[Embedding], replace: bool) -> Result<(), SearchError> {
        for space in &self.spaces {
            // Every photo's vector: the space's entries of the product become exactly these.
            let own = photos_of(vectors, space.space(), &space.model.model);
            if !own.is_empty() || replace {
                space.apply_photos(key, &own)?;
            }
        }
        Ok(())
    }
}

/// The (photo, vector) pairs of `vectors` in `space` made by `model`.
fn photos_of<'a>(vectors: &'a [Embedding], space: &str, model: &str) -> Vec<(u16, &'a [f32])> {
    vectors.iter().filter(|e| e.space == space && e.model == model).map(|e| (e.photo, e.vector.as_slice())).collect()
}

/// The model id of `space` in a set of embedders.
pub(crate) fn model(embedders: &dyn Embedders, space: &str) -> String {
    crate::embed::model_of(embedders.spaces(), space).map(|m| m.model.clone()).unwrap_or_default()
}

/// The stored embeddings of one photo, in the spaces the embedders fill.
pub fn image_embeddings(embedders: &dyn Embedders, v: ImageVectors) -> Vec<Embedding> {
    [(IMAGE, v.image), (IMAGE_TEXT, v.image_text)]
        .into_iter()
        .filter(|(space, _)| fills(embedders, space))
        .map(|(space, vector)| Embedding::new(space, model(embedders, space), vector))
        .collect()
}

pub(crate) fn embed_one(embedders: &dyn Embedders, image: &RgbImage) -> Result<ImageVectors, SearchError> {
    embedders.embed_images(&[image])?.into_iter().next().ok_or_else(|| no_output("image"))
}

fn no_output(what: &str) -> SearchError {
    SearchError::Model(ocular_models::ModelError::Invalid {
        model: what.to_string(),
        reason: "the model returned no embedding".into(),
    })
}

/// Whether `url` names the product's own stored photo (a product JSON sent back unchanged).
pub fn is_own_image(id: &str, url: &str) -> bool {
    url == image_path(id)
}
