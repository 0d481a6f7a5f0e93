//! The contract every vector index implements ([`crate::QuantizedIndex`],
//! [`crate::CompactIndex`], and `ocular-store`'s pgvector index), so one sharded index can hold
//! either in-memory kind and tests and benchmarks can hold each to the same answers.
//! Which backend serves a search space is not decided through this trait: `ocular-search`
//! chooses in-memory or pgvector once, as an explicit enum (`space.rs`), since the backends
//! differ in how they are loaded, written and filtered, not only in how they search.

use crate::IndexError;

/// A predicate over product ids (category, price range, stock...). It must be pure: an index
/// may call it for an id more than once, and skips it for ids that cannot rank anyway.
pub type Filter<'a> = &'a dyn Fn(u64) -> bool;

/// One search result: `score` is the cosine similarity (the dot product of the normalised
/// query and stored vector), in `[-1, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}

/// A mutable collection of id-addressed vectors answering top-k cosine queries.
///
/// Methods take `&self`: implementations use interior mutability so that one instance can be
/// shared behind an `Arc` by every request handler.
pub trait VectorIndex: Send + Sync {
    /// Number of components of every stored vector and query.
    fn dim(&self) -> usize;

    /// Number of stored vectors.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts the vector for `id`, replacing any previous one. The vector need not be
    /// normalised: the index compares directions only.
    fn upsert(&self, id: u64, vector: &[f32]) -> Result<(), IndexError>;

    /// Removes `id`; returns whether it was present.
    fn remove(&self, id: u64) -> bool;

    /// The `k` stored vectors most similar to `query` among those whose id passes `filter`,
    /// best first, ties broken by the smaller id. `k` already includes any pagination offset.
    /// Returns fewer than `k` hits only when fewer than `k` ids pass the filter.
    ///
    /// Fallible (unlike an in-memory lookup would need) because a query can have the wrong
    /// dimension and because out-of-process implementations can fail.
    fn search(&self, query: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<Vec<Hit>, IndexError>;

    /// Bytes of memory this index holds in the process (0 for an out-of-process index), for
    /// reporting bytes per product.
    fn memory_bytes(&self) -> usize;
}
