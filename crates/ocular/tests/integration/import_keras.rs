//! `ocular models import`: every committed Keras fixture family converts to a model folder
//! with a manifest, and an unsupported layer is refused by name.

use std::process::Command;

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn import(file: &str, models: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["models", "import"])
        .arg(workspace().join("fixtures/keras").join(file))
        .arg("--models-dir")
        .arg(models)
        .output()
        .expect("run ocular")
}

#[test]
fn every_layer_family_imports_from_keras_and_h5() {
    let models = tempfile::tempdir().expect("tempdir");
    for family in [
        "xception_like",
        "mobilenetv2_like",
        "efficientnet_like",
        "resnet_like",
        "densenet_like",
        "multi_input",
        "activations",
        "sequential",
    ] {
        for ext in ["keras", "h5"] {
            let out = import(&format!("{family}.{ext}"), models.path());
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{family}.{ext}: {text}");
            let manifest = ocular_core::Manifest::load(&models.path().join(family)).expect("manifest");
            assert_eq!(manifest.kind, ocular_core::ModelKind::Imported);
            assert!(models.path().join(family).join("model.onnx").is_file());
            assert_eq!(
                manifest.files[0].bytes,
                std::fs::metadata(models.path().join(family).join("model.onnx")).unwrap().len()
            );
        }
    }
    // The Xception-like fixture has a GAP + dense head: exact Grad-CAM is available.
    let m = ocular_core::Manifest::load(&models.path().join("xception_like")).expect("manifest");
    assert!(m.gradcam.is_some() && models.path().join("xception_like/head.json").is_file());
}

#[test]
fn unsupported_layer_is_refused_by_name_and_class() {
    let models = tempfile::tempdir().expect("tempdir");
    for file in ["unsupported.keras", "unsupported.h5"] {
        let out = import(file, models.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("my_lstm") && err.contains("LSTM"), "{err}");
        assert!(!models.path().join("unsupported").exists(), "no half-written model is left behind");
    }
}
