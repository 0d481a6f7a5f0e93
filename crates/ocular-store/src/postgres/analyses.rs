//! [`AnalysisStore`] for PostgreSQL. JSON documents are `jsonb`; the images nullable `bytea`
//! columns, read only by the queries that need them (`IS NOT NULL` does not fetch a TOASTed
//! value).

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::pool::Db;
use super::{PgStore, count, sql_count};
use crate::StoreError;
use crate::analyses::AnalysisStore;
use crate::types::{Analysis, AnalysisImage, AnalysisSummary, Page, clamp_limit, validate};

/// Reads `id, created_at, input, result, timings` starting at column 0.
fn summary_from_row(row: &Row, has_thumbnail: bool, has_heatmap: bool) -> Result<AnalysisSummary, StoreError> {
    Ok(AnalysisSummary {
        id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        input: row.try_get(2)?,
        result: row.try_get(3)?,
        timings: row.try_get(4)?,
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

/// `jsonb` refuses the escaped NUL character that `serde_json` writes for U+0000.
fn check_json(what: &'static str, v: &serde_json::Value) -> Result<(), StoreError> {
    let text = serde_json::to_string(v).map_err(|source| StoreError::Json { what, source })?;
    if text.contains("\\u0000") {
        return Err(StoreError::invalid(what, "must not contain the NUL character (U+0000)"));
    }
    Ok(())
}

fn get(db: Db<'_>, id: &str) -> Result<Option<Analysis>, StoreError> {
    let Some(row) = db.query_opt(
        "SELECT id, created_at, input, result, timings, thumbnail_jpeg, heatmap_jpeg, token_sha256
         FROM analyses WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let s = summary_from_row(&row, false, false)?;
    Ok(Some(Analysis {
        id: s.id,
        created_at: s.created_at,
        input: s.input,
        result: s.result,
        timings: s.timings,
        token_sha256: row.try_get(7)?,
        thumbnail_jpeg: row.try_get(5)?,
        heatmap_jpeg: row.try_get(6)?,
    }))
}

fn list(db: Db<'_>, offset: usize, limit: usize) -> Result<Page<AnalysisSummary>, StoreError> {
    let limit = clamp_limit(limit);
    let total: i64 = db.query_one("SELECT count(*) FROM analyses", &[])?.try_get(0)?;
    let rows = db.query(
        "SELECT id, created_at, input, result, timings, thumbnail_jpeg IS NOT NULL, heatmap_jpeg IS NOT NULL
         FROM analyses ORDER BY created_at DESC, seq DESC LIMIT $1 OFFSET $2",
        &[&sql_count(limit + 1), &sql_count(offset)],
    )?;
    let items = rows.iter().map(|r| summary_from_row(r, r.try_get(5)?, r.try_get(6)?)).collect::<Result<_, _>>()?;
    Ok(Page::from_probe(items, offset, limit, Some(count(total))))
}

/// Ids are canonical UUIDs when stored; anything else (a NUL included) finds nothing.
fn plausible_id(id: &str) -> bool {
    !id.contains('\0')
}

impl AnalysisStore for PgStore {
    fn insert_analysis(&self, a: &Analysis) -> Result<(), StoreError> {
        validate::analysis(a)?;
        check_json("analysis input", &a.input)?;
        check_json("analysis result", &a.result)?;
        check_json("analysis timings", &a.timings)?;
        self.read(|db| {
            let inserted = db.execute(
                "INSERT INTO analyses
                     (id, created_at, input, result, timings, thumbnail_jpeg, heatmap_jpeg, token_sha256)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                &[
                    &a.id,
                    &a.created_at,
                    &a.input,
                    &a.result,
                    &a.timings,
                    &a.thumbnail_jpeg,
                    &a.heatmap_jpeg,
                    &a.token_sha256,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("analysis {}", a.id)));
            }
            Ok(())
        })
    }

    fn get_analysis(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        self.read(|db| get(db, id))
    }

    fn analysis_token_sha256(&self, id: &str) -> Result<Option<String>, StoreError> {
        let found = if plausible_id(id) {
            self.read(|db| {
                db.query_opt("SELECT token_sha256 FROM analyses WHERE id = $1", &[&id])?
                    .map(|r| r.try_get::<_, Option<String>>(0))
                    .transpose()
                    .map_err(StoreError::from)
            })?
        } else {
            None
        };
        found.ok_or_else(|| StoreError::NotFound(format!("analysis {id}")))
    }

    fn list_analyses(&self, offset: usize, limit: usize) -> Result<Page<AnalysisSummary>, StoreError> {
        self.snapshot(|db| list(db, offset, limit))
    }

    fn delete_analysis(&self, id: &str) -> Result<(), StoreError> {
        let deleted = plausible_id(id) && self.read(|db| db.execute("DELETE FROM analyses WHERE id = $1", &[&id]))? > 0;
        if deleted { Ok(()) } else { Err(StoreError::NotFound(format!("analysis {id}"))) }
    }

    fn analysis_image(&self, id: &str, which: AnalysisImage) -> Result<Option<Vec<u8>>, StoreError> {
        let column = image_column(which);
        let found = if plausible_id(id) {
            self.read(|db| {
                db.query_opt(&format!("SELECT {column} FROM analyses WHERE id = $1"), &[&id])?
                    .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
                    .transpose()
                    .map_err(StoreError::from)
            })?
        } else {
            None
        };
        found.ok_or_else(|| StoreError::NotFound(format!("analysis {id}")))
    }

    fn attach_analysis_images(
        &self,
        id: &str,
        thumbnail: &[u8],
        heatmap: Option<&[u8]>,
        timings: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        if !plausible_id(id) {
            return Ok(false);
        }
        check_json("analysis timings", timings)?;
        let n = self.read(|db| {
            db.execute(
                "UPDATE analyses SET thumbnail_jpeg = COALESCE(thumbnail_jpeg, $2),
                                     heatmap_jpeg = COALESCE(heatmap_jpeg, $3),
                                     timings = $4
                 WHERE id = $1",
                &[&id, &thumbnail, &heatmap, timings],
            )
        })?;
        Ok(n > 0)
    }

    fn purge_analysis_images(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.read(|db| {
            db.execute(
                "UPDATE analyses SET thumbnail_jpeg = NULL, heatmap_jpeg = NULL
                 WHERE created_at < $1 AND (thumbnail_jpeg IS NOT NULL OR heatmap_jpeg IS NOT NULL)",
                &[&before],
            )
        })
    }

    fn delete_analyses_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.read(|db| db.execute("DELETE FROM analyses WHERE created_at < $1", &[&before]))
    }
}
