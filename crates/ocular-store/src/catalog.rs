//! The product catalog contract: products, their embeddings, uploaded images, full-text search.
//!
//! Embeddings are computed once, at ingest, and stored next to the product in the same
//! transaction: the Python service this replaces recomputed every product's features on every
//! search. A product write and its embeddings commit together, so a crash never leaves a product
//! without features or features without their product.
//!
//! Semantics every backend keeps (the conformance suite checks them):
//! - a [`ProductKey`] is assigned at creation, kept by replace and patch, never reused;
//! - listings are ordered by key (creation order), so offset pages have neither duplicates nor
//!   gaps while products are only added;
//! - deleting a product deletes its embeddings and its full-text entry, and its photo when no
//!   other product shows it; replacing a photo deletes the old one the same way;
//! - one vector per (product, space); all vectors of one (space, model) have one length;
//! - a product's `image_sha256` must name an image stored with `put_image` (else `Invalid`);
//! - text queries are data, never syntax: any string is a valid query.

use std::ops::ControlFlow;

use time::OffsetDateTime;

use crate::StoreError;
use crate::types::{
    CategoryCount, Embedding, EmbeddingRef, EmbeddingUpdate, ModelCount, NewProduct, Page, Product, ProductFilter,
    ProductKey, ProductPatch, ProductWrite, StoredImage, TextHit, Upserted,
};

/// Catalog operations; a supertrait of [`crate::Store`].
pub trait CatalogStore {
    /// Creates a product with its embeddings. An existing id is a [`StoreError::Conflict`].
    fn create_product(&self, product: &NewProduct, embeddings: &[Embedding]) -> Result<Product, StoreError>;

    /// Creates or replaces (PUT) a product; a replace keeps its key and `created_at`.
    fn put_product(&self, product: &NewProduct, embeddings: EmbeddingUpdate<'_>) -> Result<Upserted, StoreError>;

    /// Replaces a product only while it is still the version whose `updated_at` the caller read
    /// (compare-and-set, atomic across processes and replicas): of two writers that read one
    /// version, one wins and the other gets [`StoreError::Stale`], as does a write to a product
    /// deleted meanwhile. Every write moves `updated_at` forward, so it is a version.
    fn replace_product_if_unchanged(
        &self,
        product: &NewProduct,
        embeddings: EmbeddingUpdate<'_>,
        updated_at: OffsetDateTime,
    ) -> Result<Upserted, StoreError>;

    /// Creates or replaces many products in one transaction (bulk import). Each item is
    /// validated first: an invalid item gets its own error and is not written, the valid ones
    /// are; the outer error means nothing was written.
    fn put_products(&self, batch: &[ProductWrite<'_>]) -> Result<Vec<Result<Upserted, StoreError>>, StoreError>;

    /// Applies a PATCH (see [`ProductPatch::apply`]). A missing id is [`StoreError::NotFound`].
    fn patch_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        embeddings: EmbeddingUpdate<'_>,
    ) -> Result<Product, StoreError>;

    /// Deletes a product, its embeddings and its text index entry; returns its key so the
    /// caller can drop it from a vector index. A missing id is [`StoreError::NotFound`].
    fn delete_product(&self, id: &str) -> Result<ProductKey, StoreError>;

    fn get_product(&self, id: &str) -> Result<Option<Product>, StoreError>;

    fn get_product_by_key(&self, key: ProductKey) -> Result<Option<Product>, StoreError>;

    /// The products with these keys, in the order given, skipping unknown keys: turns vector
    /// search hits into products in one round trip.
    fn get_products_by_keys(&self, keys: &[ProductKey]) -> Result<Vec<Product>, StoreError>;

    /// The key of a product id.
    fn product_key(&self, id: &str) -> Result<Option<ProductKey>, StoreError>;

    /// A page of products passing `filter`, in key order, with the total count.
    fn list_products(&self, filter: &ProductFilter, offset: usize, limit: usize) -> Result<Page<Product>, StoreError>;

    /// The keys of all products passing `filter`, ascending: the allow-list a vector search uses
    /// to apply category and price filters.
    fn product_keys(&self, filter: &ProductFilter) -> Result<Vec<ProductKey>, StoreError>;

    /// How many of the products with these keys are in each category, most first (ties by
    /// name, bytewise): the facet counts of a search over its ranked candidates. Products
    /// without a category are not counted, unknown keys are skipped, a repeated key counts
    /// once. One query, whatever the number of keys.
    fn category_counts(&self, keys: &[ProductKey]) -> Result<Vec<CategoryCount>, StoreError>;

    /// Changes a product's embeddings alone (reindexing). A missing key is `NotFound`.
    fn set_embeddings(&self, key: ProductKey, update: EmbeddingUpdate<'_>) -> Result<(), StoreError>;

    /// The embeddings of one product, ordered by space.
    fn embeddings_of(&self, key: ProductKey) -> Result<Vec<Embedding>, StoreError>;

    /// Streams every vector of `space` in key order to `visit`, which may stop early with
    /// `ControlFlow::Break`. Nothing is materialised: one buffer is reused for every row, so
    /// loading 100k × 1280 floats needs 5 KiB, not 512 MB. Returns how many rows were visited.
    /// The SQLite backend holds its connection while streaming (about 0.2 s per 100k 1280-d
    /// vectors): call it at start-up or from a background task, not on a request path, and
    /// never call the store from inside `visit` (it would wait on itself).
    fn for_each_embedding(
        &self,
        space: &str,
        visit: &mut dyn FnMut(EmbeddingRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, StoreError>;

    /// Vector counts per (space, model, dim): more than one model in a space means a reindex is
    /// due, and the server must not mix them in one index.
    fn embedding_models(&self) -> Result<Vec<ModelCount>, StoreError>;

    /// Products after `after` (exclusive) that have no `space` vector made by `model`, in key
    /// order, at most `limit`: the work list of `ocular reindex`. Paging by key means a product
    /// that cannot be embedded (no image) does not come back forever.
    fn products_needing_embeddings(
        &self,
        space: &str,
        model: &str,
        after: Option<ProductKey>,
        limit: usize,
    ) -> Result<Vec<Product>, StoreError>;

    /// Full-text search over title, description and category, best first, at most `limit`
    /// hits (clamped to [`crate::MAX_PAGE_LIMIT`]). Every word of `query` is searched as a
    /// literal term (no operators); a product matching more and rarer words ranks higher. A
    /// query without words returns nothing.
    fn search_text(&self, query: &str, filter: &ProductFilter, limit: usize) -> Result<Vec<TextHit>, StoreError>;

    /// Stores an uploaded image under the SHA-256 of its bytes and returns that digest.
    /// Storing the same bytes again is a no-op. Images live in the database, not in files, so
    /// replicas sharing a database share images and a backup is one file.
    fn put_image(&self, bytes: &[u8], content_type: &str) -> Result<String, StoreError>;

    fn get_image(&self, sha256: &str) -> Result<Option<StoredImage>, StoreError>;

    /// Deletes images stored before `before` that no product references; returns how many.
    /// The cut-off spares an image uploaded just before the product that will reference it.
    fn purge_unreferenced_images(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
