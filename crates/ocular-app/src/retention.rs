//! What the service keeps, and for how long: the maintenance sweep.
//!
//! Skin analyses are health data and product photos may carry their owner's location, so
//! neither may linger by accident. Three rules, all enforced by [`sweep`]:
//!
//! - whole analyses older than `OCULAR_ANALYSIS_RETENTION_DAYS` (default 90; 0 keeps them) are
//!   deleted, their photos and heatmaps with them;
//! - analysis photos and heatmaps older than `OCULAR_ANALYSIS_IMAGE_RETENTION_HOURS` (unset:
//!   kept as long as the analysis) are dropped, the probabilities stay;
//! - product photos no product shows are deleted once they are [`ORPHAN_GRACE`] old. Deleting
//!   or re-photographing a product already drops its old photo (`ocular_store::CatalogStore`);
//!   the sweep takes uploads whose product write never happened (a refused or interrupted
//!   request). The grace spares a photo uploaded for a product write still in flight.
//!
//! `serve` runs the sweep at start and every [`INTERVAL`] (`ocular_server::retention::run`); `ocular purge` runs it once (from
//! cron, or before a backup). Every replica may sweep: the deletes are idempotent.

use std::time::Duration;

use ocular_store::{Store, StoreError};
use serde::Serialize;
use time::OffsetDateTime;

use crate::Config;

/// How often a running server sweeps.
pub const INTERVAL: Duration = Duration::from_secs(600);

/// How old an unreferenced product photo must be before the sweep deletes it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub analyses_deleted: u64,
    pub analysis_images_purged: u64,
    pub product_images_purged: u64,
}

/// The retention rules of `config`, as ages.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub analyses: Option<Duration>,
    pub analysis_images: Option<Duration>,
    pub orphan_grace: Duration,
}

impl Policy {
    pub fn from_config(config: &Config) -> Self {
        let days = config.analysis_retention_days;
        Self {
            analyses: (days > 0).then(|| Duration::from_secs(days.saturating_mul(86_400))),
            analysis_images: config.analysis_image_retention_hours.map(|h| Duration::from_secs(h.saturating_mul(3600))),
            orphan_grace: ORPHAN_GRACE,
        }
    }
}

/// Applies every rule once.
pub fn sweep(store: &dyn Store, policy: &Policy) -> Result<Swept, StoreError> {
    let mut out = Swept::default();
    if let Some(age) = policy.analyses {
        out.analyses_deleted = store.delete_analyses_older_than(age)?;
    }
    if let Some(age) = policy.analysis_images {
        out.analysis_images_purged = store.purge_analysis_images_older_than(age)?;
    }
    let grace = time::Duration::try_from(policy.orphan_grace).unwrap_or(time::Duration::MAX);
    let cutoff = OffsetDateTime::now_utc().checked_sub(grace).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    out.product_images_purged = store.purge_unreferenced_images(cutoff)?;
    Ok(out)
}
