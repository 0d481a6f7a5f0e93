//! Vector search for ocular's visual product search.
//!
//! The Python service this replaces recomputed every product's features on each search
//! (1–2 s). Here product embeddings are stored once and searched from a compact in-memory
//! index in milliseconds: [`QuantizedIndex`] scans int8 codes (a quarter of f32's bytes),
//! rescores a shortlist at full precision and proves the result is the exact top-k.
//! [`CompactIndex`] is the one for large catalogs on small hosts: one-bit codes in memory
//! (149 B per product for ocular's three spaces instead of 2,158), f32 vectors in a mapped
//! file, and a shortlist sized by statistical error intervals, so its recall is measured
//! (`examples/bench_compact.rs`), not proven (see [`compact`]).
//!
//! [`VectorIndex`] is the contract the index kinds share: top-k cosine, ties to the smaller id,
//! filters that see ids. `ocular-search`'s sharded index holds either kind here through it,
//! and tests and benchmarks hold each kind (and `ocular-store`'s pgvector index) to it. It is
//! not where the backend is chosen: a search space picks in-memory or pgvector once, as an
//! explicit enum (`ocular-search/src/space.rs`, `Backend`), because the two differ in more than
//! this trait says (pgvector searches the store's own rows, written by the store, and filters
//! in SQL; only an in-memory index is loaded, saved and kept in step with the store).
//!
//! ```
//! use ocular_index::{QuantizedConfig, QuantizedIndex, VectorIndex};
//!
//! let index = QuantizedIndex::new(QuantizedConfig::new(3))?;
//! index.upsert(1, &[1.0, 0.0, 0.0])?;
//! index.upsert(2, &[0.6, 0.8, 0.0])?;
//! index.upsert(3, &[0.0, 0.0, 1.0])?;
//! let hits = index.search(&[1.0, 0.1, 0.0], 2, None)?;
//! assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 2]);
//! // Filters (category, price...) see ids; results still fill up to k when enough pass.
//! let odd = |id: u64| id % 2 == 1;
//! let hits = index.search(&[1.0, 0.1, 0.0], 2, Some(&odd))?;
//! assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 3]);
//! # Ok::<(), ocular_index::IndexError>(())
//! ```

// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod compact;
mod error;
pub mod kernel;
mod quantize;
mod quantized;
mod rescore;
mod search;
mod storage;
mod top_k;
mod vector_index;

pub use compact::{CompactConfig, CompactIndex, CompactStats, SnapshotError, remove_snapshot, train_centroids};
pub use error::{Fault, IndexError};
pub use kernel::Kernel;
pub use quantized::{QuantizedConfig, QuantizedIndex};
pub use rescore::{Rescore, Rescorer};
pub use search::SearchStats;
pub use vector_index::{Filter, Hit, VectorIndex};
