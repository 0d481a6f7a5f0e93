//! `ocular analyze --json` prints the HTTP API's report (`ocular_models::report::SkinReport`),
//! not a shape of its own: the same field names, `heatmap` (not `gradcam`) and
//! `malignant_probability` included.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn analyze_json_is_the_api_report() {
    let manifest = root().join("models/sklesion/manifest.json");
    let installed = std::fs::metadata(&manifest).map_err(|e| format!("{}: {e}", manifest.display()));
    let Some(_) = ocular_test_support::Need::Models.available(installed) else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let heatmap = data.path().join("overlay.jpg");
    // The ellipse the server's analyze test uses; Keras says vasc 0.837 with these metadata.
    let photo = root().join("fixtures/keras/sklesion/ellipse.png");
    let out = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["--data-dir", data.path().to_str().unwrap(), "--models-dir", root().join("models").to_str().unwrap()])
        .args(["analyze", photo.to_str().unwrap(), "--age", "45", "--sex", "female", "--location", "trunk", "--json"])
        .args(["--heatmap", heatmap.to_str().unwrap()])
        .env("OCULAR_LOG", "warn")
        .output()
        .expect("ocular runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
    let mut want = [
        "prediction",
        "probabilities",
        "malignant_probability",
        "input_check",
        "forced",
        "heatmap",
        "model",
        "image",
        "disclaimer",
        "timings_ms",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want, "{body}");
    assert_eq!(body["prediction"]["code"], "vasc");
    assert!((body["prediction"]["probability"].as_f64().unwrap() - 0.837).abs() < 1e-3, "{}", body["prediction"]);
    let probs = body["probabilities"].as_array().expect("probabilities");
    let malignant: f64 =
        probs.iter().filter(|p| p["malignant"] == true).map(|p| p["probability"].as_f64().unwrap()).sum();
    assert!((body["malignant_probability"].as_f64().unwrap() - malignant).abs() < 1e-6, "{body}");
    assert_eq!(body["heatmap"]["class"], "vasc");
    assert_eq!(body["heatmap"]["grid"].as_array().map(Vec::len), Some(8));
    assert!(std::fs::read(&heatmap).expect("overlay").starts_with(&[0xff, 0xd8]));
}
