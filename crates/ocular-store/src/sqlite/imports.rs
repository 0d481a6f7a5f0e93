//! [`ImportStore`] for SQLite. A claim is a select-then-update inside one `BEGIN IMMEDIATE`
//! transaction, which holds the database's write lock, so two processes can never claim the same
//! chunk; PostgreSQL gets the same guarantee without blocking from `FOR UPDATE SKIP LOCKED`.

use std::ops::Range;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, count, sql_count};
use crate::StoreError;
use crate::imports::ImportStore;
use crate::types::{
    ImportChunk, ImportJob, ImportLine, LineOutcome, NewImport, Page, clamp_limit, from_micros, now, to_micros,
    validate,
};

/// Line numbers are 1-based and far below `i64::MAX`; anything above is clamped, finding nothing.
fn line_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn job(c: &Connection, id: &str) -> Result<Option<ImportJob>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT j.id, j.source, j.source_sha256, j.total_lines, j.chunk_lines, j.created_at, j.finished_at,
             (SELECT count(*) FROM import_lines l WHERE l.job_id = j.id AND l.ok = 1),
             (SELECT count(*) FROM import_lines l WHERE l.job_id = j.id AND l.ok = 0)
         FROM import_jobs j WHERE j.id = ?1",
    )?;
    let mut rows = stmt.query([id])?;
    let Some(row) = rows.next()? else { return Ok(None) };
    Ok(Some(ImportJob {
        id: row.get(0)?,
        source: row.get(1)?,
        source_sha256: row.get(2)?,
        total_lines: count(row.get(3)?),
        chunk_lines: count(row.get(4)?),
        created_at: from_micros(row.get(5)?)?,
        finished_at: row.get::<_, Option<i64>>(6)?.map(from_micros).transpose()?,
        lines_ok: count(row.get(7)?),
        lines_failed: count(row.get(8)?),
    }))
}

fn require_job(c: &Connection, id: &str) -> Result<(), StoreError> {
    let exists: bool =
        c.prepare_cached("SELECT count(*) > 0 FROM import_jobs WHERE id = ?1")?.query_row([id], |r| r.get(0))?;
    if exists { Ok(()) } else { Err(StoreError::NotFound(format!("import job {id}"))) }
}

fn line_from_row(row: &Row<'_>) -> Result<ImportLine, StoreError> {
    let line = count(row.get(0)?);
    let ok: bool = row.get(1)?;
    let outcome = if ok {
        LineOutcome::Ok { product_id: row.get::<_, Option<String>>(2)?.unwrap_or_default() }
    } else {
        LineOutcome::Failed { error: row.get::<_, Option<String>>(3)?.unwrap_or_default() }
    };
    Ok(ImportLine { line, outcome })
}

fn collect_lines(mut rows: rusqlite::Rows<'_>) -> Result<Vec<ImportLine>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(line_from_row(row)?);
    }
    Ok(out)
}

impl ImportStore for SqliteStore {
    fn begin_import(&self, source: &NewImport) -> Result<ImportJob, StoreError> {
        validate::new_import(source)?;
        self.write(|tx| {
            let open: Option<String> = tx
                .prepare_cached("SELECT id FROM import_jobs WHERE source_sha256 = ?1 AND finished_at IS NULL")?
                .query_row([&source.source_sha256], |r| r.get(0))
                .optional()?;
            let id = match open {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    let created = to_micros(now())?;
                    tx.prepare_cached(
                        "INSERT INTO import_jobs (id, source, source_sha256, total_lines, chunk_lines, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        id,
                        source.source,
                        source.source_sha256,
                        line_sql(source.total_lines),
                        line_sql(source.chunk_lines),
                        created
                    ])?;
                    let mut chunk = tx.prepare_cached(
                        "INSERT INTO import_chunks (job_id, first_line, end_line) VALUES (?1, ?2, ?3)",
                    )?;
                    let end = source.total_lines.saturating_add(1);
                    let mut first = 1;
                    while first < end {
                        let next = first.saturating_add(source.chunk_lines).min(end);
                        chunk.execute(params![id, line_sql(first), line_sql(next)])?;
                        first = next;
                    }
                    // An empty file has no chunk to complete, so it is finished at birth.
                    if source.total_lines == 0 {
                        tx.execute("UPDATE import_jobs SET finished_at = created_at WHERE id = ?1", [&id])?;
                    }
                    id
                }
            };
            job(tx, &id)?.ok_or_else(|| StoreError::NotFound(format!("import job {id}")))
        })
    }

    fn import_job(&self, job_id: &str) -> Result<Option<ImportJob>, StoreError> {
        self.read(|c| job(c, job_id))
    }

    fn claim_import_chunk(
        &self,
        job_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<ImportChunk>, StoreError> {
        validate::worker(worker)?;
        let now_us = to_micros(now())?;
        let until = now_us.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        self.write(|tx| {
            require_job(tx, job_id)?;
            let free: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT first_line, end_line FROM import_chunks
                     WHERE job_id = ?1 AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?2)
                     ORDER BY first_line LIMIT 1",
                )?
                .query_row(params![job_id, now_us], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((first, end)) = free else { return Ok(None) };
            tx.prepare_cached(
                "UPDATE import_chunks SET claimed_by = ?3, claimed_until = ?4 WHERE job_id = ?1 AND first_line = ?2",
            )?
            .execute(params![job_id, first, worker, until])?;
            Ok(Some(ImportChunk { job_id: job_id.to_string(), first_line: count(first), end_line: count(end) }))
        })
    }

    fn release_import_claims(&self, job_id: &str) -> Result<u64, StoreError> {
        self.write(|tx| {
            require_job(tx, job_id)?;
            let n = tx
                .prepare_cached(
                    "UPDATE import_chunks SET claimed_by = NULL, claimed_until = NULL
                     WHERE job_id = ?1 AND done_at IS NULL AND claimed_until IS NOT NULL",
                )?
                .execute([job_id])?;
            Ok(n as u64)
        })
    }

    fn record_import_lines(&self, job_id: &str, lines: &[ImportLine]) -> Result<(), StoreError> {
        let updated = to_micros(now())?;
        self.write(|tx| {
            require_job(tx, job_id)?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO import_lines (job_id, line, ok, product_id, error, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (job_id, line) DO UPDATE SET
                     ok = excluded.ok, product_id = excluded.product_id, error = excluded.error,
                     updated_at = excluded.updated_at",
            )?;
            for l in lines {
                let (ok, product_id, error) = match &l.outcome {
                    LineOutcome::Ok { product_id } => (true, Some(product_id.as_str()), None),
                    LineOutcome::Failed { error } => (false, None, Some(error.as_str())),
                };
                stmt.execute(params![job_id, line_sql(l.line), ok, product_id, error, updated])?;
            }
            Ok(())
        })
    }

    fn import_lines(&self, job_id: &str, lines: Range<u64>) -> Result<Vec<ImportLine>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT line, ok, product_id, error FROM import_lines
                 WHERE job_id = ?1 AND line >= ?2 AND line < ?3 ORDER BY line",
            )?;
            collect_lines(stmt.query(params![job_id, line_sql(lines.start), line_sql(lines.end)])?)
        })
    }

    fn import_failures(&self, job_id: &str, offset: usize, limit: usize) -> Result<Page<ImportLine>, StoreError> {
        let limit = clamp_limit(limit);
        self.read(|c| {
            let total: i64 = c
                .prepare_cached("SELECT count(*) FROM import_lines WHERE job_id = ?1 AND ok = 0")?
                .query_row([job_id], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT line, ok, product_id, error FROM import_lines
                 WHERE job_id = ?1 AND ok = 0 ORDER BY line LIMIT ?2 OFFSET ?3",
            )?;
            let items = collect_lines(stmt.query(params![job_id, sql_count(limit + 1), sql_count(offset)])?)?;
            Ok(Page::from_probe(items, offset, limit, Some(count(total))))
        })
    }

    fn complete_import_chunk(&self, job_id: &str, first_line: u64) -> Result<bool, StoreError> {
        let done = to_micros(now())?;
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE import_chunks SET done_at = coalesce(done_at, ?3), claimed_until = NULL
                     WHERE job_id = ?1 AND first_line = ?2",
                )?
                .execute(params![job_id, line_sql(first_line), done])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("chunk at line {first_line} of import job {job_id}")));
            }
            let remaining: i64 = tx
                .prepare_cached("SELECT count(*) FROM import_chunks WHERE job_id = ?1 AND done_at IS NULL")?
                .query_row([job_id], |r| r.get(0))?;
            if remaining > 0 {
                return Ok(false);
            }
            // Only the completion that flips `finished_at` reports true, even if completed twice.
            let flipped = tx
                .prepare_cached("UPDATE import_jobs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL")?
                .execute(params![job_id, done])?;
            Ok(flipped > 0)
        })
    }
}
