//! Visual product search: features computed once, at ingest; searched from memory in
//! milliseconds.
//!
//! The service this replaces kept CLIP features of every product in RAM, ran out of memory, and
//! then recomputed every product's features on every search (1–2 s each). Here:
//!
//! - [`embed`]: the embedder interface and the default models (EfficientNet-Lite0 for photos,
//!   MiniLM for text, ConSE to put photos into the text space), replaceable by CLIP;
//! - [`Catalog`]: the service. Product writes compute vectors once and store them with the
//!   product in one transaction ([`ingest`]), then update one in-memory index per space
//!   ([`space`]); searches by photo or by text (hybrid: two vector spaces + BM25, fused by
//!   per-query normalised scores, [`fusion`]) never embed a product ([`mod@search`]);
//! - [`import`]: `ocular import` for JSON Lines, CSV and `mongoexport` files, resumable;
//! - [`follow`]: writes by other processes (`ocular import` beside a server on one SQLite
//!   file) reach the in-memory indexes within a second, through the store's change feed;
//! - [`reindex`]: recompute vectors after a model change. Vectors carry the id of the model
//!   that made them, and a space whose stored vectors come from another model refuses to search
//!   instead of ranking by meaningless cosines.
//!
//! Everything here blocks (inference, SQLite); the server calls it on blocking threads after
//! admission, the CLI on its main thread.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod catalog;
pub mod embed;
pub mod error;
pub mod follow;
mod further;
pub mod fusion;
pub mod import;
pub mod ingest;
pub mod loader;
pub mod persist;
pub mod photos;
pub mod query;
pub mod reindex;
pub mod search;
pub mod sharded;
pub mod space;

pub use catalog::{Catalog, CatalogOptions, DEFAULT_MAX_PHOTOS, SpaceStatus};
pub use embed::{EmbedderProvider, Embedders, SpaceModel};
pub use error::{Fault, SearchError};
pub use ingest::{ImageChange, ImageInput, WriteMode};
pub use loader::ImageLoader;
pub use query::{FacetCount, Facets, ProductView, SearchHit, SearchOptions, SearchResults};
pub use space::{Precision, SpaceState};
