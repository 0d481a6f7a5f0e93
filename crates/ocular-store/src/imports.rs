//! The contract for resumable, shareable bulk imports.
//!
//! A job is one source file, identified by the SHA-256 of its bytes, cut into chunks of records
//! (numbered from 1). Workers claim chunks under a lease, so a crashed worker's chunk returns to
//! the pool; delivery is at least once, which is harmless because imports write products by id.
//! The protocol, for one or many workers:
//! 1. `begin_import` with the file's digest: returns the unfinished job for those bytes, or a
//!    new one with its chunks;
//! 2. loop: `claim_import_chunk` → skip the lines `import_lines` reports `ok` → write products
//!    → `record_import_lines` → `complete_import_chunk`; stop when no chunk is left;
//! 3. report from `import_job` (counts) and `import_failures`.

use std::ops::Range;
use std::time::Duration;

use crate::StoreError;
use crate::types::{ImportChunk, ImportJob, ImportLine, NewImport, Page};

/// Import bookkeeping; a supertrait of [`crate::Store`].
pub trait ImportStore {
    /// Resumes the unfinished job for `source.source_sha256`, or creates a job and its chunks.
    /// A resumed job keeps its own `total_lines` and `chunk_lines`.
    fn begin_import(&self, source: &NewImport) -> Result<ImportJob, StoreError>;

    /// A job with its counts; `None` if unknown.
    fn import_job(&self, job_id: &str) -> Result<Option<ImportJob>, StoreError>;

    /// Claims the first chunk that is neither done nor held by a live lease, for `lease`.
    /// `None` when every remaining chunk is done or held. On PostgreSQL: `FOR UPDATE SKIP LOCKED`.
    fn claim_import_chunk(
        &self,
        job_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<ImportChunk>, StoreError>;

    /// Drops every lease of a job, so a single importer restarted after a crash takes the
    /// crashed run's chunks at once instead of waiting for their leases to expire.
    fn release_import_claims(&self, job_id: &str) -> Result<u64, StoreError>;

    /// Records outcomes (a later outcome of the same line replaces the earlier one, so a retried
    /// failure can become ok). An unknown job is `NotFound`.
    fn record_import_lines(&self, job_id: &str, lines: &[ImportLine]) -> Result<(), StoreError>;

    /// The recorded outcomes of lines in `lines`, ascending: which of a chunk are done.
    fn import_lines(&self, job_id: &str, lines: Range<u64>) -> Result<Vec<ImportLine>, StoreError>;

    /// A page of the failed lines, ascending, for the import summary.
    fn import_failures(&self, job_id: &str, offset: usize, limit: usize) -> Result<Page<ImportLine>, StoreError>;

    /// Marks a chunk done (by its `first_line`); returns true when that finished the whole job.
    fn complete_import_chunk(&self, job_id: &str, first_line: u64) -> Result<bool, StoreError>;
}
