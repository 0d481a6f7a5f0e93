//! Measures int8 weight formats against the float graphs, on whatever CPU runs it.
//!
//! `write MODELS_DIR OUT` calibrates sklesion and EfficientNet-Lite0 as `ocular models fetch`
//! does and writes one int8 graph per weight format (`OUT/NAME.FORMAT.onnx`);
//! `eval MODELS_DIR OUT` compares every written graph with the float one on the photos and on
//! held-out synthetic lesions and prints the agreement and the median latency.
//!
//! Run `eval` natively and under an emulated CPU without VNNI to see the formats that depend
//! on the instruction set (docs/QUANTIZATION.md):
//! `qemu-x86_64 -cpu Haswell target/release/examples/int8_schemes eval models /tmp/q`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ocular_convert::quantize::{Calibration, Method, Recipe, WeightFormat, data, eval};
use ocular_core::{Manifest, ModelKind};

const FORMATS: [WeightFormat; 3] = [WeightFormat::S8, WeightFormat::S7, WeightFormat::U8];

fn env(models: &Path) -> ort::environment::Environment {
    let lib = std::fs::read_dir(models.join("onnxruntime"))
        .expect("models/onnxruntime (run `ocular models fetch`)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains("libonnxruntime.so"))
        .expect("libonnxruntime.so");
    ort::init_from(lib.display().to_string()).unwrap().with_name("int8-schemes").build().unwrap()
}

struct Model {
    name: &'static str,
    manifest: Manifest,
    fp32: Vec<u8>,
    method: Method,
}

fn models(dir: &Path) -> Vec<Model> {
    ["efficientnet-lite0", "sklesion"]
        .into_iter()
        .map(|name| {
            let manifest = Manifest::load(&dir.join(name)).unwrap();
            let fp32 = std::fs::read(dir.join(name).join(&manifest.onnx)).unwrap();
            let method = if manifest.kind == ModelKind::SkinClassifier { Method::MinMax } else { Method::Percentile };
            Model { name, manifest, fp32, method }
        })
        .collect()
}

fn meta(m: &Manifest) -> Option<[f32; 10]> {
    (m.kind == ModelKind::SkinClassifier).then(|| data::unknown_metadata(m))
}

fn outputs(m: &Manifest) -> (String, String) {
    match &m.gradcam {
        Some(g) if m.kind == ModelKind::SkinClassifier => {
            let p = m.outputs.iter().find(|o| o.name != g.feature_output).unwrap().name.clone();
            (p, g.feature_output.clone())
        }
        _ => ("probabilities".into(), "features".into()),
    }
}

/// Per-layer sensitivity of the skin model: for every Conv, the largest |dp| against fp32
/// on held-out lesions when only that Conv stays float; then the gate measures with the k most
/// sensitive Convs float, on other held-out lesions and the photos.
fn sensitivity(env: &ort::environment::Environment, m: &Model, photos: &[&ocular_image::image::RgbImage]) {
    if m.manifest.kind != ModelKind::SkinClassifier {
        return;
    }
    let (prob, feat) = outputs(&m.manifest);
    let meta = meta(&m.manifest);
    let cal_imgs = data::lesions(2, 0);
    let cal = Calibration::new(env, &m.fp32, &data::samples(&m.manifest, &cal_imgs.iter().collect::<Vec<_>>(), meta))
        .unwrap();
    let probe_imgs = data::lesions(1, 2_000);
    let probe = data::samples(&m.manifest, &probe_imgs.iter().step_by(2).collect::<Vec<_>>(), meta);
    let gate_imgs = data::lesions(1, 1_000);
    let gate = data::samples(&m.manifest, &gate_imgs.iter().collect::<Vec<_>>(), meta);
    let gate_photos = data::samples(&m.manifest, photos, meta);
    let mut fp32 = eval::Runner::new(env, &m.fp32, 2).unwrap();
    let measure = |keep: &[String], set: &[ocular_convert::quantize::Sample], fp32: &mut eval::Runner| {
        let recipe = Recipe { keep_float: keep.iter().cloned().collect(), ..Recipe::new(m.method) };
        let mut q = eval::Runner::new(env, &cal.quantize(&recipe).unwrap(), 2).unwrap();
        eval::compare(fp32, &mut q, set, &prob, &feat).unwrap()
    };
    let base = measure(&[], &probe, &mut fp32);
    println!("all quantised: probe max|dp|={:.4} top1={:.3}", base.max_abs_dp, base.top1_agreement);
    let mut scores: Vec<(f32, String)> = Vec::new();
    for name in cal.conv_names() {
        let a = measure(std::slice::from_ref(name), &probe, &mut fp32);
        println!("float {name}: probe max|dp|={:.4} cos min={:.4}", a.max_abs_dp, a.feature_cosine_min);
        scores.push((a.max_abs_dp, name.clone()));
    }
    scores.sort_by(|a, b| a.0.total_cmp(&b.0));
    for k in [1, 2, 4, 8, 16, 32] {
        let keep: Vec<String> = scores.iter().take(k).map(|(_, n)| n.clone()).collect();
        let l = measure(&keep, &gate, &mut fp32);
        let p = measure(&keep, &gate_photos, &mut fp32);
        println!(
            "k={k} float {:?}: lesions top1={:.3} max|dp|={:.4}; photos top1={:.3} max|dp|={:.4}",
            keep, l.top1_agreement, l.max_abs_dp, p.top1_agreement, p.max_abs_dp
        );
    }
}

/// Median latency of fp32 and every format, runs interleaved so machine noise hits all alike.
fn bench(
    env: &ort::environment::Environment,
    m: &Model,
    out: &Path,
    photos: &[&ocular_image::image::RgbImage],
    prob: &str,
) {
    let mut runners = vec![("fp32".to_string(), eval::Runner::new(env, &m.fp32, 2).unwrap())];
    for f in FORMATS {
        let bytes = std::fs::read(out.join(format!("{}.{}.onnx", m.name, f.as_str()))).unwrap();
        runners.push((f.as_str().to_string(), eval::Runner::new(env, &bytes, 2).unwrap()));
    }
    let s = &data::samples(&m.manifest, &photos[..1], meta(&m.manifest))[0];
    let mut times = vec![Vec::new(); runners.len()];
    for round in 0..25 {
        for (i, (_, r)) in runners.iter_mut().enumerate() {
            let t = Instant::now();
            r.run(s, &[prob]).unwrap();
            if round > 2 {
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let base = median(&mut times[0]);
    for ((name, _), t) in runners.iter().zip(&mut times) {
        let med = median(t);
        println!("{} {name}: median {med:.2} ms ({:.2}x fp32), 2 threads", m.name, med / base);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, models_dir, out) = (&args[1], PathBuf::from(&args[2]), PathBuf::from(&args[3]));
    // Images per set for `eval` (all by default; a few under an emulated CPU, which is slow).
    let limit: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let only: Option<&str> = args.get(5).map(String::as_str);
    let env = env(&models_dir);
    let photos = data::photos(&models_dir.join("photos")).unwrap();
    let photo_refs: Vec<_> = photos.iter().map(|(_, i)| i).collect();
    let lesions = data::lesions(1, 1_000);
    let lesion_refs: Vec<_> = lesions.iter().collect();
    std::fs::create_dir_all(&out).unwrap();
    for m in models(&models_dir) {
        if only.is_some_and(|o| o != m.name) {
            continue;
        }
        if mode == "sensitivity" {
            sensitivity(&env, &m, &photo_refs);
            continue;
        }
        if mode == "write" {
            let samples = if m.manifest.kind == ModelKind::SkinClassifier {
                let cal = data::lesions(2, 0);
                data::samples(&m.manifest, &cal.iter().collect::<Vec<_>>(), meta(&m.manifest))
            } else {
                data::samples(&m.manifest, &photo_refs, None)
            };
            let cal = Calibration::new(&env, &m.fp32, &samples).unwrap();
            for f in FORMATS {
                let recipe = Recipe { weights: f, ..Recipe::new(m.method) };
                std::fs::write(out.join(format!("{}.{}.onnx", m.name, f.as_str())), cal.quantize(&recipe).unwrap())
                    .unwrap();
            }
            continue;
        }
        let (prob, feat) = outputs(&m.manifest);
        if mode == "bench" {
            bench(&env, &m, &out, &photo_refs, &prob);
            continue;
        }
        let mut fp32 = eval::Runner::new(&env, &m.fp32, 2).unwrap();
        for f in FORMATS {
            let bytes = std::fs::read(out.join(format!("{}.{}.onnx", m.name, f.as_str()))).unwrap();
            let mut q = eval::Runner::new(&env, &bytes, 2).unwrap();
            for (set, imgs) in [("photos", &photo_refs), ("lesions", &lesion_refs)] {
                let s = data::samples(&m.manifest, &imgs[..imgs.len().min(limit)], meta(&m.manifest));
                let a = eval::compare(&mut fp32, &mut q, &s, &prob, &feat).unwrap();
                println!(
                    "{} {} {set}: n={} top1={:.3} top5={:.3} max|dp|={:.4} cos min={:.4} median={:.4}",
                    m.name,
                    f.as_str(),
                    a.samples,
                    a.top1_agreement,
                    a.top5_agreement,
                    a.max_abs_dp,
                    a.feature_cosine_min,
                    a.feature_cosine_median
                );
            }
            let s = &data::samples(&m.manifest, &photo_refs[..1], meta(&m.manifest))[0];
            let mut times: Vec<f64> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    q.run(s, &[&prob]).unwrap();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("{} {} latency median {:.1} ms (2 threads)", m.name, f.as_str(), times[3]);
        }
    }
}
