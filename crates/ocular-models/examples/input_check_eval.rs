//! The input check measured on the labelled set of `scripts/input_check_set.py`
//! (docs/INPUT_CHECK.md): precision and recall per split for the check as it was before the
//! held-out set ("before": skin colour + an everyday object at p ≥ 0.5) and as it is now
//! ("after": `skin_check::decide_signals`), plus every signal per image as CSV so thresholds
//! can be chosen on the tuning split only.
//!
//! `cargo run --release -p ocular-models --example input_check_eval [-- MANIFEST IMAGES CSV_OUT]`
//! (defaults: fixtures/input_check/manifest.csv, models/input-check, target/input-check.csv;
//! models from `./models`, installed by `ocular models fetch`).

use std::collections::BTreeMap;

use ocular_image::Limits;
use ocular_models::analysis;
use ocular_models::session::SessionOptions;
use ocular_models::skin_check;
use ocular_models::{Registry, RegistryOptions};

/// The rule of the 58-image set, kept here to report the before/after comparison.
fn before(skin_fraction: f32, top1: f32) -> bool {
    let limit = if skin_fraction >= 0.85 { 0.75 } else { 0.5 };
    top1 < limit && skin_fraction >= 0.65
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
}

impl Counts {
    fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
            (true, false) => self.fn_ += 1,
        }
    }
    fn line(&self) -> String {
        let precision = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let recall = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        format!(
            "precision {precision:.3} recall {recall:.3} (TP {}, FP {}, TN {}, FN {})",
            self.tp, self.fp, self.tn, self.fn_
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let manifest = args.next().unwrap_or_else(|| "fixtures/input_check/manifest.csv".into());
    let images = std::path::PathBuf::from(args.next().unwrap_or_else(|| "models/input-check".into()));
    let csv_out = args.next().unwrap_or_else(|| "target/input-check.csv".into());
    let registry = Registry::discover(RegistryOptions {
        models_dir: "models".into(),
        ort_library: None,
        session: SessionOptions::default(),
        enabled: Some(vec!["efficientnet-lite0".into()]),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let objects = rt.block_on(registry.image.as_ref().ok_or("efficientnet not installed")?.get())?;

    let text = std::fs::read_to_string(&manifest)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty manifest")?.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).ok_or(format!("no column {name}"));
    let (file_c, label_c, split_c, cat_c) = (col("file")?, col("label")?, col("split")?, col("category")?);
    let mut out = String::from(
        "file,label,split,category,min_side,skin_fraction,texture,animal,probe,top1,top1_label,before,after,reason\n",
    );
    let mut counts: BTreeMap<(&str, String), Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    // OCULAR_EMBEDDINGS_OUT=path also writes each image's EfficientNet embedding (one line per
    // image, in manifest order) for fitting the probe (scripts/input_check_probe.py).
    let mut embeddings = std::env::var_os("OCULAR_EMBEDDINGS_OUT").map(|p| (p, String::new()));
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let bytes = std::fs::read(images.join(f[file_c]))?;
        let img = ocular_image::decode(&bytes, &Limits::default(), None)?.image;
        let signals = analysis::input_signals(&img, Some(&objects))?;
        let check = skin_check::decide_signals(&signals);
        let (top_label, top_p) = signals.object.clone().unwrap_or_default();
        let old = before(signals.skin_fraction, top_p);
        let truth = f[label_c] == "positive";
        // Measured for the record (docs/INPUT_CHECK.md), not decided on.
        let animal = skin_check::animal_probability(
            &objects.labels,
            &objects.run(&[&img])?.first().ok_or("no output")?.probabilities,
        );
        if let Some((_, text)) = embeddings.as_mut() {
            let e = &objects.run(&[&img])?[0].embedding;
            *text += &format!("{},{}\n", f[file_c], e.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(","));
        }
        for (rule, predicted) in [("before", old), ("after", check.is_skin)] {
            counts.entry((rule, f[split_c].to_string())).or_default().add(truth, predicted);
            counts.entry((rule, "all".to_string())).or_default().add(truth, predicted);
        }
        if truth != check.is_skin {
            misses.push(format!("{} {} {}: {}", f[split_c], f[file_c], f[label_c], check.reason));
        }
        out += &format!(
            "{},{},{},{},{},{:.4},{:.4},{:.4},{:.3},{:.4},{},{},{},\"{}\"\n",
            f[file_c],
            f[label_c],
            f[split_c],
            f[cat_c],
            img.width().min(img.height()),
            signals.skin_fraction,
            skin_check::texture(&img),
            animal.unwrap_or(0.0),
            signals.probe.unwrap_or(f32::NAN),
            top_p,
            top_label.replace(',', ";"),
            old,
            check.is_skin,
            check.reason.replace('"', "'")
        );
    }
    std::fs::write(&csv_out, out)?;
    if let Some((path, text)) = embeddings {
        std::fs::write(path, text)?;
    }
    for ((rule, split), c) in &counts {
        println!("{rule:<6} {split:<8} {}", c.line());
    }
    println!("misclassified by the current check:");
    for m in misses {
        println!("  {m}");
    }
    println!("per-image signals: {csv_out}");
    Ok(())
}
