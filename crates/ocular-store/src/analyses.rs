//! The contract for stored skin-lesion analyses.
//!
//! The server decides the retention policy (keep images or not, for how long); the store only
//! provides the operations: insert without images, drop images older than a cut-off, drop whole
//! analyses older than a cut-off. Listings never carry image bytes.
//!
//! Who may read an analysis is the server's decision too; the store keeps what it needs for
//! it: the SHA-256 of each analysis's access token (never the token, so a copy of the database
//! opens nothing).

use time::OffsetDateTime;

use crate::StoreError;
use crate::types::{Analysis, AnalysisImage, AnalysisSummary, Page};

/// Analysis operations; a supertrait of [`crate::Store`].
pub trait AnalysisStore {
    /// Stores an analysis (with whichever images it carries). A duplicate id is a `Conflict`;
    /// an id that is not a canonical UUID is `Invalid`.
    fn insert_analysis(&self, analysis: &Analysis) -> Result<(), StoreError>;

    /// One analysis with its images; `None` for an unknown (or malformed) id.
    fn get_analysis(&self, id: &str) -> Result<Option<Analysis>, StoreError>;

    /// The SHA-256 (hex) of an analysis's access token, read without its images: `NotFound` for
    /// an unknown analysis, `None` for one stored without a token.
    fn analysis_token_sha256(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Newest first (ties broken by insertion order, newest first), without image bytes.
    fn list_analyses(&self, offset: usize, limit: usize) -> Result<Page<AnalysisSummary>, StoreError>;

    /// Deletes one analysis and its images. An unknown id is `NotFound`.
    fn delete_analysis(&self, id: &str) -> Result<(), StoreError>;

    /// One image of an analysis: `NotFound` for an unknown analysis, `None` when the analysis
    /// has no such image (never stored, or purged).
    fn analysis_image(&self, id: &str, which: AnalysisImage) -> Result<Option<Vec<u8>>, StoreError>;

    /// Attaches the images of an analysis stored without them: the server answers an analysis
    /// as soon as its numbers exist and renders the photo and overlay afterwards (issue 15).
    /// Only fills images that are still absent, so it can never overwrite one; `timings`
    /// replaces the stored timings in the same statement (they now include the render).
    /// Returns whether the analysis still exists (a delete, or the retention purge of whole
    /// analyses, may have come first, and then there is nothing to attach to).
    fn attach_analysis_images(
        &self,
        id: &str,
        thumbnail: &[u8],
        heatmap: Option<&[u8]>,
        timings: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// Removes the images of analyses created before `before`, keeping the records; returns
    /// how many analyses lost images.
    fn purge_analysis_images(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Deletes analyses created before `before`; returns how many.
    fn delete_analyses_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// [`AnalysisStore::purge_analysis_images`] for images older than `age`.
    fn purge_analysis_images_older_than(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        self.purge_analysis_images(cutoff(age))
    }

    /// [`AnalysisStore::delete_analyses_before`] for analyses older than `age`: the retention
    /// of whole analyses (`OCULAR_ANALYSIS_RETENTION_DAYS`).
    fn delete_analyses_older_than(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        self.delete_analyses_before(cutoff(age))
    }
}

/// Now minus `age`; an age beyond the calendar means "nothing is that old".
fn cutoff(age: std::time::Duration) -> OffsetDateTime {
    let age = time::Duration::try_from(age).unwrap_or(time::Duration::MAX);
    OffsetDateTime::now_utc().checked_sub(age).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
