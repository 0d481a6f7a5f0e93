//! [`CatalogStore`] for PostgreSQL: transactions around the row-level code of `products`,
//! `embeddings`, `images` and `fts`.

use std::ops::ControlFlow;

use time::OffsetDateTime;

use super::products::{self, Mode};
use super::{PgStore, embeddings, fts, images, sql_key};
use crate::StoreError;
use crate::catalog::CatalogStore;
use crate::types::{
    CategoryCount, Embedding, EmbeddingRef, EmbeddingUpdate, ModelCount, NewProduct, Page, Product, ProductFilter,
    ProductKey, ProductPatch, ProductWrite, StoredImage, TextHit, Upserted, validate,
};

impl CatalogStore for PgStore {
    fn create_product(&self, product: &NewProduct, embeddings: &[Embedding]) -> Result<Product, StoreError> {
        self.write(|db| {
            let prepared = products::prepare(db, product, EmbeddingUpdate::Replace(embeddings), Mode::Create)?;
            Ok(products::commit(db, prepared)?.product)
        })
    }

    fn put_product(&self, product: &NewProduct, embeddings: EmbeddingUpdate<'_>) -> Result<Upserted, StoreError> {
        self.write(|db| products::commit(db, products::prepare(db, product, embeddings, Mode::Put)?))
    }

    fn replace_product_if_unchanged(
        &self,
        product: &NewProduct,
        embeddings: EmbeddingUpdate<'_>,
        updated_at: OffsetDateTime,
    ) -> Result<Upserted, StoreError> {
        self.write(|db| {
            products::commit(db, products::prepare(db, product, embeddings, Mode::IfUnchanged(updated_at))?)
        })
    }

    fn put_products(&self, batch: &[ProductWrite<'_>]) -> Result<Vec<Result<Upserted, StoreError>>, StoreError> {
        self.write(|db| {
            let mut out = Vec::with_capacity(batch.len());
            for w in batch {
                // A refused item is reported and skipped; a failure while writing is the
                // database's and aborts the batch (the `?`), so nothing half-written commits.
                match products::prepare(db, w.product, w.embeddings, Mode::Put) {
                    Ok(prepared) => out.push(Ok(products::commit(db, prepared)?)),
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
        self.write(|db| {
            let current =
                products::by_id_for_update(db, id)?.ok_or_else(|| StoreError::NotFound(format!("product {id}")))?;
            let next = patch.apply(&current);
            Ok(products::commit(db, products::prepare(db, &next, embeddings, Mode::Put)?)?.product)
        })
    }

    fn delete_product(&self, id: &str) -> Result<ProductKey, StoreError> {
        self.write(|db| products::delete(db, id))
    }

    fn get_product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        self.read(|db| products::by_id(db, id))
    }

    fn get_product_by_key(&self, key: ProductKey) -> Result<Option<Product>, StoreError> {
        Ok(self.get_products_by_keys(&[key])?.pop())
    }

    fn get_products_by_keys(&self, keys: &[ProductKey]) -> Result<Vec<Product>, StoreError> {
        // One round trip (`seq = ANY($1)`) for a page of search hits, reordered in memory.
        self.read(|db| products::by_keys(db, keys))
    }

    fn product_key(&self, id: &str) -> Result<Option<ProductKey>, StoreError> {
        self.read(|db| products::key_of(db, id))
    }

    fn list_products(&self, filter: &ProductFilter, offset: usize, limit: usize) -> Result<Page<Product>, StoreError> {
        self.snapshot(|db| products::list(db, filter, offset, limit))
    }

    fn product_keys(&self, filter: &ProductFilter) -> Result<Vec<ProductKey>, StoreError> {
        self.read(|db| products::keys(db, filter))
    }

    fn category_counts(&self, keys: &[ProductKey]) -> Result<Vec<CategoryCount>, StoreError> {
        self.read(|db| products::category_counts(db, keys))
    }

    fn set_embeddings(&self, key: ProductKey, update: EmbeddingUpdate<'_>) -> Result<(), StoreError> {
        let missing = || StoreError::NotFound(format!("product {key}"));
        let seq = sql_key(key).ok_or_else(missing)?;
        self.write(|db| {
            // The row lock keeps a concurrent delete from slipping between the check and the write.
            if db.query_opt("SELECT 1 FROM products WHERE seq = $1 FOR UPDATE", &[&seq])?.is_none() {
                return Err(missing());
            }
            if let EmbeddingUpdate::Merge(list) | EmbeddingUpdate::Replace(list) = update {
                validate::embeddings(list)?;
                embeddings::check_dims(db, Some(seq), list)?;
            }
            embeddings::apply(db, seq, update)
        })
    }

    fn embeddings_of(&self, key: ProductKey) -> Result<Vec<Embedding>, StoreError> {
        self.read(|db| embeddings::of(db, key))
    }

    fn for_each_embedding(
        &self,
        space: &str,
        visit: &mut dyn FnMut(EmbeddingRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.get()?;
        embeddings::for_each(&mut conn, space, visit)
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
        self.read(|db| embeddings::needing(db, space, model, after, limit))
    }

    fn search_text(&self, query: &str, filter: &ProductFilter, limit: usize) -> Result<Vec<TextHit>, StoreError> {
        self.read(|db| fts::search(db, query, filter, limit))
    }

    fn put_image(&self, bytes: &[u8], content_type: &str) -> Result<String, StoreError> {
        let sha256 = images::address(bytes, content_type)?;
        self.read(|db| images::put(db, &sha256, bytes, content_type))?;
        Ok(sha256)
    }

    fn get_image(&self, sha256: &str) -> Result<Option<StoredImage>, StoreError> {
        self.read(|db| images::get(db, sha256))
    }

    fn purge_unreferenced_images(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.read(|db| images::purge_unreferenced(db, before))
    }
}
