//! Storage: products, their embeddings, analyses. SQLite by default, PostgreSQL to scale out.
//!
//! Callers hold an `Arc<dyn Store>` and never know which backend is behind it (the pattern of
//! crates.io's `storage.rs`: embedded by default, external when configured). All methods are
//! synchronous; async callers run them on `spawn_blocking`. Opening a store runs pending
//! migrations when asked to, so `ocular migrate` and `ocular serve` share one code path.
//!
//! [`Store`] is the sum of three contracts, one per idea, each in its own module:
//! [`CatalogStore`] (products, embeddings, images, text search), [`AnalysisStore`] (stored
//! skin analyses) and [`ImportStore`] (resumable bulk imports). Their methods are callable on a
//! `dyn Store` without further imports; on a concrete backend, import the sub-trait. Input
//! validation is shared ([`types`]), so every backend refuses the same things with the same
//! messages, and the crate's integration tests hold a conformance suite written against
//! `&dyn Store` that every backend must pass unchanged.
//!
//! PostgreSQL ([`postgres`]) maps the schema one to one: `seq` is a `bigint` identity column
//! (never reused, like SQLite's `AUTOINCREMENT`); timestamps `timestamptz` (both keep
//! microseconds); JSON columns `jsonb`; vectors pgvector `vector` columns in one table with a
//! partial HNSW index per (space, dimension); the FTS5 table a generated `tsvector` with weights
//! A/B/C for title/category/description over accent-folded text (no stemming, as `unicode61`);
//! an import claim `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` on `import_chunks`.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod analyses;
pub mod backup;
pub mod catalog;
pub mod changes;
pub mod error;
pub mod imports;
pub mod migrations;
pub mod postgres;
pub mod sqlite;
mod terms;
pub mod types;

use std::path::Path;
use std::sync::Arc;

pub use analyses::AnalysisStore;
pub use catalog::CatalogStore;
pub use changes::{ChangeFeed, ProductChange};
pub use error::{Fault, StoreError};
pub use imports::ImportStore;
pub use types::*;

/// Where data lives, parsed from `DATABASE_URL` or defaulted from the data directory.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…` select PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a
    /// plain path select SQLite; no URL means `DATA_DIR/ocular.db`.
    pub fn parse(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Location::Sqlite(data_dir.join("ocular.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            return Ok(Location::Sqlite(path.into()));
        }
        if url.contains("://") {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        }
        Ok(Location::Sqlite(url.into()))
    }

    /// A description safe to log (no password).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite:{}", p.display()),
            Location::Postgres(u) => redact(u),
        }
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Backend-independent storage: lifecycle here, data operations in the supertraits.
pub trait Store: CatalogStore + AnalysisStore + ImportStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// The highest migration applied.
    fn schema_version(&self) -> Result<u32, StoreError>;
    /// Runs pending migrations; returns the versions applied now.
    fn migrate(&self) -> Result<Vec<u32>, StoreError>;
    /// A cheap round trip, for readiness.
    fn ping(&self) -> Result<(), StoreError>;

    /// The PostgreSQL store behind this handle, if that is the backend: what the search
    /// service needs to build a [`postgres::PgVectorIndex`] over the same database instead of
    /// loading vectors into memory.
    fn as_postgres(&self) -> Option<&postgres::PgStore> {
        None
    }

    /// The change feed, where other processes' writes must be told to a server that keeps
    /// vectors in memory (SQLite). `None` for PostgreSQL, whose vectors are searched in the
    /// database: every replica sees every write at once (see [`changes`]).
    fn change_feed(&self) -> Option<&dyn ChangeFeed> {
        None
    }
}

/// Opens the store at `location`, running migrations first when `migrate` is set; a
/// PostgreSQL store gets the default [`postgres::PgOptions`].
pub fn open(location: &Location, migrate: bool) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, migrate, &postgres::PgOptions::default())
}

/// [`open`] with the pool and timeouts of a PostgreSQL store (`OCULAR_PG_*`, read by the
/// application's configuration; SQLite ignores them).
pub fn open_with(location: &Location, migrate: bool, pg: &postgres::PgOptions) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match location {
        Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path)?),
        Location::Postgres(url) => Arc::new(postgres::PgStore::connect(url, pg)?),
    };
    if migrate {
        let applied = store.migrate()?;
        if !applied.is_empty() {
            tracing::info!(store.backend = store.backend(), migrations = ?applied, "migrations applied");
        }
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let d = Path::new("/data");
        assert_eq!(Location::parse(None, d).unwrap(), Location::Sqlite("/data/ocular.db".into()));
        assert_eq!(Location::parse(Some("sqlite:///x.db"), d).unwrap(), Location::Sqlite("/x.db".into()));
        assert_eq!(Location::parse(Some("rel.db"), d).unwrap(), Location::Sqlite("rel.db".into()));
        let pg = Location::parse(Some("postgres://u:secret@h/db"), d).unwrap();
        assert_eq!(pg.describe(), "postgres://u:***@h/db");
        assert!(matches!(Location::parse(Some("mysql://x"), d), Err(StoreError::UnsupportedUrl(_))));
    }
}
