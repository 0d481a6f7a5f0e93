//! Analysis latency on this machine: p50/p95/p99 of the whole analysis code path (decode,
//! input check, resize, inference, Grad-CAM, JPEG rendering) for a 640×480 JPEG, with and
//! without Grad-CAM, and the process's peak RSS. Also the time until the server can answer
//! (`analysis::analyze_unrendered`: the numbers and the Grad-CAM grid, images drawn after the
//! answer), measured in alternation with the eager path so both see the same machine load.
//!
//! `cargo run --release -p ocular-models --example bench_analyze [-- ITERATIONS]`
//! (models from `./models`, installed by `ocular models fetch`).

use std::time::Instant;

use ocular_image::Limits;
use ocular_models::analysis::{self, AnalyzeOptions};
use ocular_models::session::SessionOptions;
use ocular_models::skin::SkinMeta;
use ocular_models::{Registry, RegistryOptions};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb =
        status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let registry = Registry::discover(RegistryOptions {
        models_dir: "models".into(),
        ort_library: None,
        session: SessionOptions::default(),
        enabled: Some(vec!["sklesion".into(), "efficientnet-lite0".into()]),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let skin = rt.block_on(registry.skin.as_ref().ok_or("sklesion not installed")?.get())?;
    let objects = rt.block_on(registry.image.as_ref().ok_or("efficientnet not installed")?.get())?;

    // A 640×480 JPEG of a real photo, as a phone upload would be.
    let png = std::fs::read("models/photos/chelsea.png")?;
    let img = ocular_image::decode(&png, &Limits::default(), None)?.image;
    let img =
        ocular_image::image::imageops::resize(&img, 640, 480, ocular_image::image::imageops::FilterType::Triangle);
    let jpeg = ocular_image::encode_jpeg(&img, 90)?;
    println!(
        "input: 640x480 JPEG, {} bytes; {} iterations after 3 warm-up runs; {} threads per inference",
        jpeg.len(),
        iterations,
        SessionOptions::default().intra_threads
    );

    for gradcam in [false, true] {
        let opts = AnalyzeOptions { gradcam, force: true };
        let mut totals = Vec::with_capacity(iterations);
        let mut stages = vec![Vec::new(); 5];
        let mut answered = Vec::with_capacity(iterations);
        for i in 0..iterations + 3 {
            let started = Instant::now();
            let (numbers, img) = analysis::analyze_unrendered(
                &skin,
                Some(&objects),
                &jpeg,
                &Limits::default(),
                SkinMeta::default(),
                opts,
            )?;
            if i >= 3 {
                answered.push(started.elapsed().as_secs_f64() * 1e3);
            }
            drop((numbers, img));
            let started = Instant::now();
            let a = analysis::analyze(&skin, Some(&objects), &jpeg, &Limits::default(), SkinMeta::default(), opts)?;
            if i >= 3 {
                totals.push(started.elapsed().as_secs_f64() * 1e3);
                let t = &a.timings;
                for (s, v) in stages.iter_mut().zip([t.decode, t.check, t.inference, t.gradcam, t.render]) {
                    s.push(v);
                }
            }
        }
        totals.sort_by(f64::total_cmp);
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            percentile(v, 0.5)
        };
        println!(
            "gradcam={gradcam:<5} p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms | median stages: decode {:.1}, input check {:.1}, inference {:.1}, gradcam {:.2}, render {:.1}",
            percentile(&totals, 0.5),
            percentile(&totals, 0.95),
            percentile(&totals, 0.99),
            median(&mut stages[0]),
            median(&mut stages[1]),
            median(&mut stages[2]),
            median(&mut stages[3]),
            median(&mut stages[4]),
        );
        let eager = percentile(&totals, 0.5);
        let early = median(&mut answered);
        println!(
            "gradcam={gradcam:<5} answer ready (images drawn afterwards): p50 {early:.1} ms, {:.2}x of the eager p50",
            early / eager
        );
    }
    println!("peak RSS {:.0} MB", peak_rss_mb());
    Ok(())
}
