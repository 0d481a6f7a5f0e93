//! `ocular migrate`: storage only — no ONNX Runtime, no model file, milliseconds.

use ocular_app::Config;

pub fn run(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config)?;
    println!("database schema at version {} ({})", store.schema_version()?, store.backend());
    Ok(())
}
