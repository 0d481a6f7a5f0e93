//! The data model shared by every backend: what callers write and what they read back.
//!
//! These types are plain data with serde derives so the server can return them as JSON and the
//! importer can read them from files. Validation lives here too (module `validate`), run by every
//! backend before it writes, so SQLite and PostgreSQL refuse exactly the same inputs.

mod analysis;
mod import;
mod product;
pub(crate) mod validate;
pub(crate) use product::sort_counts;

pub use analysis::{Analysis, AnalysisImage, AnalysisSummary};
pub use import::{ImportChunk, ImportJob, ImportLine, LineOutcome, NewImport};
pub use product::{
    AttributeCondition, AttributeRange, CategoryCount, Embedding, EmbeddingRef, EmbeddingUpdate, MAX_ATTRIBUTE_DEPTH,
    MAX_ATTRIBUTE_FILTERS, MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_PHOTOS, ModelCount, NewProduct, Product,
    ProductFilter, ProductImage, ProductKey, ProductPatch, ProductWrite, StoredImage, TextHit, Upserted, merge_patch,
};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::StoreError;

/// The most items one page may hold; larger `limit`s are clamped to it.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// One page of a listing with offset pagination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The offset of the next page, or `None` on the last page.
    pub next_offset: Option<usize>,
    /// How many items the whole listing has, when the backend counted them.
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with `limit + 1`: the extra row only proves there is more.
    pub(crate) fn from_probe(mut items: Vec<T>, offset: usize, limit: usize, total: Option<u64>) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next_offset = more.then_some(offset + items.len());
        Page { items, next_offset, total }
    }
}

/// `limit` as the store applies it: at least 1 (a zero limit would loop a pager forever) and at
/// most [`MAX_PAGE_LIMIT`].
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE_LIMIT)
}

/// Timestamps are kept at microsecond precision, the precision of PostgreSQL's `timestamptz`,
/// so a value reads back identical from either backend.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// Now, in UTC, at the stored precision.
pub(crate) fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

/// Microseconds since the Unix epoch, the integer form timestamps take in SQLite.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos() / 1000)
        .map_err(|_| StoreError::invalid("timestamp", format!("{t} is out of range")))
}

pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| StoreError::Corrupt { what: "timestamp", detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_truncate() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let us = to_micros(t).unwrap();
        assert_eq!(us, 1_700_000_000_123_456);
        assert_eq!(from_micros(us).unwrap(), truncate_to_micros(t));
        assert_eq!(truncate_to_micros(t).nanosecond(), 123_456_000);
    }

    #[test]
    fn pages_from_probe() {
        let p = Page::from_probe(vec![1, 2, 3], 10, 2, Some(13));
        assert_eq!((p.items, p.next_offset), (vec![1, 2], Some(12)));
        let last = Page::from_probe(vec![1], 12, 2, Some(13));
        assert_eq!(last.next_offset, None);
        assert_eq!(clamp_limit(0), 1);
        assert_eq!(clamp_limit(5000), MAX_PAGE_LIMIT);
    }
}
