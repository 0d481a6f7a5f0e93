//! EfficientNet-Lite0 converted from the real `.pth` and run in ONNX Runtime, compared with
//! the PyTorch reference (`scripts/torch_efficientnet_reference.py`) on the committed inputs.
//!
//! Needs the checkpoint (`OCULAR_EFFNET_PTH`, default: where `ocular models fetch` keeps it,
//! `models/.cache/src/efficientnet-lite0/`) and the ONNX Runtime library (`ORT_DYLIB_PATH`,
//! `OCULAR_ORT_LIBRARY` or `models/onnxruntime/`). Without them the tests skip with a message,
//! or fail when `OCULAR_REQUIRE_MODELS` is set (`ocular_test_support::Need`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ocular_convert::torch::{Converted, StateDict, convert_efficientnet_lite0};
use ocular_test_support::Need;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{DynValue, Tensor};
use serde_json::Value;

/// Relative to the workspace: where `ocular models fetch` keeps the source weights.
const DEFAULT_PTH: &str = "models/.cache/src/efficientnet-lite0/efficientnet-lite0.pth";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$VAR` if set, else `default` (relative to the workspace); `None` when it does not exist
/// and the models are not required, a failure when they are.
pub fn locate(var: &str, default: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| workspace().join(default), PathBuf::from);
    let found =
        if path.exists() { Ok(path) } else { Err(format!("{what} not found at {} (set {var})", path.display())) };
    Need::Models.available(found)
}

/// The process-wide ONNX Runtime environment, or `None` (with a message) without the library.
pub fn ort_env() -> Option<&'static Environment> {
    static ENV: OnceLock<Option<Environment>> = OnceLock::new();
    ENV.get_or_init(|| {
        let explicit = std::env::var_os("ORT_DYLIB_PATH").or_else(|| std::env::var_os("OCULAR_ORT_LIBRARY"));
        let lib = match explicit {
            Some(path) => PathBuf::from(path),
            None => std::fs::read_dir(workspace().join("models/onnxruntime"))
                .ok()
                .and_then(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.path()))
                        .find(|p| p.to_string_lossy().contains("libonnxruntime.so"))
                })
                .unwrap_or_else(|| workspace().join("models/onnxruntime/libonnxruntime.so")),
        };
        let found = if lib.is_file() {
            Ok(lib)
        } else {
            Err(format!("ONNX Runtime library not found at {} (set ORT_DYLIB_PATH)", lib.display()))
        };
        let lib = Need::Models.available(found)?;
        Some(ort::init_from(&lib).unwrap().with_name("ocular-convert-tests").build().unwrap())
    })
    .as_ref()
}

pub fn session(onnx: &[u8], threads: usize) -> Session {
    let env = ort_env().expect("checked by the caller");
    Session::builder(env).unwrap().with_intra_threads(threads).unwrap().commit_from_memory(onnx).unwrap()
}

/// Runs `session` and returns every float output as (shape, values), by name.
pub fn run(
    session: &mut Session,
    inputs: Vec<(&str, DynValue)>,
) -> std::collections::HashMap<String, (Vec<i64>, Vec<f32>)> {
    let outputs = session.run(inputs).unwrap();
    outputs
        .iter()
        .map(|(name, v)| {
            let (shape, data) = v.try_extract_tensor::<f32>().unwrap();
            (name.to_string(), (shape.to_vec(), data.to_vec()))
        })
        .collect()
}

/// The one cosine (`ocular_core::similarity`); a zero or wrong-length vector fails the test.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    ocular_core::similarity::cosine(a, b).expect("two non-zero vectors of one length")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn converted() -> Option<&'static Converted> {
    static CONVERTED: OnceLock<Option<Converted>> = OnceLock::new();
    CONVERTED
        .get_or_init(|| {
            let pth = locate("OCULAR_EFFNET_PTH", DEFAULT_PTH, "EfficientNet-Lite0 checkpoint")?;
            ort_env()?;
            Some(convert_efficientnet_lite0(&pth).unwrap())
        })
        .as_ref()
}

fn reference() -> Value {
    let path = workspace().join("fixtures/reference/efficientnet_lite0.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// The committed 224×224 PNG as NCHW `(x - 127) / 128`, exactly what the script fed torch.
fn pixels(png: &str) -> Vec<f32> {
    let img = image::open(workspace().join("fixtures/reference").join(png)).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (224, 224));
    let mut out = vec![0f32; 3 * 224 * 224];
    for (x, y, p) in img.enumerate_pixels() {
        for c in 0..3 {
            out[c * 224 * 224 + y as usize * 224 + x as usize] = (f32::from(p[c]) - 127.0) / 128.0;
        }
    }
    out
}

type Outputs = std::collections::HashMap<String, (Vec<i64>, Vec<f32>)>;

fn infer(session: &mut Session, batch: &[Vec<f32>]) -> Outputs {
    let data: Vec<f32> = batch.concat();
    let input = Tensor::from_array((vec![batch.len() as i64, 3, 224, 224], data)).unwrap().into_dyn();
    run(session, vec![("pixel_values", input)])
}

fn top2(probs: &[f32]) -> [(usize, f32); 2] {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    [(idx[0], probs[idx[0]]), (idx[1], probs[idx[1]])]
}

#[test]
fn efficientnet_matches_pytorch_reference() {
    let Some(conv) = converted() else { return };
    let reference = reference();
    let mut session = session(&conv.onnx, 2);
    let mut features = std::collections::HashMap::new();
    for (name, r) in reference["images"].as_object().unwrap() {
        let out = infer(&mut session, &[pixels(r["png"].as_str().unwrap())]);
        let (shape, logits) = &out["logits"];
        assert_eq!(shape, &[1, 1000]);
        let d_logits = max_abs_diff(logits, &floats(&r["logits"]));
        let d_features = max_abs_diff(&out["features"].1, &floats(&r["features"]));
        eprintln!("{name}: max |Δlogit| = {d_logits:.2e}, max |Δfeature| = {d_features:.2e}");
        assert!(d_logits < 1e-3, "{name}: logits differ by {d_logits}");
        assert!(d_features < 1e-3, "{name}: features differ by {d_features}");
        assert_eq!(out["feature_map"].0, [1, 1280, 7, 7]);
        features.insert(name.clone(), out["features"].1.clone());
    }

    // docs/MODELS.md check values, on the centre-cropped photos.
    let coffee = infer(&mut session, &[pixels("effnet_coffee.png")]);
    let [(class, p), _] = top2(&coffee["probabilities"].1);
    assert_eq!(conv.labels[class].name, "espresso");
    assert!((p - 0.95).abs() < 0.02, "espresso p = {p}");
    let chelsea = infer(&mut session, &[pixels("effnet_chelsea.png")]);
    let [(a, pa), (b, pb)] = top2(&chelsea["probabilities"].1);
    assert_eq!((conv.labels[a].name.as_str(), conv.labels[b].name.as_str()), ("tiger cat", "Egyptian cat"));
    assert!((pa - 0.38).abs() < 0.02 && (pb - 0.37).abs() < 0.02, "{pa} {pb}");

    // The pooled feature as an image embedding: the two motorcycle views match, others do not.
    let left = &features["motorcycle_left"];
    let same = cosine(left, &features["motorcycle_right"]);
    assert!((same - 0.94).abs() < 0.01, "motorcycle cosine {same}");
    for other in ["coffee", "chelsea"] {
        let c = cosine(left, &features[other]);
        assert!(c < 0.35, "motorcycle vs {other}: {c}");
    }
}

#[test]
fn efficientnet_batch_equals_single_and_head_is_consistent() {
    let Some(conv) = converted() else { return };
    let mut session = session(&conv.onnx, 2);
    let (a, b) = (pixels("effnet_coffee.png"), pixels("effnet_chelsea.png"));
    let batch = infer(&mut session, &[a.clone(), b]);
    let single = infer(&mut session, &[a]);
    assert_eq!(batch["logits"].0, [2, 1000]);
    assert!(max_abs_diff(&batch["logits"].1[..1000], &single["logits"].1) < 1e-4);

    // `features` is the mean of `feature_map` over the 7×7 grid, the head (what exact Grad-CAM
    // uses) maps it to `logits`, and softmax of `logits` is `probabilities`.
    let fmap = &single["feature_map"].1;
    let feats = &single["features"].1;
    let means: Vec<f32> = fmap.chunks(49).map(|c| c.iter().sum::<f32>() / 49.0).collect();
    assert!(max_abs_diff(&means, feats) < 1e-5);
    let head = conv.head.as_ref().unwrap();
    let no_inputs = std::collections::HashMap::new();
    let logits = head.forward(feats, &no_inputs).unwrap();
    assert!(max_abs_diff(&logits, &single["logits"].1) < 1e-4);
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let z: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let probs: Vec<f32> = logits.iter().map(|l| (l - max).exp() / z).collect();
    assert!(max_abs_diff(&probs, &single["probabilities"].1) < 1e-6);

    // Grad-CAM through the head equals the closed form ReLU(Σ_k fc.weight[c][k]/49 · A_k),
    // with fc.weight read straight from the checkpoint.
    let pth = locate("OCULAR_EFFNET_PTH", DEFAULT_PTH, "checkpoint").unwrap();
    let fc = StateDict::load(&pth).unwrap().tensor("_fc.weight", &[1000, 1280]).unwrap().to_vec();
    let espresso = 967;
    let nhwc: Vec<f32> = (0..49).flat_map(|p| (0..1280).map(move |k| fmap[k * 49 + p])).collect();
    let cam = head.gradcam(&nhwc, (7, 7, 1280), &no_inputs, espresso).unwrap();
    let w = &fc[espresso * 1280..(espresso + 1) * 1280];
    let raw: Vec<f32> =
        (0..49).map(|p| (0..1280).map(|k| w[k] / 49.0 * fmap[k * 49 + p]).sum::<f32>().max(0.0)).collect();
    let top = raw.iter().copied().fold(0.0, f32::max);
    assert!(top > 0.0);
    let expected: Vec<f32> = raw.iter().map(|v| v / top).collect();
    assert!(max_abs_diff(&cam, &expected) < 1e-4, "{cam:?} vs {expected:?}");
    assert!(conv.params > 4_600_000 && conv.params < 4_700_000, "{}", conv.params);
}

#[test]
fn real_checkpoint_reads_like_torch() {
    let Some(pth) = locate("OCULAR_EFFNET_PTH", DEFAULT_PTH, "EfficientNet-Lite0 checkpoint") else { return };
    let sd = StateDict::load(&pth).unwrap();
    // Counts from `torch.load`: 296 tensors, 4,694,073 values, 50 of them non-contiguous views.
    assert_eq!(sd.len(), 296);
    assert_eq!(sd.iter().map(|(_, t)| t.numel()).sum::<usize>(), 4_694_073);
    let strided = sd.iter().filter(|(_, t)| !is_contiguous(t)).count();
    assert_eq!(strided, 50);
    let w = sd.tensor("_blocks.15._project_conv.weight", &[320, 1152, 1, 1]).unwrap().to_vec();
    assert!(max_abs_diff(&w[..3], &[0.0374, 0.0293, -0.0283]) < 1e-4);
    assert!(max_abs_diff(&sd.get("_fc.bias").unwrap().to_vec()[998..], &[-0.0103, 0.0314]) < 1e-4);
}

fn is_contiguous(t: &ocular_convert::torch::TorchTensor) -> bool {
    let mut expected = 1;
    for (d, s) in t.shape.iter().zip(&t.strides).rev() {
        if *d != 1 && *s != expected {
            return false;
        }
        expected *= d;
    }
    true
}
