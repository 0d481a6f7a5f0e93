//! `ocular predict --model NAME PHOTO`: an imported classifier on one photo, through the same
//! code as `POST /api/v1/models/{name}/predict` ([`ocular_models::classifier::predict`]).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ocular_app::Config;
use ocular_models::classifier;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The imported model's name (`ocular models list`).
    #[arg(long)]
    model: String,
    /// The photo (JPEG, PNG or WebP).
    photo: PathBuf,
    /// A numeric input the model declares besides the photo: NAME=v1,v2,... (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUES")]
    inputs: Vec<String>,
    /// Classes to show, best first.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Write the Grad-CAM overlay to this JPEG file (when the model allows exact Grad-CAM).
    #[arg(long)]
    heatmap: Option<PathBuf>,
    /// Print the result as JSON (the HTTP answer's fields).
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: PredictArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.photo).with_context(|| format!("reading {}", args.photo.display()))?;
    let registry = super::registry(config, Some(vec![args.model.clone()]))?;
    let slot = registry.classifier(&args.model).with_context(|| {
        format!(
            "no imported classifier named {:?} in {}: see `ocular models list`",
            args.model,
            config.models_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let model = runtime.block_on(slot.get())?;
    let given: HashMap<&str, &str> = args.inputs.iter().filter_map(|kv| kv.split_once('=')).collect();
    if let Some(bad) = args.inputs.iter().find(|kv| !kv.contains('=')) {
        anyhow::bail!("--input {bad:?}: expected NAME=v1,v2,...");
    }
    let mut extras = HashMap::new();
    for e in model.extra_inputs() {
        extras.insert(e.name.clone(), model.parse_extra(&e.name, given.get(e.name.as_str()).copied())?);
    }
    let limits = ocular_image::Limits { max_bytes: config.max_body_bytes, max_pixels: config.max_image_pixels };
    let gradcam = args.heatmap.is_some() || config.enable_gradcam;
    let p = classifier::predict(&model, &bytes, &limits, &extras, gradcam)?;
    if let Some(path) = &args.heatmap {
        match &p.heatmap_jpeg {
            Some(jpeg) => std::fs::write(path, jpeg).with_context(|| format!("writing {}", path.display()))?,
            None => eprintln!("no heatmap: exact Grad-CAM is not available for this model (see `ocular models list`)"),
        }
    }
    let top = model.top(&p.scores, args.top_k.max(1));
    if args.json {
        let body = ocular_models::report::PredictReport::new(&model, &p, args.top_k);
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for (i, score) in top {
        let l = &model.labels[i];
        println!("{:>10.6}  {:<12} {}", score, l.code, l.name);
    }
    if let (Some(path), Some(_)) = (&args.heatmap, &p.heatmap_jpeg) {
        println!("heatmap: {}", path.display());
    }
    println!("{:.0} ms total", p.timings.total);
    Ok(())
}
