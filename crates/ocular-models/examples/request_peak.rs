//! Measures the peak extra memory of one request, by image size: the numbers behind
//! `ocular_models::budget::estimate`.
//!
//! For each photo size, a synthetic JPEG is analysed (full-resolution decode, input check,
//! sklesion + Grad-CAM, overlay and JPEG encodes: `analysis::analyze`) and embedded the way
//! product search does (reduced-scale decode for 224×224, EfficientNet-Lite0). The peak is the
//! kernel's own high-water mark: `/proc/self/clear_refs` resets `VmHWM` to the current RSS
//! (after `malloc_trim`), the request runs, and `VmHWM − RSS before` is its peak extra cost,
//! ONNX Runtime's activations included (they come from the same malloc).
//!
//! ```sh
//! cargo run --release -p ocular-models --example request_peak -- ./models
//! ```

use std::path::PathBuf;

use ocular_image::Limits;
use ocular_image::image::{Rgb, RgbImage};
use ocular_models::analysis::{self, AnalyzeOptions};
use ocular_models::session::{SessionOptions, release_free_memory};
use ocular_models::skin::SkinMeta;
use ocular_models::{Registry, RegistryOptions, runtime};

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = s.lines().find(|l| l.starts_with(field)).expect("field");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number")
}

/// Peak RSS above the starting point while `f` runs, in MiB (median of `runs`).
fn peak_mib(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut peaks: Vec<f64> = (0..runs)
        .map(|_| {
            release_free_memory();
            let before = status_kb("VmRSS:");
            std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (Linux >= 4.0)");
            f();
            (status_kb("VmHWM:").saturating_sub(before)) as f64 / 1024.0
        })
        .collect();
    peaks.sort_by(f64::total_cmp);
    peaks[peaks.len() / 2]
}

/// A photo-like JPEG: smooth skin tones plus texture, so the encoded size is realistic.
fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        Rgb([(180 + n) as u8, (120 + (x * 40 / w)) as u8, (100 + (y * 40 / h)) as u8])
    });
    let mut out = Vec::new();
    ocular_image::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("jpeg");
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let models_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "./models".into()));
    let registry = Registry::discover(RegistryOptions {
        models_dir: models_dir.clone(),
        ort_library: Some(runtime::locate(None, &models_dir).expect("ONNX Runtime library")),
        session: SessionOptions::default(),
        enabled: Some(vec!["sklesion".into(), "efficientnet-lite0".into(), "minilm".into()]),
    })
    .expect("registry");
    let skin = registry.skin.clone().expect("sklesion").get().await.expect("load sklesion");
    let objects = registry.image.clone().expect("efficientnet-lite0").get().await.expect("load effnet");
    let text = registry.text.clone().expect("minilm").get().await.expect("load minilm");
    let limits = Limits { max_bytes: 64 << 20, max_pixels: 100_000_000 };
    let opts = AnalyzeOptions { gradcam: true, force: true };
    // Warm both sessions so one-off initialisation is not counted as a request's cost.
    let warm = photo_jpeg(320, 240);
    analysis::analyze(&skin, Some(&objects), &warm, &limits, SkinMeta::default(), opts).expect("warm-up");
    text.embed(&["warm"]).expect("warm-up");
    let long = "a red leather handbag with a gold clasp and a long strap ".repeat(40);
    let text_peak = peak_mib(3, || {
        text.embed(&[long.as_str()]).expect("embed text");
    });
    release_free_memory();
    println!("text embedding (256 tokens) peak: {text_peak:.1} MiB");
    println!("idle RSS after warm-up: {:.0} MiB", status_kb("VmRSS:") as f64 / 1024.0);
    println!("| photo | megapixels | JPEG MiB | analyze peak MiB | embed (search) peak MiB |");
    println!("|---|---|---|---|---|");
    for (w, h) in [(640, 480), (1600, 1200), (3000, 2000), (4000, 3000), (6000, 4000)] {
        let jpeg = photo_jpeg(w, h);
        let analyze = peak_mib(3, || {
            analysis::analyze(&skin, Some(&objects), &jpeg, &limits, SkinMeta::default(), opts).expect("analyze");
        });
        let embed = peak_mib(3, || {
            let target = (objects.preprocess.width, objects.preprocess.height);
            let decoded = ocular_image::decode(&jpeg, &limits, Some(target)).expect("decode");
            objects.run(&[&decoded.image]).expect("embed");
        });
        let mp = f64::from(w) * f64::from(h) / 1e6;
        let enc = jpeg.len() as f64 / 1048576.0;
        println!("| {w}×{h} | {mp:.1} | {enc:.1} | {analyze:.1} | {embed:.1} |");
    }
}
