//! `ocular purge`: runs the retention sweep once (expired analyses, analysis photos past
//! their retention, product photos no product shows) and prints what went. The server runs
//! the same sweep every 10 minutes (`ocular_server::retention::run`); this is for cron, for a
//! replica set that should sweep from one place, and for before a backup. Storage only: never
//! loads a model.

use anyhow::Context;
use ocular_app::Config;
use ocular_app::retention::{self, Policy};

pub fn run(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config)?;
    let policy = Policy::from_config(config);
    let swept = retention::sweep(store.as_ref(), &policy).context("retention sweep")?;
    let days = match policy.analyses {
        Some(d) => format!("{} days", d.as_secs() / 86_400),
        None => "kept (OCULAR_ANALYSIS_RETENTION_DAYS=0)".into(),
    };
    println!(
        "purged: {} analyses older than {days}, images of {} analyses, {} unused product photos",
        swept.analyses_deleted, swept.analysis_images_purged, swept.product_images_purged
    );
    Ok(())
}
