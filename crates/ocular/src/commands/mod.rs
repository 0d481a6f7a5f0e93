//! One module per subcommand.

pub mod analyze;
pub mod backup;
pub mod import;
pub mod migrate;
pub mod models;
pub mod predict;
pub mod purge;
pub mod reindex;
pub mod search;
pub mod serve;

use anyhow::Context;
use ocular_app::Config;
use ocular_store::{Location, Store};
use std::sync::Arc;

/// Opens the configured store, applying migrations.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let location = Location::parse(config.database_url.as_deref(), &config.data_dir)?;
    ocular_store::open_with(&location, true, &config.pg_options())
        .with_context(|| format!("opening storage {}", location.describe()))
}

/// A model registry over the configured models directory; `only` narrows it to what a
/// command needs, so a CLI run loads no model it will not use.
pub fn registry(config: &Config, only: Option<Vec<String>>) -> anyhow::Result<ocular_models::Registry> {
    let session = config.intra_threads.map_or_else(ocular_models::session::SessionOptions::default, |n| {
        ocular_models::session::SessionOptions { intra_threads: n }
    });
    let options = ocular_models::RegistryOptions {
        models_dir: config.models_dir.clone(),
        ort_library: config.ort_library.clone(),
        session,
        enabled: only.or_else(|| config.models.clone()),
    };
    ocular_app::search_models::discover(options, config.search_models, config.precisions())
        .context("reading model manifests")
}
