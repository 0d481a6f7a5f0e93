//! [`ImportStore`] for PostgreSQL, where several processes on several machines split one file.
//!
//! - A claim is one statement: `UPDATE … WHERE (job, first_line) = (SELECT … FOR UPDATE SKIP
//!   LOCKED LIMIT 1)`. Workers never wait on each other's row locks and never take the same
//!   chunk: a chunk another transaction is claiming is skipped, not waited for.
//! - Lease times come from the database's clock (`clock_timestamp()`), so machines whose
//!   clocks disagree still agree on when a lease expires.
//! - Completing a chunk locks the job row first, so when two workers finish the last two chunks
//!   at once the second sees the first's completion and exactly one of them finishes the job.
//! - Starting a job takes an advisory lock on the file's digest, so two processes starting on
//!   one file at once get the same job.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use tokio_postgres::Row;

use super::pool::Db;
use super::{PgStore, count, lock, no_nul, sql_count};
use crate::StoreError;
use crate::imports::ImportStore;
use crate::types::{ImportChunk, ImportJob, ImportLine, LineOutcome, NewImport, Page, clamp_limit, now, validate};

/// Leases are capped at this (about 100 years) so `now + lease` stays a valid timestamp.
const MAX_LEASE_MICROS: i64 = 100 * 366 * 24 * 3600 * 1_000_000;

fn job(db: Db<'_>, id: &str) -> Result<Option<ImportJob>, StoreError> {
    let Some(row) = db.query_opt(
        "SELECT j.id, j.source, j.source_sha256, j.total_lines, j.chunk_lines, j.created_at, j.finished_at,
             (SELECT count(*) FROM import_lines l WHERE l.job_id = j.id AND l.ok),
             (SELECT count(*) FROM import_lines l WHERE l.job_id = j.id AND NOT l.ok)
         FROM import_jobs j WHERE j.id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(ImportJob {
        id: row.try_get(0)?,
        source: row.try_get(1)?,
        source_sha256: row.try_get(2)?,
        total_lines: count(row.try_get(3)?),
        chunk_lines: count(row.try_get(4)?),
        created_at: row.try_get(5)?,
        finished_at: row.try_get(6)?,
        lines_ok: count(row.try_get(7)?),
        lines_failed: count(row.try_get(8)?),
    }))
}

fn require_job(db: Db<'_>, id: &str) -> Result<(), StoreError> {
    if !id.contains('\0') && db.query_opt("SELECT 1 FROM import_jobs WHERE id = $1", &[&id])?.is_some() {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("import job {id}")))
    }
}

fn line_from_row(row: &Row) -> Result<ImportLine, StoreError> {
    let line = count(row.try_get(0)?);
    let ok: bool = row.try_get(1)?;
    let outcome = if ok {
        LineOutcome::Ok { product_id: row.try_get::<_, Option<String>>(2)?.unwrap_or_default() }
    } else {
        LineOutcome::Failed { error: row.try_get::<_, Option<String>>(3)?.unwrap_or_default() }
    };
    Ok(ImportLine { line, outcome })
}

fn create_job(db: Db<'_>, source: &NewImport) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let created = now();
    db.execute(
        "INSERT INTO import_jobs (id, source, source_sha256, total_lines, chunk_lines, created_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id,
            &source.source,
            &source.source_sha256,
            &sql_count(source.total_lines),
            &sql_count(source.chunk_lines),
            &created,
            &(source.total_lines == 0).then_some(created),
        ],
    )?;
    // Every chunk in one statement: a million-line file in 64-line chunks is 15k rows, which
    // one `generate_series` writes without 15k round trips. An empty file has no chunk to
    // complete, so it was finished at birth (above).
    db.execute(
        "INSERT INTO import_chunks (job_id, first_line, end_line)
         SELECT $1, s, least(s + $2, $3 + 1) FROM generate_series(1::bigint, $3, $2) AS s",
        &[&id, &sql_count(source.chunk_lines), &sql_count(source.total_lines)],
    )?;
    Ok(id)
}

impl ImportStore for PgStore {
    fn begin_import(&self, source: &NewImport) -> Result<ImportJob, StoreError> {
        validate::new_import(source)?;
        no_nul("source", &source.source)?;
        self.write(|db| {
            lock(db, &format!("ocular.import:{}", source.source_sha256))?;
            let open: Option<String> = db
                .query_opt(
                    "SELECT id FROM import_jobs WHERE source_sha256 = $1 AND finished_at IS NULL",
                    &[&source.source_sha256],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            let id = match open {
                Some(id) => id,
                None => create_job(db, source)?,
            };
            job(db, &id)?.ok_or_else(|| StoreError::NotFound(format!("import job {id}")))
        })
    }

    fn import_job(&self, job_id: &str) -> Result<Option<ImportJob>, StoreError> {
        if job_id.contains('\0') {
            return Ok(None);
        }
        // One statement (its subqueries share its snapshot): no transaction needed.
        self.read(|db| job(db, job_id))
    }

    fn claim_import_chunk(
        &self,
        job_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<ImportChunk>, StoreError> {
        validate::worker(worker)?;
        no_nul("worker", worker)?;
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX).min(MAX_LEASE_MICROS);
        self.read(|db| {
            require_job(db, job_id)?;
            let row = db.query_opt(
                "UPDATE import_chunks c
                 SET claimed_by = $2, claimed_until = clock_timestamp() + $3 * interval '1 microsecond'
                 WHERE (c.job_id, c.first_line) = (
                     SELECT job_id, first_line FROM import_chunks
                     WHERE job_id = $1 AND done_at IS NULL
                       AND (claimed_until IS NULL OR claimed_until <= clock_timestamp())
                     ORDER BY first_line LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 RETURNING c.first_line, c.end_line",
                &[&job_id, &worker, &(lease_us as f64)],
            )?;
            row.map(|r| {
                Ok(ImportChunk {
                    job_id: job_id.to_string(),
                    first_line: count(r.try_get(0)?),
                    end_line: count(r.try_get(1)?),
                })
            })
            .transpose()
        })
    }

    fn release_import_claims(&self, job_id: &str) -> Result<u64, StoreError> {
        self.read(|db| {
            require_job(db, job_id)?;
            db.execute(
                "UPDATE import_chunks SET claimed_by = NULL, claimed_until = NULL
                 WHERE job_id = $1 AND done_at IS NULL AND claimed_until IS NOT NULL",
                &[&job_id],
            )
        })
    }

    fn record_import_lines(&self, job_id: &str, lines: &[ImportLine]) -> Result<(), StoreError> {
        // One statement over arrays instead of a round trip per line. A line given twice keeps
        // its last outcome, as a loop of upserts would (one statement may not update a row twice).
        let last: BTreeMap<u64, &LineOutcome> = lines.iter().map(|l| (l.line, &l.outcome)).collect();
        let mut numbers = Vec::with_capacity(last.len());
        let mut oks = Vec::with_capacity(last.len());
        let mut products = Vec::with_capacity(last.len());
        let mut errors = Vec::with_capacity(last.len());
        for (line, outcome) in last {
            numbers.push(sql_count(line));
            match outcome {
                LineOutcome::Ok { product_id } => {
                    oks.push(true);
                    products.push(Some(product_id.replace('\0', "\u{FFFD}")));
                    errors.push(None);
                }
                LineOutcome::Failed { error } => {
                    oks.push(false);
                    products.push(None);
                    // Error texts quote the input, which may hold anything.
                    errors.push(Some(error.replace('\0', "\u{FFFD}")));
                }
            }
        }
        self.read(|db| {
            require_job(db, job_id)?;
            db.execute(
                "INSERT INTO import_lines (job_id, line, ok, product_id, error, updated_at)
                 SELECT $1, l.line, l.ok, l.product_id, l.error, $6
                 FROM unnest($2::bigint[], $3::bool[], $4::text[], $5::text[]) AS l (line, ok, product_id, error)
                 ON CONFLICT (job_id, line) DO UPDATE SET
                     ok = excluded.ok, product_id = excluded.product_id, error = excluded.error,
                     updated_at = excluded.updated_at",
                &[&job_id, &numbers, &oks, &products, &errors, &now()],
            )?;
            Ok(())
        })
    }

    fn import_lines(&self, job_id: &str, lines: Range<u64>) -> Result<Vec<ImportLine>, StoreError> {
        if job_id.contains('\0') {
            return Ok(Vec::new());
        }
        self.read(|db| {
            db.query(
                "SELECT line, ok, product_id, error FROM import_lines
                 WHERE job_id = $1 AND line >= $2 AND line < $3 ORDER BY line",
                &[&job_id, &sql_count(lines.start), &sql_count(lines.end)],
            )?
            .iter()
            .map(line_from_row)
            .collect()
        })
    }

    fn import_failures(&self, job_id: &str, offset: usize, limit: usize) -> Result<Page<ImportLine>, StoreError> {
        let limit = clamp_limit(limit);
        if job_id.contains('\0') {
            return Ok(Page { items: Vec::new(), next_offset: None, total: Some(0) });
        }
        self.snapshot(|db| {
            let total: i64 = db
                .query_one("SELECT count(*) FROM import_lines WHERE job_id = $1 AND NOT ok", &[&job_id])?
                .try_get(0)?;
            let items = db
                .query(
                    "SELECT line, ok, product_id, error FROM import_lines
                     WHERE job_id = $1 AND NOT ok ORDER BY line LIMIT $2 OFFSET $3",
                    &[&job_id, &sql_count(limit + 1), &sql_count(offset)],
                )?
                .iter()
                .map(line_from_row)
                .collect::<Result<_, _>>()?;
            Ok(Page::from_probe(items, offset, limit, Some(count(total))))
        })
    }

    fn complete_import_chunk(&self, job_id: &str, first_line: u64) -> Result<bool, StoreError> {
        let missing = || StoreError::NotFound(format!("chunk at line {first_line} of import job {job_id}"));
        if job_id.contains('\0') {
            return Err(missing());
        }
        self.write(|db| {
            // Serialises completions of one job (see the module docs); claims are not blocked,
            // as they lock chunk rows only.
            if db.query_opt("SELECT 1 FROM import_jobs WHERE id = $1 FOR UPDATE", &[&job_id])?.is_none() {
                return Err(missing());
            }
            let n = db.execute(
                "UPDATE import_chunks SET done_at = coalesce(done_at, clock_timestamp()), claimed_until = NULL
                 WHERE job_id = $1 AND first_line = $2",
                &[&job_id, &sql_count(first_line)],
            )?;
            if n == 0 {
                return Err(missing());
            }
            let remaining: bool = db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM import_chunks WHERE job_id = $1 AND done_at IS NULL)",
                    &[&job_id],
                )?
                .try_get(0)?;
            if remaining {
                return Ok(false);
            }
            // Only the completion that flips `finished_at` reports true, even if completed twice.
            let flipped = db.execute(
                "UPDATE import_jobs SET finished_at = clock_timestamp() WHERE id = $1 AND finished_at IS NULL",
                &[&job_id],
            )?;
            Ok(flipped > 0)
        })
    }
}
