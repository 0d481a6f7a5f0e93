//! Storage errors, with who is at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {version} ({name}) failed")]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database schema version {found} is newer than this ocular understands ({known}); upgrade ocular")]
    SchemaTooNew { found: u32, known: u32 },
    #[error("unsupported DATABASE_URL {0}: use sqlite:PATH or postgres://")]
    UnsupportedUrl(String),
    #[error("the PostgreSQL backend is not built into this ocular yet ({0})")]
    BackendUnavailable(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
}
