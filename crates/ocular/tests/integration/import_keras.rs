//! `ocular models import`: every committed Keras fixture family that can be served converts to
//! a model folder with a manifest recording how to serve it; every kind of bad import (an
//! unsupported layer, inputs of the wrong rank or channels, labels that do not match the
//! outputs, a name already taken, a file that is not Keras) is refused with a clear message and
//! leaves nothing installed. `ocular predict` then answers as Keras does.

use std::process::Command;

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn import(file: &str, models: &std::path::Path) -> std::process::Output {
    import_with(file, models, &[])
}

fn import_with(file: &str, models: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["models", "import"])
        .arg(workspace().join("fixtures/keras").join(file))
        .arg("--models-dir")
        .arg(models)
        .args(args)
        .output()
        .expect("run ocular")
}

/// The models folder holds exactly these entries (no half-written `.NAME.partial` either).
fn installed(models: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(models).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn every_layer_family_imports_from_keras_and_h5() {
    let models = tempfile::tempdir().expect("tempdir");
    for family in
        ["xception_like", "mobilenetv2_like", "efficientnet_like", "resnet_like", "densenet_like", "multi_input"]
    {
        for ext in ["keras", "h5"] {
            let out = import_with(&format!("{family}.{ext}"), models.path(), &["--replace"]);
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

#[test]
fn models_that_cannot_be_served_are_refused_and_nothing_is_installed() {
    let models = tempfile::tempdir().expect("tempdir");
    let dir = models.path();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\n").unwrap();
    let dup = dir.join("dup.txt");
    std::fs::write(&dup, "a\nb\na\nd\ne\n").unwrap();
    let before = installed(dir);
    let labels = labels.to_str().unwrap();
    let dup = dup.to_str().unwrap();
    let cases: [(&str, Vec<&str>, &[&str]); 9] = [
        // An input of rank 2 only: no photo to feed.
        ("tfkeras_hard_sigmoid.h5", vec![], &["no image input", "x [?, 4]"]),
        // Rank 4 but 2 or 5 channels: not an RGB photo.
        ("sequential.keras", vec![], &["2 channels, not 3"]),
        ("activations.h5", vec![], &["5 channels, not 3"]),
        // No fixed size and none given.
        ("dynamic_size.keras", vec![], &["--size WIDTHxHEIGHT"]),
        // Five classes, three labels.
        ("xception_like.keras", vec!["--labels", labels], &["3 labels for the 5 classes of output dense_4"]),
        ("xception_like.keras", vec!["--labels", dup], &["\"a\" appears twice"]),
        ("xception_like.keras", vec!["--gradcam-layer", "block1_conv1"], &["block14_sepconv2_act"]),
        // Not a Keras file at all.
        ("xception_like.json", vec![], &["neither a Keras"]),
        ("unsupported.keras", vec![], &["my_lstm", "LSTM"]),
    ];
    for (file, args, needles) in cases {
        let out = import_with(file, dir, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} {args:?} was accepted");
        for n in needles {
            assert!(err.contains(n), "{file} {args:?}: {n:?} not in: {err}");
        }
        assert_eq!(installed(dir), before, "{file} {args:?} left something installed");
    }
    // A name already taken is refused (and the installed model kept) unless --replace.
    assert!(import("resnet_like.keras", dir).status.success());
    let manifest = std::fs::read(dir.join("resnet_like/manifest.json")).unwrap();
    let out = import_with("densenet_like.keras", dir, &["--name", "resnet_like"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already installed") && err.contains("--replace"), "{err}");
    assert_eq!(std::fs::read(dir.join("resnet_like/manifest.json")).unwrap(), manifest);
    let out = import_with("densenet_like.keras", dir, &["--name", "resnet_like", "--replace"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_manifest_records_labels_preprocessing_and_grad_cam() {
    let models = tempfile::tempdir().expect("tempdir");
    let dir = models.path();
    let labels = dir.join("labels.json");
    std::fs::write(&labels, r#"[{"code":"a","name":"Alpha"},{"code":"b","name":"Beta","malignant":true},"c","d","e"]"#)
        .unwrap();
    let args = ["--labels", labels.to_str().unwrap(), "--scale", "0.5", "--mean", "1,2,3", "--std", "4", "--name", "x"];
    let out = import_with("xception_like.h5", dir, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = ocular_core::Manifest::load(&dir.join("x")).unwrap();
    assert_eq!(m.labels.iter().map(|l| l.code.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
    assert_eq!((m.labels[1].name.as_str(), m.labels[1].malignant), ("Beta", Some(true)));
    let pre = m.image.unwrap();
    assert_eq!((pre.width, pre.height, pre.scale, pre.mean, pre.std), (31, 31, 0.5, [1.0, 2.0, 3.0], [4.0; 3]));
    assert_eq!(m.gradcam.unwrap().layer, "block14_sepconv2_act");
    assert_eq!(m.extra["classifier"]["output"], "dense_4");
    assert_eq!(m.extra["classifier"]["extra_inputs"], serde_json::json!([{ "name": "meta", "size": 4 }]));
    // Grad-CAM named explicitly, or turned off (the reason recorded).
    let out = import_with("xception_like.keras", dir, &["--gradcam-layer", "block14_sepconv2_act", "--name", "y"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = import_with("xception_like.keras", dir, &["--gradcam-layer", "none", "--name", "z"]);
    assert!(out.status.success());
    let z = ocular_core::Manifest::load(&dir.join("z")).unwrap();
    assert!(z.gradcam.is_none() && !dir.join("z/head.json").exists());
    assert!(z.extra["gradcam_unavailable"].as_str().unwrap().contains("turned off"));
    // A model without an exact head says why in the manifest too.
    assert!(import("resnet_like.keras", dir).status.success());
    let d = ocular_core::Manifest::load(&dir.join("resnet_like")).unwrap();
    assert!(d.gradcam.is_none() && d.extra["gradcam_unavailable"].as_str().is_some_and(|s| !s.is_empty()));
}

/// `ocular predict` on an imported fixture gives Keras' numbers (the reference of
/// `scripts/keras_serve_reference.py`) and writes the Grad-CAM overlay.
#[test]
fn predict_runs_an_imported_model_as_keras_does() {
    let Some(ort) =
        ocular_test_support::Need::Models.available(ocular_models::runtime::locate(None, &workspace().join("models")))
    else {
        return;
    };
    let models = tempfile::tempdir().expect("tempdir");
    let dir = models.path();
    assert!(import("xception_like.keras", dir).status.success());
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(workspace().join("fixtures/keras/serve/reference.json")).unwrap())
            .unwrap();
    let served = reference["models"].as_array().unwrap().iter().find(|m| m["fixture"] == "xception_like").unwrap();
    let case = &served["cases"][1];
    let heatmap = dir.join("heatmap.jpg");
    let out = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["predict", "--model", "xception_like", "--json", "--top-k", "5", "--input", "meta=0.2,0.4,0.6,0.8"])
        .arg(workspace().join("fixtures/keras/serve").join(case["image"].as_str().unwrap()))
        .arg("--heatmap")
        .arg(&heatmap)
        .arg("--models-dir")
        .arg(dir)
        .arg("--ort-library")
        .arg(&ort)
        .output()
        .expect("run ocular");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for p in body["predictions"].as_array().unwrap() {
        let want = case["output"][p["index"].as_u64().unwrap() as usize].as_f64().unwrap();
        assert!((p["probability"].as_f64().unwrap() - want).abs() <= 1e-4, "{p} vs Keras {want}");
    }
    assert_eq!(body["predictions"].as_array().unwrap().len(), 5);
    assert_eq!((body["gradcam"]["width"].as_u64(), body["gradcam"]["height"].as_u64()), (Some(4), Some(4)), "{body}");
    assert!(std::fs::read(&heatmap).unwrap().starts_with(&[0xff, 0xd8]), "a JPEG overlay");
}
