//! int8 graphs on the CPU that runs the tests: the installed variants pass their load-time
//! self-check here, whatever the instruction set (their weights are uint8, exact on every x86
//! CPU; docs/QUANTIZATION.md), and a variant whose answers leave its tolerance is not served:
//! the float graph is, and the registry says why.

use std::path::Path;

use ocular_core::Manifest;
use ocular_core::manifest::Precision;
use ocular_models::session::SessionOptions;
use ocular_models::{Precisions, Registry, RegistryOptions};

use crate::common::ort_library;
use crate::real::models_dir;

fn options(dir: &Path) -> RegistryOptions {
    RegistryOptions {
        models_dir: dir.to_path_buf(),
        ort_library: Some(ort_library()),
        session: SessionOptions { intra_threads: 2 },
        enabled: Some(vec!["efficientnet-lite0".into()]),
    }
}

const INT8: Precisions = Precisions { skin: Precision::Int8, image: Precision::Int8 };

#[test]
fn installed_int8_graphs_pass_their_self_check_on_this_cpu() {
    let registry = Registry::discover_with(
        RegistryOptions {
            enabled: Some(vec!["efficientnet-lite0".into(), "sklesion".into()]),
            ..options(&models_dir())
        },
        INT8,
    )
    .expect("discover");
    assert!(registry.fallbacks.is_empty(), "{:?}", registry.fallbacks);
    // Both failed their accuracy gate at install (docs/QUANTIZATION.md): served, but said aloud.
    assert_eq!(registry.warnings.len(), 2, "{:?}", registry.warnings);
    assert!(registry.warnings.iter().all(|w| w.contains("failed its accuracy gate")), "{:?}", registry.warnings);
    let image = registry.image.as_ref().expect("image slot").manifest();
    let skin = registry.skin.as_ref().expect("skin slot").manifest();
    // The int8 view: its own file and a model id that says so.
    assert!(image.onnx.starts_with("model.int8") && image.version.ends_with("+int8"), "{}", image.onnx);
    assert!(skin.onnx.starts_with("model.int8") && skin.version.ends_with("+int8"), "{}", skin.onnx);
    let check = Manifest::load(&models_dir().join("sklesion")).unwrap().variants()[0].self_check.clone();
    assert!(check.is_some_and(|c| !c.cases.is_empty() && c.max_abs_diff <= 0.05));
}

/// A copy of the installed EfficientNet-Lite0 folder (18 MB) whose self-check expects other
/// answers than the graph gives, as a saturating CPU would produce them.
fn tampered_copy(dir: &Path) {
    let src = models_dir().join("efficientnet-lite0");
    let dst = dir.join("efficientnet-lite0");
    std::fs::create_dir_all(dst.join("self-check")).unwrap();
    let mut m = Manifest::load(&src).unwrap();
    for f in &m.files {
        std::fs::copy(src.join(&f.path), dst.join(&f.path)).unwrap();
    }
    let mut variants = m.variants();
    let check = variants[0].self_check.as_mut().expect("self-check recorded");
    for case in &mut check.cases {
        // Rotate the probabilities: the top class moves and every value changes.
        case.outputs.get_mut("probabilities").unwrap().rotate_left(1);
    }
    m.extra["variants"] = serde_json::to_value(variants).unwrap();
    m.save(&dst).unwrap();
}

#[test]
fn a_variant_out_of_tolerance_falls_back_to_fp32_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    tampered_copy(dir.path());
    let registry = Registry::discover_with(options(dir.path()), INT8).expect("discover");
    let image = registry.image.as_ref().expect("image slot").manifest();
    // The float graph and the float model id, from the start: no catalog mixes the two.
    assert_eq!(image.onnx, "model.onnx");
    assert!(!image.version.contains("int8"), "{}", image.version);
    assert_eq!(registry.fallbacks.len(), 1, "{:?}", registry.fallbacks);
    let f = &registry.fallbacks[0];
    assert_eq!((f.model.as_str(), f.requested, f.serving), ("efficientnet-lite0", "int8", "fp32"));
    assert!(f.reason.contains("out of tolerance") && f.reason.contains("top class changed on"), "{}", f.reason);
    // The float graph it falls back to serves.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let model = rt.block_on(registry.image.as_ref().unwrap().get()).expect("fp32 loads");
    assert_eq!(
        model.model_id(),
        format!("efficientnet-lite0@{}", Manifest::load(&models_dir().join("efficientnet-lite0")).unwrap().version)
    );
}

#[test]
fn a_variant_without_a_self_check_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    tampered_copy(dir.path());
    let dst = dir.path().join("efficientnet-lite0");
    let mut m = Manifest::load(&dst).unwrap();
    let mut variants = m.variants();
    variants[0].self_check = None;
    m.extra["variants"] = serde_json::to_value(variants).unwrap();
    m.save(&dst).unwrap();
    let registry = Registry::discover_with(options(dir.path()), INT8).expect("discover");
    assert_eq!(registry.image.as_ref().unwrap().manifest().onnx, "model.onnx");
    assert!(registry.fallbacks[0].reason.contains("no self-check"), "{:?}", registry.fallbacks);
}
