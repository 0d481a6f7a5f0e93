//! CLIP tower latency and memory: loads one tower file the way the server does and reports
//! the median of repeated batch-1 embeddings and the process's resident memory.
//!
//! ```text
//! python scripts/clip_tiny_reference.py --full /tmp/clip-vitb32      # random ViT-B/32, fp32 + int8
//! cargo run --release -p ocular-models --example bench_clip -- image /tmp/clip-vitb32/vision_quantized.onnx
//! cargo run --release -p ocular-models --example bench_clip -- text /tmp/clip-vitb32/text_quantized.onnx
//! ```
//!
//! Options after the file: `--threads N` (default 2), `--runs N` (default 30), `--photo PATH`.
//! One tower per process, so the memory figures are that tower's alone. RSS is read from
//! `/proc/self/status` (Linux).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ocular_core::{Manifest, ModelKind, TextPreprocess};
use ocular_models::clip::{ClipImageEncoder, ClipTextEncoder, clip_preprocess};
use ocular_models::registry::{LoadContext, Loadable};
use ocular_models::runtime::OrtRuntime;
use ocular_models::session::SessionOptions;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_clip image|text FILE.onnx [--threads N] [--runs N] [--photo PATH]";
    let (Some(tower), Some(file)) = (args.first(), args.get(1)) else { return Err(usage.into()) };
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let threads: usize = flag("--threads").map_or(Ok(2), |v| v.parse())?;
    let runs: usize = flag("--runs").map_or(Ok(30), |v| v.parse())?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models_dir = std::env::var_os("OCULAR_MODELS_DIR").map_or_else(|| root.join("models"), PathBuf::from);
    let file = PathBuf::from(file);
    let dir = file.parent().ok_or(usage)?.to_path_buf();

    let runtime = OrtRuntime::get_or_init(None, &models_dir)?;
    let rss_runtime = rss_mb("VmRSS");
    let kind = if tower == "image" { ModelKind::ClipImage } else { ModelKind::ClipText };
    let manifest = manifest(&file, kind)?;
    let ctx =
        LoadContext { dir: &dir, manifest: &manifest, runtime, session: SessionOptions { intra_threads: threads } };
    let started = Instant::now();
    let mut times = Vec::with_capacity(runs);
    match kind {
        ModelKind::ClipImage => {
            let model = ClipImageEncoder::load(&ctx)?;
            model.warm_up()?;
            report_load(started, rss_runtime);
            let photo = match flag("--photo") {
                Some(p) => PathBuf::from(p),
                None => models_dir.join("photos/chelsea.png"),
            };
            let img = ocular_image::decode(&std::fs::read(&photo)?, &ocular_image::Limits::default(), None)?.image;
            for _ in 0..runs {
                let t = Instant::now();
                model.embed(&[&img])?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let mut prep: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(ocular_image::preprocess(&img, &model.preprocess));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            prep.sort_by(f64::total_cmp);
            println!(
                "dim {}  photo {}x{} ({}); of which resize + normalise: median {:.1} ms",
                model.dim,
                img.width(),
                img.height(),
                photo.display(),
                prep[prep.len() / 2]
            );
        }
        _ => {
            let model = ClipTextEncoder::load(&ctx)?;
            model.warm_up()?;
            report_load(started, rss_runtime);
            let query = "a red leather handbag with a gold chain strap";
            for _ in 0..runs {
                let t = Instant::now();
                model.embed(&[query])?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!("dim {}  query {query:?} ({} tokens)", model.dim, model.tokenizer().encode(query, 77).len());
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "{tower} {}: median {:.1} ms  p90 {:.1} ms  min {:.1} ms  ({runs} runs, {threads} threads)",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
        pct(0.5),
        pct(0.9),
        times[0]
    );
    println!("rss after runs {:.0} MB, peak {:.0} MB", rss_mb("VmRSS"), rss_mb("VmHWM"));
    Ok(())
}

fn report_load(started: Instant, rss_runtime: f64) {
    println!(
        "loaded + warmed in {:.2} s; rss {:.0} MB (ONNX Runtime alone {:.0} MB)",
        started.elapsed().as_secs_f64(),
        rss_mb("VmRSS"),
        rss_runtime
    );
}

/// A manifest for a bare tower file, as `ocular models import-clip` would write it.
fn manifest(file: &Path, kind: ModelKind) -> Result<Manifest, Error> {
    let onnx = file.file_name().and_then(|n| n.to_str()).ok_or("tower path has no file name")?.to_string();
    Ok(Manifest {
        name: format!("bench-{}", kind.as_str()),
        version: "bench".into(),
        kind,
        source: None,
        onnx,
        files: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        image: (kind == ModelKind::ClipImage).then(|| clip_preprocess(224)),
        text: (kind == ModelKind::ClipText).then(|| TextPreprocess { tokenizer: "clip-bpe".into(), max_tokens: 77 }),
        labels: Vec::new(),
        gradcam: None,
        extra: serde_json::Value::Null,
    })
}

/// A `/proc/self/status` memory field in MB (0 where unavailable).
fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').split_whitespace().next()?.parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}
