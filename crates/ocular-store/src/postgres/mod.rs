//! The PostgreSQL + pgvector backend, for several stateless replicas sharing one database.
//!
//! Selected by `DATABASE_URL=postgres://…` (see [`crate::open`]). The schema is SQLite's mapped
//! one to one (`migrations/postgres/`); the data operations live in one file per idea, as in
//! the SQLite backend: `products`, `embeddings`, `images` and `fts` (joined into `CatalogStore`
//! by `catalog`), `analyses`, `imports`; [`PgVectorIndex`] serves vector search from the same
//! table the store writes.
//!
//! Replicas keep no state of their own: every read goes to the database, so a write committed
//! through one replica is seen by the next statement on any other (PostgreSQL's read committed).
//! Writes that read before they write take row locks (`FOR UPDATE` on a patched product, the
//! job row when a chunk completes) or advisory locks (migrations, the first vector of a
//! (space, model), a new import job), so two replicas racing on one record serialise instead
//! of losing an update. Multi-statement reads (a page and its total) run in one
//! `REPEATABLE READ` snapshot, as SQLite's read transactions do.
//!
//! Connections come from a small pool (see `pool`), sized by [`PgOptions::pool_size`]; the
//! store is synchronous like the trait, and safe to call from any thread, async ones included.

mod analyses;
mod catalog;
mod embeddings;
mod fts;
mod images;
mod imports;
mod index;
mod pool;
mod products;
pub mod tls;
mod vector;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::IsolationLevel;

pub use index::{PgHnswOptions, PgIndexConfig, PgSearchMode, PgVectorIndex};
use pool::{Db, Pool, wait};

use crate::error::StoreError;
use crate::migrations::POSTGRES;
use crate::types::ProductKey;
use crate::{Store, redact};

/// How to connect; the defaults suit one replica with a handful of request threads.
#[derive(Debug, Clone, PartialEq)]
pub struct PgOptions {
    /// Connections this process opens at most. Every replica opens up to this many, so the
    /// database's `max_connections` must exceed `replicas × pool_size` (docs/DEPLOY.md).
    pub pool_size: usize,
    /// How long a caller waits for a free connection before [`StoreError::PoolTimeout`].
    pub pool_wait: Duration,
    /// Used when the URL sets no `connect_timeout`.
    pub connect_timeout: Duration,
    /// PostgreSQL's `statement_timeout` for every session: a statement running longer is
    /// cancelled by the server (SQLSTATE 57014) and its connection is free again. `None`
    /// leaves the server's setting (or the URL's `options=-c statement_timeout=…`) alone.
    pub statement_timeout: Option<Duration>,
    /// The HNSW search and build settings of every [`PgVectorIndex`] opened on this store
    /// (unless its [`PgIndexConfig`] overrides them).
    pub hnsw: PgHnswOptions,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 8,
            pool_wait: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
            hnsw: PgHnswOptions::default(),
        }
    }
}

impl PgOptions {
    /// The largest accepted `pool_size`.
    pub const MAX_POOL_SIZE: usize = 1000;
    /// The longest accepted `pool_wait`, in milliseconds (an hour).
    pub const MAX_POOL_WAIT_MS: u64 = 3_600_000;
    /// The longest accepted `statement_timeout`, in milliseconds (a day).
    pub const MAX_STATEMENT_TIMEOUT_MS: u64 = 86_400_000;
}

/// The PostgreSQL [`Store`]. Cheap to clone (one shared pool), so a [`PgVectorIndex`] can hold
/// one next to the server's `Arc<dyn Store>`.
#[derive(Clone)]
pub struct PgStore {
    pool: Arc<Pool>,
    hnsw: PgHnswOptions,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("pool_size", &self.pool.size()).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (a libpq-style URL; `options=-c search_path=…` selects a schema) and
    /// checks that the server answers. Migrations are not run here: call [`Store::migrate`], or
    /// open through [`crate::open`].
    pub fn connect(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let shown = redact(url);
        // `sslmode=verify-full`, `sslrootcert=…`: libpq's words, which tokio-postgres refuses.
        let (url, tls) = tls::TlsSettings::split(url)?;
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|source| StoreError::PgUrl { url: shown.clone(), source })?;
        config.ssl_mode(tls.ssl_mode());
        if config.get_application_name().is_none() {
            // Shows which sessions are ocular's in `pg_stat_activity`.
            config.application_name("ocular");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if let Some(timeout) = options.statement_timeout {
            // A startup option, so it holds from the first statement of every pooled session.
            let given = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
            config.options(format!("{given}-c statement_timeout={}", timeout.as_millis()));
        }
        let pool = Pool::new(config, tls.connector()?, shown, options.pool_size, options.pool_wait)?;
        let store = PgStore { pool: Arc::new(pool), hnsw: options.hnsw };
        // Fail at start-up, with the URL in the message, rather than on the first request.
        store.ping()?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection, each statement in its own snapshot.
    fn read<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.pool.get()?;
        f(conn.db())
    }

    /// Runs `f` in one read-only `REPEATABLE READ` transaction: its statements see one snapshot.
    fn snapshot<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        let (client, stmts) = conn.parts();
        let tx =
            wait(client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start())?;
        let out = f(Db { client: tx.client(), stmts })?;
        wait(tx.commit())?;
        Ok(out)
    }

    /// Runs `f` in one `READ COMMITTED` transaction, committed only if `f` succeeds (dropping
    /// the transaction on an error rolls it back).
    fn write<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        let (client, stmts) = conn.parts();
        let tx = wait(client.transaction())?;
        let out = f(Db { client: tx.client(), stmts })?;
        wait(tx.commit())?;
        Ok(out)
    }
}

/// Keys are `bigint`; a key beyond `i64::MAX` cannot exist, so it finds nothing.
fn sql_key(key: ProductKey) -> Option<i64> {
    i64::try_from(key.0).ok()
}

fn product_key(seq: i64) -> Result<ProductKey, StoreError> {
    u64::try_from(seq)
        .map(ProductKey)
        .map_err(|_| StoreError::Corrupt { what: "product key", detail: format!("negative key {seq}") })
}

/// Offsets, limits and line numbers as SQL integers (none comes near `i64::MAX`).
fn sql_count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// A count read back from SQL.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// PostgreSQL text cannot hold U+0000 (SQLite's can): refused up front as the caller's error,
/// rather than failing the statement (and with it a whole batch) as a database error.
fn no_nul(field: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::invalid(field, "must not contain the NUL character (U+0000)"));
    }
    Ok(())
}

/// The advisory-lock key of `name` within the current schema: replicas on one schema share
/// it, while test schemas in one database do not wait on each other.
const LOCK_KEY: &str = "hashtextextended(coalesce(current_schema(), '') || ':' || $1::text, 0)";

/// Holds the transaction-scoped advisory lock `name` until the caller's transaction ends.
fn lock(db: Db<'_>, name: &str) -> Result<(), StoreError> {
    db.query(&format!("SELECT pg_advisory_xact_lock({LOCK_KEY})"), &[&name])?;
    Ok(())
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|db| {
            let exists: bool = db.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.try_get(0)?;
            if !exists {
                return Ok(0);
            }
            let v: i32 = db.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.try_get(0)?;
            Ok(u32::try_from(v).unwrap_or(0))
        })
    }

    fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let known = POSTGRES.last().map_or(0, |m| m.version);
        // DDL is transactional in PostgreSQL: the lock, the check and every step commit
        // together. A second replica waits on the lock, then finds nothing left to do; a
        // failing step leaves the schema as it was.
        self.write(|db| {
            // `IF NOT EXISTS` notices are noise in a replica's log.
            db.batch("SET LOCAL client_min_messages = warning")?;
            lock(db, "ocular.migrate")?;
            db.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            )?;
            let current: i32 =
                db.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.try_get(0)?;
            let current = u32::try_from(current).unwrap_or(0);
            if current > known {
                return Err(StoreError::SchemaTooNew { found: current, known });
            }
            let mut applied = Vec::new();
            for m in POSTGRES.iter().filter(|m| m.version > current) {
                let err = |source| StoreError::PgMigration { version: m.version, name: m.name, source };
                wait(db.client.batch_execute(m.sql)).map_err(err)?;
                let version = i32::try_from(m.version).unwrap_or(i32::MAX);
                wait(
                    db.client
                        .execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&version, &m.name]),
                )
                .map_err(err)?;
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read(|db| db.batch("SELECT 1"))
    }

    fn as_postgres(&self) -> Option<&PgStore> {
        Some(self)
    }
}

#[cfg(test)]
mod hnsw_tests;
#[cfg(test)]
mod options_tests;

/// The PostgreSQL test server for this module's unit tests; `what` names the test.
#[cfg(test)]
fn test_server(what: &str) -> Option<String> {
    ocular_test_support::postgres_url(&format!("{what} test"))
}
