//! The embedded SQLite backend (bundled SQLite, WAL journal).
//!
//! One writer connection behind a mutex, since SQLite serialises writers anyway, and a couple of
//! reader connections: WAL lets readers run beside the writer and each other, so a 30 ms
//! full-text query or the start-up vector stream does not hold up a product page. Readers see
//! every write committed before their query starts, so a write is visible to the next search.
//! WAL also lets `ocular` admin commands read while a server writes.
//!
//! The data operations live in one file per idea: `products`, `embeddings`, `images` and `fts`
//! (joined into `CatalogStore` by `catalog`), `analyses`, `imports`. Every write runs in one
//! `BEGIN IMMEDIATE` transaction: taking the write lock up front means a second process waits
//! on the busy timeout instead of failing when its read lock cannot be upgraded.

mod analyses;
mod catalog;
mod changes;
mod embeddings;
mod fts;
mod images;
mod imports;
mod products;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::Store;
use crate::error::StoreError;
use crate::migrations::{Migration, SQLITE};
use crate::types::ProductKey;

/// Reader connections of a file database: one per core of a small machine. Each costs a page
/// cache (2 MiB at most) and its prepared statements.
const READERS: usize = 2;

/// The SQLite [`Store`]: a file under the data directory, or memory for tests.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Empty for an in-memory database, which one connection alone can see.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// The change feed's own connection for `PRAGMA data_version` (file databases only; see
    /// `changes`).
    watch: Option<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path`. Migrations are
    /// not run here: call [`Store::migrate`], or open through [`crate::open`].
    ///
    /// A database file created here is readable by its owner only (0600), and so are the WAL
    /// and shared-memory files SQLite creates beside it with the same mode: it holds health
    /// data, and the process umask (often 022) would make it world-readable. An existing file
    /// keeps the mode its operator gave it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir { path: dir.to_path_buf(), source })?;
        }
        let created = !path.exists();
        if created {
            create_private(path).map_err(|source| StoreError::DataDir { path: path.to_path_buf(), source })?;
        }
        let open = || Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source });
        let mut store = Self::configure(open()?)?;
        for _ in 0..READERS {
            let reader = open()?;
            reader.pragma_update(None, "query_only", "ON")?;
            reader.busy_timeout(std::time::Duration::from_secs(5))?;
            reader.set_prepared_statement_cache_capacity(64);
            store.readers.push(Mutex::new(reader));
        }
        let watch = open()?;
        watch.pragma_update(None, "query_only", "ON")?;
        store.watch = Some(Mutex::new(watch));
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::configure(Connection::open_in_memory()?)
    }

    /// Sets up the writer connection (WAL is a property of the file, so it holds for readers).
    fn configure(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Analyses are health data: a deleted or purged image is overwritten with zeros rather
        // than left readable in free pages of the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        // A second process (an admin command next to the server) waits instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Enough for every statement the store prepares, so hot paths never re-parse SQL.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self { conn: Mutex::new(conn), readers: Vec::new(), next_reader: AtomicUsize::new(0), watch: None })
    }

    /// Runs `f` with the writer connection, outside any transaction (tests, maintenance).
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&mut self.conn.lock())
    }

    /// Runs `f` on a free reader (the writer for an in-memory database) in one read
    /// transaction, so the statements of one call see one snapshot (a page and its total agree).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let in_snapshot = |conn: &Connection| {
            let tx = conn.unchecked_transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        if self.readers.is_empty() {
            return in_snapshot(&self.conn.lock());
        }
        if let Some(conn) = self.readers.iter().find_map(|r| r.try_lock()) {
            return in_snapshot(&conn);
        }
        // All busy: queue on one, taking turns so waiters spread over the readers.
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        in_snapshot(&self.readers[i].lock())
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Creates an empty file only its owner may read and write (SQLite then initialises it).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Created by someone else meanwhile: theirs to own.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// SQLite keys are signed; a key beyond `i64::MAX` cannot exist, so it finds nothing.
fn sql_key(key: ProductKey) -> Option<i64> {
    i64::try_from(key.0).ok()
}

fn product_key(seq: i64) -> Result<ProductKey, StoreError> {
    u64::try_from(seq)
        .map(ProductKey)
        .map_err(|_| StoreError::Corrupt { what: "product key", detail: format!("negative rowid {seq}") })
}

/// Offsets and limits as SQL integers (pages never come near `i64::MAX`).
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back from SQL.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Runs one migration inside the caller's transaction and records it.
fn apply(tx: &Transaction<'_>, m: &Migration) -> Result<(), StoreError> {
    let err = |source| StoreError::Migration { version: m.version, name: m.name, source };
    tx.execute_batch(m.sql).map_err(err)?;
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, datetime('now'))",
        (m.version, m.name),
    )
    .map_err(err)?;
    Ok(())
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(|c| {
            let exists: bool = c.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(0);
            }
            Ok(c.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
        })
    }

    fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let known = SQLITE.last().map_or(0, |m| m.version);
        // The check and every step run in one write transaction: two processes starting on one
        // file at once serialise here and the second finds nothing left to do, and a failing
        // step leaves the schema as it was rather than half upgraded.
        self.write(|tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )?;
            let current: u32 =
                tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            if current > known {
                return Err(StoreError::SchemaTooNew { found: current, known });
            }
            let mut applied = Vec::new();
            for m in SQLITE.iter().filter(|m| m.version > current) {
                apply(tx, m)?;
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn change_feed(&self) -> Option<&dyn crate::ChangeFeed> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ocular.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 0);
        let applied = store.migrate().unwrap();
        assert_eq!(applied, SQLITE.iter().map(|m| m.version).collect::<Vec<_>>());
        assert!(store.migrate().unwrap().is_empty(), "second run applies nothing");
        drop(store);
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), SQLITE.last().unwrap().version);
        again.ping().unwrap();
    }

    #[test]
    fn analyses_stored_before_tokens_open_with_the_key_only() {
        use crate::analyses::AnalysisStore;
        let store = SqliteStore::in_memory().unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        store
            .write(|tx| {
                tx.execute_batch(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
                )?;
                for m in SQLITE.iter().filter(|m| m.version <= 4) {
                    apply(tx, m)?;
                }
                tx.execute(
                    "INSERT INTO analyses (id, created_at, input, result, timings) VALUES (?1, 0, '{}', '{}', '{}')",
                    [&id],
                )?;
                Ok(())
            })
            .unwrap();
        // Version 5 and every later one (the list grows; this test is about 5).
        let later: Vec<u32> = SQLITE.iter().map(|m| m.version).filter(|&v| v >= 5).collect();
        assert_eq!(store.migrate().unwrap(), later);
        assert_eq!(store.analysis_token_sha256(&id).unwrap(), None, "no token: only the API key opens it");
        assert_eq!(store.get_analysis(&id).unwrap().unwrap().token_sha256, None);
    }

    /// Health data: the database and its WAL are the owner's alone, whatever the umask.
    #[cfg(unix)]
    #[test]
    fn new_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocular.db");
        let store = SqliteStore::open(&path).unwrap();
        store.migrate().unwrap();
        for file in ["ocular.db", "ocular.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{file} is {mode:o}");
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let store = SqliteStore::in_memory().unwrap();
        store.migrate().unwrap();
        store.with(|c| Ok(c.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')", [])?)).unwrap();
        assert!(matches!(store.migrate(), Err(StoreError::SchemaTooNew { found: 999, .. })));
    }
}
