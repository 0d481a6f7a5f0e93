//! [`AnalysisStore`] for SQLite. JSON documents are TEXT columns (PostgreSQL: `jsonb`); the
//! images are nullable BLOB columns read only by the queries that need them.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use time::OffsetDateTime;

use super::{SqliteStore, count, sql_count};
use crate::StoreError;
use crate::analyses::AnalysisStore;
use crate::types::{Analysis, AnalysisImage, AnalysisSummary, Page, clamp_limit, from_micros, to_micros, validate};

fn to_json(what: &'static str, v: &Value) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Json { what, source })
}

fn from_json(what: &'static str, row: &Row<'_>, idx: usize) -> Result<Value, StoreError> {
    let text = row.get_ref(idx)?.as_str()?;
    serde_json::from_str(text).map_err(|source| StoreError::Json { what, source })
}

/// Reads `id, created_at, input, result, timings` starting at column 0.
fn summary_from_row(row: &Row<'_>, has_thumbnail: bool, has_heatmap: bool) -> Result<AnalysisSummary, StoreError> {
    Ok(AnalysisSummary {
        id: row.get(0)?,
        created_at: from_micros(row.get(1)?)?,
        input: from_json("analysis input", row, 2)?,
        result: from_json("analysis result", row, 3)?,
        timings: from_json("analysis timings", row, 4)?,
        has_thumbnail,
        has_heatmap,
    })
}

fn image_column(which: AnalysisImage) -> &'static str {
    match which {
        AnalysisImage::Thumbnail => "thumbnail_jpeg",
        AnalysisImage::Heatmap => "heatmap_jpeg",
    }
}

fn get(c: &Connection, id: &str) -> Result<Option<Analysis>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, created_at, input, result, timings, thumbnail_jpeg, heatmap_jpeg, token_sha256
         FROM analyses WHERE id = ?1",
    )?;
    let mut rows = stmt.query([id])?;
    let Some(row) = rows.next()? else { return Ok(None) };
    let s = summary_from_row(row, false, false)?;
    Ok(Some(Analysis {
        id: s.id,
        created_at: s.created_at,
        input: s.input,
        result: s.result,
        timings: s.timings,
        token_sha256: row.get(7)?,
        thumbnail_jpeg: row.get(5)?,
        heatmap_jpeg: row.get(6)?,
    }))
}

fn list(c: &Connection, offset: usize, limit: usize) -> Result<Page<AnalysisSummary>, StoreError> {
    let limit = clamp_limit(limit);
    let total: i64 = c.prepare_cached("SELECT count(*) FROM analyses")?.query_row([], |r| r.get(0))?;
    // `IS NOT NULL` reads the column type from the record header, not the image bytes.
    let mut stmt = c.prepare_cached(
        "SELECT id, created_at, input, result, timings, thumbnail_jpeg IS NOT NULL, heatmap_jpeg IS NOT NULL
         FROM analyses ORDER BY created_at DESC, seq DESC LIMIT ?1 OFFSET ?2",
    )?;
    let mut rows = stmt.query(params![sql_count(limit + 1), sql_count(offset)])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(summary_from_row(row, row.get(5)?, row.get(6)?)?);
    }
    Ok(Page::from_probe(items, offset, limit, Some(count(total))))
}

impl SqliteStore {
    /// After health data is deleted: `secure_delete` zeroes freed pages in the database file,
    /// but the write-ahead log still holds earlier copies of those pages until it is
    /// checkpointed and reset. A truncating checkpoint copies the zeroed pages into the file
    /// and empties the log. Best effort: a reader in the middle of a snapshot keeps the log
    /// for now, and the next delete (or SQLite's automatic checkpoints) finishes the job.
    fn forget_deleted_pages(&self) {
        let done = self.with(|c| Ok(c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))?));
        if let Err(e) = done {
            tracing::debug!(error = %e, "checkpoint after deleting health data failed");
        }
    }
}

impl AnalysisStore for SqliteStore {
    fn insert_analysis(&self, a: &Analysis) -> Result<(), StoreError> {
        validate::analysis(a)?;
        let row = (
            to_micros(a.created_at)?,
            to_json("analysis input", &a.input)?,
            to_json("analysis result", &a.result)?,
            to_json("analysis timings", &a.timings)?,
        );
        self.write(|tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO analyses
                         (id, created_at, input, result, timings, thumbnail_jpeg, heatmap_jpeg, token_sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![a.id, row.0, row.1, row.2, row.3, a.thumbnail_jpeg, a.heatmap_jpeg, a.token_sha256])?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("analysis {}", a.id)));
            }
            Ok(())
        })
    }

    fn get_analysis(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        self.read(|c| get(c, id))
    }

    fn analysis_token_sha256(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            let found: Option<Option<String>> = c
                .prepare_cached("SELECT token_sha256 FROM analyses WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            found.ok_or_else(|| StoreError::NotFound(format!("analysis {id}")))
        })
    }

    fn list_analyses(&self, offset: usize, limit: usize) -> Result<Page<AnalysisSummary>, StoreError> {
        self.read(|c| list(c, offset, limit))
    }

    fn delete_analysis(&self, id: &str) -> Result<(), StoreError> {
        self.write(|tx| match tx.prepare_cached("DELETE FROM analyses WHERE id = ?1")?.execute([id])? {
            0 => Err(StoreError::NotFound(format!("analysis {id}"))),
            _ => Ok(()),
        })?;
        self.forget_deleted_pages();
        Ok(())
    }

    fn analysis_image(&self, id: &str, which: AnalysisImage) -> Result<Option<Vec<u8>>, StoreError> {
        let column = image_column(which);
        self.read(|c| {
            let found: Option<Option<Vec<u8>>> = c
                .prepare_cached(&format!("SELECT {column} FROM analyses WHERE id = ?1"))?
                .query_row([id], |r| r.get(0))
                .optional()?;
            found.ok_or_else(|| StoreError::NotFound(format!("analysis {id}")))
        })
    }

    fn attach_analysis_images(
        &self,
        id: &str,
        thumbnail: &[u8],
        heatmap: Option<&[u8]>,
        timings: &Value,
    ) -> Result<bool, StoreError> {
        let timings = to_json("analysis timings", timings)?;
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE analyses SET thumbnail_jpeg = COALESCE(thumbnail_jpeg, ?2),
                                         heatmap_jpeg = COALESCE(heatmap_jpeg, ?3),
                                         timings = ?4
                     WHERE id = ?1",
                )?
                .execute(params![id, thumbnail, heatmap, timings])?;
            Ok(n > 0)
        })
    }

    fn purge_analysis_images(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let cutoff = to_micros(before)?;
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE analyses SET thumbnail_jpeg = NULL, heatmap_jpeg = NULL
                     WHERE created_at < ?1 AND (thumbnail_jpeg IS NOT NULL OR heatmap_jpeg IS NOT NULL)",
                )?
                .execute([cutoff])?;
            Ok(n as u64)
        })
        .inspect(|&n| {
            if n > 0 {
                self.forget_deleted_pages();
            }
        })
    }

    fn delete_analyses_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let cutoff = to_micros(before)?;
        let n = self.write(|tx| {
            Ok(tx.prepare_cached("DELETE FROM analyses WHERE created_at < ?1")?.execute([cutoff])? as u64)
        })?;
        if n > 0 {
            self.forget_deleted_pages();
        }
        Ok(n)
    }
}
