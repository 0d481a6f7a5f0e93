//! Storage errors, with who is at fault.
//!
//! [`StoreError::fault`] tells the server whether an error is the caller's to fix (a 4xx: bad
//! input, a missing or duplicate record) or a runtime failure (a 5xx: the database itself).
//! Every backend maps its failures onto these variants so the server never sees a driver type
//! it would have to special-case.

use std::path::PathBuf;

/// Who caused a [`StoreError`]: decides between a 4xx and a 5xx answer upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request named something missing, duplicated or invalid; the caller can fix it.
    Input,
    /// The database, the disk or the stored data failed; retrying or an operator may help.
    Runtime,
}

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
    /// A conditional write found another version than the one it was computed from (another
    /// request or replica wrote in between, or deleted the record): read again and retry.
    #[error("{0} was changed by another request since it was read")]
    Stale(String),
    /// A value given to the store breaks a rule of the data model (the message says which).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Vectors of one (space, model) must all have the same length, or the index cannot load.
    #[error("embedding {space}/{model} has {got} dimensions, but stored ones have {expected}")]
    DimensionMismatch { space: String, model: String, expected: usize, got: usize },
    /// A JSON column could not be written or read back.
    #[error("JSON of {what} cannot be stored or read")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A stored value has another SQL type than this code wrote.
    #[error("stored value has an unexpected type")]
    Decode(#[from] rusqlite::types::FromSqlError),
    /// Stored data does not have the shape this code wrote (a damaged or foreign database).
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// `DATABASE_URL` names PostgreSQL but cannot be parsed (the URL is shown without password).
    #[error("invalid PostgreSQL URL {url}")]
    PgUrl {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to PostgreSQL at {url}")]
    PgConnect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL error")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL migration {version} ({name}) failed")]
    PgMigration {
        version: u32,
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// Every pooled connection stayed busy for the whole wait: the pool is too small for the
    /// load, or queries are stuck (see docs/DEPLOY.md on pool sizing).
    #[error("no PostgreSQL connection became free within {waited_ms} ms (pool of {size})")]
    PoolTimeout { waited_ms: u64, size: usize },
    /// The background runtime that drives PostgreSQL connections could not start or lost a task.
    #[error("PostgreSQL driver runtime failed")]
    PgRuntime(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Who is at fault, for mapping to an HTTP status.
    pub fn fault(&self) -> Fault {
        match self {
            Self::NotFound(_)
            | Self::Conflict(_)
            | Self::Stale(_)
            | Self::Invalid { .. }
            | Self::DimensionMismatch { .. } => Fault::Input,
            Self::Open { .. }
            | Self::DataDir { .. }
            | Self::Sqlite(_)
            | Self::Migration { .. }
            | Self::SchemaTooNew { .. }
            | Self::UnsupportedUrl(_)
            | Self::BackendUnavailable(_)
            | Self::Json { .. }
            | Self::Decode(_)
            | Self::Corrupt { .. }
            | Self::PgUrl { .. }
            | Self::PgConnect { .. }
            | Self::Postgres(_)
            | Self::PgMigration { .. }
            | Self::PoolTimeout { .. }
            | Self::PgRuntime(_) => Fault::Runtime,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }
}
