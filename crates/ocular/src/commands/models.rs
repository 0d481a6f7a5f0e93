//! `ocular models …`: inspect installed models without loading them.

use anyhow::Context;
use clap::Subcommand;
use ocular_core::Manifest;
use ocular_server::Config;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List installed models (reads manifests only).
    List,
}

pub fn run(config: &Config, cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::List => list(config),
    }
}

fn list(config: &Config) -> anyhow::Result<()> {
    let dir = &config.models_dir;
    let mut found = 0;
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    entries.sort();
    for path in entries.iter().filter(|p| p.join(ocular_core::manifest::MANIFEST_FILE).is_file()) {
        let m = Manifest::load(path)?;
        let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
        println!("{:<20} {:<10} {:<18} {:>8.1} MB  {}", m.name, m.version, m.kind.as_str(), bytes as f64 / 1e6, path.display());
        found += 1;
    }
    let ort = ocular_models::runtime::locate(config.ort_library.as_deref(), dir);
    match ort {
        Ok(p) => println!("onnxruntime: {}", p.display()),
        Err(e) => println!("onnxruntime: missing ({e})"),
    }
    if found == 0 {
        println!("no models in {} — run `ocular models fetch`", dir.display());
    }
    Ok(())
}
