//! Bookkeeping of bulk imports, so `ocular import FILE` resumes after a crash and several
//! processes can share one file (the protocol is on [`crate::ImportStore`]).
//!
//! A job is one source file, identified by the SHA-256 of its content: importing the same bytes
//! again resumes the unfinished job instead of starting over. Records are numbered from one and
//! cut into fixed chunks, the unit a worker claims under a lease.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What `begin_import` needs to know about a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewImport {
    /// A name for people (the file name); not an identity.
    pub source: String,
    /// SHA-256 (lower-case hex) of the file's bytes: the identity of the job.
    pub source_sha256: String,
    /// How many records the file holds.
    pub total_lines: u64,
    /// Records per chunk: the unit of claiming (e.g. a few batches of embeddings).
    pub chunk_lines: u64,
}

/// An import job and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJob {
    pub id: String,
    pub source: String,
    pub source_sha256: String,
    pub total_lines: u64,
    pub chunk_lines: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when the last chunk completed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub lines_ok: u64,
    pub lines_failed: u64,
}

/// A claimed range of records, `first_line..end_line`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportChunk {
    pub job_id: String,
    pub first_line: u64,
    /// Exclusive.
    pub end_line: u64,
}

impl ImportChunk {
    pub fn lines(&self) -> std::ops::Range<u64> {
        self.first_line..self.end_line
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LineOutcome {
    Ok { product_id: String },
    Failed { error: String },
}

/// The recorded outcome of record number `line` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLine {
    pub line: u64,
    #[serde(flatten)]
    pub outcome: LineOutcome,
}

impl ImportLine {
    pub fn ok(line: u64, product_id: impl Into<String>) -> Self {
        ImportLine { line, outcome: LineOutcome::Ok { product_id: product_id.into() } }
    }

    pub fn failed(line: u64, error: impl Into<String>) -> Self {
        ImportLine { line, outcome: LineOutcome::Failed { error: error.into() } }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, LineOutcome::Ok { .. })
    }
}
