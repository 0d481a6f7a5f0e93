//! `ocular analyze PHOTO`: the same analysis code path as `POST /api/v1/analyze`, from a shell.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ocular_app::Config;
use ocular_models::analysis::{self, AnalyzeError, AnalyzeOptions};
use ocular_models::skin::{BodySite, Sex, SkinMeta};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The photo (JPEG, PNG or WebP).
    photo: PathBuf,
    /// Patient age in years, 0–120.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=120))]
    age: Option<u8>,
    /// Patient sex.
    #[arg(long, value_enum, default_value = "unknown")]
    sex: SexArg,
    /// Body site of the lesion.
    #[arg(long, value_enum, default_value = "unknown")]
    location: SiteArg,
    /// Write the Grad-CAM overlay to this JPEG file.
    #[arg(long)]
    heatmap: Option<PathBuf>,
    /// Analyse even when the photo does not look like skin.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SexArg {
    Female,
    Male,
    Unknown,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SiteArg {
    Arm,
    HeadOrNeck,
    LegOrGenital,
    Trunk,
    Unknown,
}

pub fn run(config: &Config, args: AnalyzeArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.photo).with_context(|| format!("reading {}", args.photo.display()))?;
    let registry = super::registry(config, Some(vec!["sklesion".into(), "efficientnet-lite0".into()]))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let skin_slot = registry.skin.clone().context("the sklesion model is not installed: run `ocular models fetch`")?;
    let skin = runtime.block_on(skin_slot.get())?;
    let objects = match registry.image.clone() {
        Some(slot) => runtime.block_on(slot.get()).ok(),
        None => None,
    };
    let meta = SkinMeta {
        age: args.age.map(f32::from),
        sex: match args.sex {
            SexArg::Female => Sex::Female,
            SexArg::Male => Sex::Male,
            SexArg::Unknown => Sex::Unknown,
        },
        location: match args.location {
            SiteArg::Arm => BodySite::Arm,
            SiteArg::HeadOrNeck => BodySite::HeadOrNeck,
            SiteArg::LegOrGenital => BodySite::LegOrGenital,
            SiteArg::Trunk => BodySite::Trunk,
            SiteArg::Unknown => BodySite::Unknown,
        },
    };
    let limits = ocular_image::Limits { max_bytes: config.max_body_bytes, max_pixels: config.max_image_pixels };
    let opts = AnalyzeOptions { gradcam: args.heatmap.is_some() || config.enable_gradcam, force: args.force };
    let a = match analysis::analyze(&skin, objects.as_deref(), &bytes, &limits, meta, opts) {
        Err(AnalyzeError::NotSkin(check)) => {
            anyhow::bail!("not a skin photo: {} (use --force to analyse anyway)", check.reason)
        }
        other => other?,
    };
    if let (Some(path), Some(jpeg)) = (&args.heatmap, &a.heatmap_jpeg) {
        std::fs::write(path, jpeg).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut ranked: Vec<(usize, f32)> = a.probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    if args.json {
        // The HTTP API's report (same fields), with this run's timings.
        let mut body = serde_json::to_value(ocular_models::report::SkinReport::new(&skin, &a))?;
        body["timings_ms"] = serde_json::to_value(&a.timings)?;
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for (i, p) in ranked {
        let l = &skin.labels[i];
        let kind = if l.malignant == Some(true) { "malign" } else { "benign" };
        println!("{:>6.1}%  {:<6} {:<7} {}", p * 100.0, l.code, kind, l.name);
    }
    println!("input check: {}", a.input_check.reason);
    if let Some(path) = &args.heatmap {
        println!("heatmap: {}", path.display());
    }
    println!("{:.0} ms total; {}", a.timings.total, analysis::DISCLAIMER);
    Ok(())
}
