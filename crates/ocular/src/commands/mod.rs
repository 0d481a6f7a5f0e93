//! One module per subcommand.

pub mod migrate;
pub mod models;
pub mod serve;

use anyhow::Context;
use ocular_server::Config;
use ocular_store::{Location, Store};
use std::sync::Arc;

/// Opens the configured store, applying migrations.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let location = Location::parse(config.database_url.as_deref(), &config.data_dir)?;
    ocular_store::open(&location, true).with_context(|| format!("opening storage {}", location.describe()))
}
