//! [`CatalogStore`] for SQLite: transactions around the row-level code of `products`,
//! `embeddings`, `images` and `fts`.

use std::ops::ControlFlow;

use time::OffsetDateTime;

use super::products::{self, Mode};
use super::{SqliteStore, embeddings, fts, images, sql_key};
use crate::StoreError;
use crate::catalog::CatalogStore;
use crate::types::{
    CategoryCount, Embedding, EmbeddingRef, EmbeddingUpdate, ModelCount, NewProduct, Page, Product, ProductFilter,
    ProductKey, ProductPatch, ProductWrite, StoredImage, TextHit, Upserted, validate,
};

impl CatalogStore for SqliteStore {
    fn create_product(&self, product: &NewProduct, embeddings: &[Embedding]) -> Result<Product, StoreError> {
        self.write(|tx| {
            let prepared = products::prepare(tx, product, EmbeddingUpdate::Replace(embeddings), Mode::Create)?;
            Ok(products::commit(tx, prepared)?.product)
        })
    }

    fn put_product(&self, product: &NewProduct, embeddings: EmbeddingUpdate<'_>) -> Result<Upserted, StoreError> {
        self.write(|tx| products::commit(tx, products::prepare(tx, product, embeddings, Mode::Put)?))
    }

    fn replace_product_if_unchanged(
        &self,
        product: &NewProduct,
        embeddings: EmbeddingUpdate<'_>,
        updated_at: OffsetDateTime,
    ) -> Result<Upserted, StoreError> {
        let mode = Mode::IfUnchanged(crate::types::to_micros(updated_at)?);
        self.write(|tx| products::commit(tx, products::prepare(tx, product, embeddings, mode)?))
    }

    fn put_products(&self, batch: &[ProductWrite<'_>]) -> Result<Vec<Result<Upserted, StoreError>>, StoreError> {
        self.write(|tx| {
            let mut out = Vec::with_capacity(batch.len());
            for w in batch {
                // A refused item is reported and skipped; a failure while writing is the
                // database's and aborts the batch (the `?`), so nothing half-written commits.
                match products::prepare(tx, w.product, w.embeddings, Mode::Put) {
                    Ok(prepared) => out.push(Ok(products::commit(tx, prepared)?)),
                    Err(e) if e.fault() == crate::Fault::Input => out.push(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }

    fn patch_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        embeddings: EmbeddingUpdate<'_>,
    ) -> Result<Product, StoreError> {
        self.write(|tx| {
            let current = products::by_id(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("product {id}")))?;
            let next = patch.apply(&current);
            Ok(products::commit(tx, products::prepare(tx, &next, embeddings, Mode::Put)?)?.product)
        })
    }

    fn delete_product(&self, id: &str) -> Result<ProductKey, StoreError> {
        self.write(|tx| products::delete(tx, id))
    }

    fn get_product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        self.read(|c| products::by_id(c, id))
    }

    fn get_product_by_key(&self, key: ProductKey) -> Result<Option<Product>, StoreError> {
        self.read(|c| products::by_key(c, key))
    }

    fn get_products_by_keys(&self, keys: &[ProductKey]) -> Result<Vec<Product>, StoreError> {
        // Point lookups on the rowid through one cached statement: for a page of search hits
        // this is as fast as an `IN` list and keeps the caller's order without sorting.
        self.read(|c| {
            let mut out = Vec::with_capacity(keys.len());
            for &key in keys {
                if let Some(p) = products::by_key(c, key)? {
                    out.push(p);
                }
            }
            Ok(out)
        })
    }

    fn product_key(&self, id: &str) -> Result<Option<ProductKey>, StoreError> {
        self.read(|c| products::key_of(c, id))
    }

    fn list_products(&self, filter: &ProductFilter, offset: usize, limit: usize) -> Result<Page<Product>, StoreError> {
        self.read(|c| products::list(c, filter, offset, limit))
    }

    fn product_keys(&self, filter: &ProductFilter) -> Result<Vec<ProductKey>, StoreError> {
        self.read(|c| products::keys(c, filter))
    }

    fn category_counts(&self, keys: &[ProductKey]) -> Result<Vec<CategoryCount>, StoreError> {
        self.read(|c| products::category_counts(c, keys))
    }

    fn set_embeddings(&self, key: ProductKey, update: EmbeddingUpdate<'_>) -> Result<(), StoreError> {
        let missing = || StoreError::NotFound(format!("product {key}"));
        let seq = sql_key(key).ok_or_else(missing)?;
        self.write(|tx| {
            let exists: bool = tx
                .prepare_cached("SELECT count(*) > 0 FROM products WHERE seq = ?1")?
                .query_row([seq], |r| r.get(0))?;
            if !exists {
                return Err(missing());
            }
            if let EmbeddingUpdate::Merge(list) | EmbeddingUpdate::Replace(list) = update {
                validate::embeddings(list)?;
                embeddings::check_dims(tx, Some(seq), list)?;
            }
            embeddings::apply(tx, seq, update)
        })
    }

    fn embeddings_of(&self, key: ProductKey) -> Result<Vec<Embedding>, StoreError> {
        self.read(|c| embeddings::of(c, key))
    }

    fn for_each_embedding(
        &self,
        space: &str,
        visit: &mut dyn FnMut(EmbeddingRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        self.read(|c| embeddings::for_each(c, space, visit))
    }

    fn embedding_models(&self) -> Result<Vec<ModelCount>, StoreError> {
        self.read(embeddings::models)
    }

    fn products_needing_embeddings(
        &self,
        space: &str,
        model: &str,
        after: Option<ProductKey>,
        limit: usize,
    ) -> Result<Vec<Product>, StoreError> {
        self.read(|c| embeddings::needing(c, space, model, after, limit))
    }

    fn search_text(&self, query: &str, filter: &ProductFilter, limit: usize) -> Result<Vec<TextHit>, StoreError> {
        self.read(|c| fts::search(c, query, filter, limit))
    }

    fn put_image(&self, bytes: &[u8], content_type: &str) -> Result<String, StoreError> {
        let sha256 = images::address(bytes, content_type)?;
        self.write(|tx| images::put(tx, &sha256, bytes, content_type))?;
        Ok(sha256)
    }

    fn get_image(&self, sha256: &str) -> Result<Option<StoredImage>, StoreError> {
        self.read(|c| images::get(c, sha256))
    }

    fn purge_unreferenced_images(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(|tx| images::purge_unreferenced(tx, before))
    }
}
