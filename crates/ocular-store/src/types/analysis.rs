//! Stored skin-lesion analyses: what was asked, what the model answered, and (if the operator
//! keeps them) the images shown with the answer.
//!
//! These are health data, so the images are separable from the record: they can be left out at
//! insert or purged later while the probabilities stay for the user's history.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::now;

/// One analysis with its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// A UUID (v4 when made by [`Analysis::new`]), hyphenated lower case.
    pub id: String,
    /// Stored at microsecond precision.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The request: age, sex, location, force.
    pub input: Value,
    /// The answer: probabilities, prediction, input check, Grad-CAM grid.
    pub result: Value,
    /// Milliseconds per stage.
    pub timings: Value,
    /// SHA-256 (64 lower-case hex digits) of the capability token that lets the person who
    /// made this analysis read and delete it; the token itself is never stored. `None` for
    /// analyses stored before tokens existed: only the API key opens those.
    #[serde(skip)]
    pub token_sha256: Option<String>,
    /// Binary data has no place in JSON; it is served by its own route.
    #[serde(skip)]
    pub thumbnail_jpeg: Option<Vec<u8>>,
    #[serde(skip)]
    pub heatmap_jpeg: Option<Vec<u8>>,
}

impl Analysis {
    /// A new analysis with a fresh v4 id, created now, without images.
    pub fn new(input: Value, result: Value, timings: Value) -> Self {
        Analysis {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now(),
            input,
            result,
            timings,
            token_sha256: None,
            thumbnail_jpeg: None,
            heatmap_jpeg: None,
        }
    }

    /// The listing form of this analysis.
    pub fn summary(&self) -> AnalysisSummary {
        AnalysisSummary {
            id: self.id.clone(),
            created_at: self.created_at,
            input: self.input.clone(),
            result: self.result.clone(),
            timings: self.timings.clone(),
            has_thumbnail: self.thumbnail_jpeg.is_some(),
            has_heatmap: self.heatmap_jpeg.is_some(),
        }
    }
}

/// An analysis in a listing: everything but the image bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub input: Value,
    pub result: Value,
    pub timings: Value,
    pub has_thumbnail: bool,
    pub has_heatmap: bool,
}

/// Which image of an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisImage {
    /// The uploaded photo, reduced.
    Thumbnail,
    /// The Grad-CAM overlay.
    Heatmap,
}
