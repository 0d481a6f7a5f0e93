//! The embedded SQLite backend (bundled SQLite, WAL journal).
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and the reads ocular makes
//! (a product page, an analysis) take microseconds, so a pool would only add memory. WAL lets
//! `ocular` admin commands read while a server writes.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::Connection;

use crate::error::StoreError;
use crate::migrations::{Migration, SQLITE};
use crate::Store;

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        Self::configure(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::configure(Connection::open_in_memory()?)
    }

    fn configure(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A second process (an admin command next to the server) waits instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// Runs `f` with the connection; the building block of every query.
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&mut self.conn.lock())
    }
}

fn apply(conn: &mut Connection, m: &Migration) -> Result<(), StoreError> {
    let err = |source| StoreError::Migration { version: m.version, name: m.name, source };
    let tx = conn.transaction().map_err(err)?;
    tx.execute_batch(m.sql).map_err(err)?;
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, datetime('now'))",
        (m.version, m.name),
    )
    .map_err(err)?;
    tx.commit().map_err(err)
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
        let current = self.schema_version()?;
        let known = SQLITE.last().map_or(0, |m| m.version);
        if current > known {
            return Err(StoreError::SchemaTooNew { found: current, known });
        }
        self.with(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )?;
            let mut applied = Vec::new();
            for m in SQLITE.iter().filter(|m| m.version > current) {
                apply(c, m)?;
                applied.push(m.version);
            }
            Ok(applied)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
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
    fn newer_schema_is_refused() {
        let store = SqliteStore::in_memory().unwrap();
        store.migrate().unwrap();
        store
            .with(|c| Ok(c.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')", [])?))
            .unwrap();
        assert!(matches!(store.migrate(), Err(StoreError::SchemaTooNew { found: 999, .. })));
    }
}
