//! Backups of the embedded SQLite database: a consistent copy taken while a server serves, and
//! a restore into a data directory.
//!
//! Why `VACUUM INTO` rather than copying the file: the database is in WAL mode, so the file
//! alone misses every write still in `ocular.db-wal`, and a copy taken mid-checkpoint can be
//! torn. `VACUUM INTO` runs inside one read transaction of SQLite itself: it sees exactly one
//! committed state, never blocks the server's writer (WAL readers do not), and writes a compact
//! single-file database with no WAL to carry along. Product photos and analysis images are rows
//! of the database (see `sqlite::images`), so the copy holds them too.
//!
//! Health data lives in these files: the copy is created readable by its owner only (0600).
//! PostgreSQL deployments back up with `pg_dump` (docs/DEPLOY.md, *Backups*).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::migrations::SQLITE;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file (a backup never overwrites)")]
    Exists(PathBuf),
    #[error("{0} has a database already; pass --force to replace it (stop the server first)")]
    Occupied(PathBuf),
    #[error("{path} is not a readable ocular database")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} failed SQLite's integrity check: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("{path} has schema version {found}, newer than this ocular understands ({known}); upgrade ocular")]
    TooNew { path: PathBuf, found: u32, known: u32 },
    #[error("database error while copying")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub schema_version: u32,
    pub products: u64,
    pub analyses: u64,
    pub bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// Opens `path` read-only and checks it: SQLite's integrity check and a schema this build knows.
fn inspect(path: &Path) -> Result<Summary, BackupError> {
    let open_err = |source| BackupError::Open { path: path.to_path_buf(), source };
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(open_err)?;
    if check != "ok" {
        return Err(BackupError::Damaged { path: path.to_path_buf(), detail: check });
    }
    let version: u32 =
        c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(open_err)?;
    let known = SQLITE.iter().map(|m| m.version).max().unwrap_or(0);
    if version > known {
        return Err(BackupError::TooNew { path: path.to_path_buf(), found: version, known });
    }
    let count = |table: &str| -> u64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).map_or(0, |n| n as u64)
    };
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    Ok(Summary { schema_version: version, products: count("products"), analyses: count("analyses"), bytes })
}

fn owner_only(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
}

/// Writes a consistent copy of the database at `db` to `dest` (which must not exist), while
/// other connections keep reading and writing. The copy is checked before it is named `dest`.
pub fn backup(db: &Path, dest: &Path) -> Result<Summary, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    // The empty file first, owner-only, so the health data in it is never world-readable.
    std::fs::File::create(&partial).map_err(io(&partial))?;
    owner_only(&partial)?;
    std::fs::remove_file(&partial).map_err(io(&partial))?;
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| BackupError::Open { path: db.to_path_buf(), source })?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    let target = partial.to_str().ok_or_else(|| BackupError::Io {
        path: partial.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    c.execute("VACUUM INTO ?1", [target])?;
    owner_only(&partial)?;
    let summary = inspect(&partial)?;
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    Ok(summary)
}

/// Replaces (or creates) the database at `db` with the backup `src`. Refuses to replace an
/// existing database unless `force`; the server must not be running on it. The backup is
/// checked first and copied beside `db`, then renamed over it, so a failure leaves the old
/// database as it was. Older schemas are fine: the next open migrates them.
pub fn restore(src: &Path, db: &Path, force: bool) -> Result<Summary, BackupError> {
    let summary = inspect(src)?;
    if db.exists() && !force {
        return Err(BackupError::Occupied(db.to_path_buf()));
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let partial = db.with_extension("db.restore");
    std::fs::copy(src, &partial).map_err(io(&partial))?;
    owner_only(&partial)?;
    // The old database's WAL and shared-memory files belong to the old file: left behind,
    // SQLite would replay them onto the restored one.
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(db)(e)),
            _ => {}
        }
    }
    // The compact search index saved beside the old file (`<db>.index`) describes the old
    // catalog. Its staleness key (change-feed cursor + row count) can repeat in an older
    // backup, so a restore removes it rather than let the next start trust it.
    let mut index = db.as_os_str().to_owned();
    index.push(".index");
    match std::fs::remove_dir_all(PathBuf::from(&index)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(db)(e)),
        _ => {}
    }
    std::fs::rename(&partial, db).map_err(io(db))?;
    Ok(summary)
}
