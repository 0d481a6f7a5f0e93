//! Imported Keras classifiers served over HTTP match Keras on real photos.
//!
//! Every fixture of `fixtures/keras/serve/reference.json` (written by
//! `scripts/keras_serve_reference.py`: seven families, one- and two-input, fixed and dynamic
//! size) is imported from both its `.keras` and `.h5` file the way `ocular models import` does
//! it, with the preprocessing the script applied, then each photo is uploaded to
//! `POST /api/v1/models/{name}/predict`. Every class score must be within 1e-4 of Keras', and
//! the Grad-CAM grid of the model whose head allows exact Grad-CAM must correlate >= 0.999 with
//! GradientTape's.

use ocular_convert::import::ImportOptions;
use ocular_server::AppState;
use serde_json::Value;

use crate::common::{self, TestApp, workspace_root};
use crate::keras_reference::{Reference, reference, serve_dir};

/// Imports every reference fixture from both formats into a fresh models folder and builds an
/// app over it (with the fixture model too, so other routes keep working).
fn app(r: &Reference) -> (AppState, tempfile::TempDir, tempfile::TempDir) {
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for m in &r.models {
        for ext in ["keras", "h5"] {
            let opts = m.import_options(format!("{}-{ext}", m.fixture));
            let file = workspace_root().join("fixtures/keras").join(format!("{}.{ext}", m.fixture));
            ocular_convert::install::import_keras(&file, models.path(), &opts)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    (state_over(models.path(), data.path()), models, data)
}

/// Pearson correlation of two grids; a grid without variance (a 1×1 map, say) has none, so
/// there the values themselves must agree (1.0 when they do within 1e-4).
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().map(|&x| x as f64).sum::<f64>() / n, b.iter().map(|&x| x as f64).sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64 - ma, *y as f64 - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa < 1e-12 || bb < 1e-12 {
        let same = a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4);
        return if same { 1.0 } else { 0.0 };
    }
    ab / (aa * bb).sqrt()
}

fn joined(v: &[f32]) -> String {
    v.iter().map(f32::to_string).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn imported_fixtures_served_over_http_match_keras_on_real_photos() {
    let r = reference();
    let (state, _models, _data) = app(&r);
    let app = TestApp::over(state);

    let (status, list) = app.get("/api/v1/models").await;
    assert_eq!(status, 200, "{list}");
    let cards = list["models"].as_array().unwrap();
    assert_eq!(cards.len(), 2 * r.models.len(), "{list}");
    let card = cards.iter().find(|c| c["name"] == "xception_like-keras").unwrap();
    assert_eq!(card["kind"], "classifier");
    assert_eq!(card["predict_url"], "/api/v1/models/xception_like-keras/predict");
    assert_eq!(card["input"]["extra"], serde_json::json!([{ "name": "meta", "size": 4 }]));
    assert_eq!(card["gradcam_layer"], "block14_sepconv2_act");
    // Every card says whether Grad-CAM is exact, on which layer (the one Keras' head pools),
    // or why not.
    for m in &r.models {
        for ext in ["keras", "h5"] {
            let card = cards.iter().find(|c| c["name"] == format!("{}-{ext}", m.fixture).as_str()).unwrap();
            match (card["gradcam_layer"].as_str(), &m.cases[0].gradcam) {
                (Some(layer), Some(want)) => assert_eq!(layer, want.layer, "{card}"),
                (Some(layer), None) => panic!("{}: ocular explains {layer}, Keras has no pooled head", m.fixture),
                (None, _) => assert!(card["gradcam_unavailable"].as_str().is_some_and(|s| !s.is_empty()), "{card}"),
            }
        }
    }

    let mut worst: f32 = 0.0;
    let mut cams = std::collections::BTreeSet::new();
    for m in &r.models {
        let fields: Vec<(String, String)> = m.extras.iter().map(|(k, v)| (k.clone(), joined(v))).collect();
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for ext in ["keras", "h5"] {
            for case in &m.cases {
                let photo = std::fs::read(serve_dir().join(&case.image)).unwrap();
                let uri =
                    format!("/api/v1/models/{}-{ext}/predict?top_k={}&gradcam=true", m.fixture, case.output.len());
                let (status, body) = app.post_form(&uri, &fields, Some(("image", &photo))).await;
                assert_eq!(status, 200, "{} {}: {body}", m.fixture, case.image);
                let mut got = vec![f32::NAN; case.output.len()];
                for p in body["predictions"].as_array().unwrap() {
                    got[p["index"].as_u64().unwrap() as usize] = p["probability"].as_f64().unwrap() as f32;
                }
                let err = got.iter().zip(&case.output).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(
                    err <= 1e-4,
                    "{}.{ext} {}: max |d| {err} (ocular {got:?}, Keras {:?})",
                    m.fixture,
                    case.image,
                    case.output
                );
                worst = worst.max(err);
                match case.gradcam.as_ref().filter(|_| !body["gradcam"].is_null()) {
                    Some(want) => {
                        let g = &body["gradcam"];
                        assert_eq!(
                            (g["width"].as_u64(), g["height"].as_u64()),
                            (Some(want.width as u64), Some(want.height as u64))
                        );
                        let class = &body["predictions"][0];
                        assert_eq!(class["index"].as_u64(), Some(want.class as u64), "Grad-CAM explains the top class");
                        let grid: Vec<f32> = g["grid"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
                            .collect();
                        let c = correlation(&grid, &want.grid);
                        assert!(c >= 0.999, "{}.{ext} {}: Grad-CAM correlation {c}", m.fixture, case.image);
                        assert!(g["overlay_url"].as_str().unwrap().starts_with("data:image/jpeg;base64,"));
                        cams.insert(format!("{}.{ext}", m.fixture));
                    }
                    None => assert!(body["gradcam"].is_null(), "{body}"),
                }
            }
        }
    }
    assert!(cams.contains("xception_like.keras") && cams.contains("xception_like.h5"), "{cams:?}");
    eprintln!("served fixtures vs Keras: worst max |d| {worst:.2e}; Grad-CAM compared for {cams:?}");
}

#[tokio::test]
async fn bad_prediction_requests_are_refused_in_the_envelope() {
    let r = reference();
    let (state, _models, _data) = app(&r);
    let app = TestApp::over(state);
    let photo = std::fs::read(serve_dir().join("31x31_chelsea.png")).unwrap();
    // (uri, form fields, status, code)
    type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: [Refusal; 6] = [
        ("/api/v1/models/nope/predict", vec![], 404, "model_not_configured"),
        ("/api/v1/models/xception_like-keras/predict", vec![], 400, "invalid_model_input"),
        ("/api/v1/models/xception_like-keras/predict", vec![("meta", "1,2,3")], 400, "invalid_model_input"),
        ("/api/v1/models/xception_like-keras/predict", vec![("meta", "1,2,3,nan")], 400, "invalid_model_input"),
        ("/api/v1/models/resnet_like-keras/predict", vec![("metta", "1")], 400, "invalid_model_input"),
        ("/api/v1/models/resnet_like-keras/predict?top_k=0", vec![], 400, "invalid_query"),
    ];
    for (uri, fields, status, code) in cases {
        let (got, body) = app.post_form(uri, &fields, Some(("image", &photo))).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{uri} {fields:?}: {body}");
    }
    let (got, body) = app
        .post_form("/api/v1/models/resnet_like-keras/predict", &[], Some(("image", &photo[..photo.len() / 2])))
        .await;
    assert_eq!((got, body["error"]["code"].as_str()), (400, Some("image_unreadable")), "{body}");
    let (got, body) = app.post_form("/api/v1/models/resnet_like-keras/predict", &[], None).await;
    assert_eq!((got, body["error"]["code"].as_str()), (400, Some("missing_image")), "{body}");
}

/// `ocular models import --skin` of an image-only model with the operator's labels and
/// malignant flags: `/api/v1/analyze` serves it (the input check still runs and is reported;
/// `force` because a 20×20 fixture photo is not a lesion), the metadata sent is not used, and
/// the card says so.
#[tokio::test]
async fn an_image_only_skin_model_serves_analyze_with_its_own_labels() {
    let r = reference();
    let served = r.models.iter().find(|m| m.fixture == "efficientnet_like").unwrap();
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let labels = [("a", false), ("b", true), ("c", false), ("d", true)].map(|(code, malignant)| ocular_core::Label {
        code: code.into(),
        name: code.to_uppercase(),
        description: None,
        malignant: Some(malignant),
    });
    let mut opts = ImportOptions::new("mine");
    opts.kind = ocular_core::ModelKind::SkinClassifier;
    opts.labels = Some(labels.to_vec());
    let file = workspace_root().join("fixtures/keras/efficientnet_like.keras");
    ocular_convert::install::import_keras(&file, models.path(), &opts).unwrap();
    // A second input that is not the 10-value metadata vector is refused for --skin.
    let mut two = ImportOptions::new("two");
    two.kind = ocular_core::ModelKind::SkinClassifier;
    let err = ocular_convert::install::import_keras(
        &workspace_root().join("fixtures/keras/multi_input.keras"),
        models.path(),
        &two,
    )
    .unwrap_err();
    assert!(ocular_models::registry::error_chain(&err).contains("10-value metadata"), "{err}");
    assert!(!models.path().join("two").exists());

    let app = TestApp::over(state_over(models.path(), data.path()));

    let (status, card) = app.get("/api/v1/models/skin").await;
    assert_eq!((status, &card["uses_metadata"]), (200, &Value::Bool(false)), "{card}");
    // An imported card has no test report, training data or intended use; it still answers its
    // schema (`SkinCard`), nulls and all.
    assert!(card["test_report"].is_null() && card["metadata"].is_object(), "{card}");
    let doc = ocular_server::openapi::document();
    let schema =
        &doc["paths"]["/api/v1/models/skin"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    common::schema_fits(doc, schema, &card, "card").unwrap_or_else(|e| panic!("{e}\n{card:#}"));
    let case = &served.cases[1];
    let photo = std::fs::read(serve_dir().join(&case.image)).unwrap();
    let mut answers = Vec::new();
    for age in ["30", "80"] {
        let (status, body) =
            app.post_form("/api/v1/analyze?force=true", &[("age", age)], Some(("image", &photo))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"]["uses_metadata"], false);
        assert!(body["input_check"]["reason"].is_string(), "the input check still runs: {body}");
        let probs: Vec<f32> = body["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["probability"].as_f64().unwrap() as f32)
            .collect();
        let err = probs.iter().zip(&case.output).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err <= 1e-4, "{probs:?} vs Keras {:?}", case.output);
        let malignant = (body["malignant_probability"].as_f64().unwrap() as f32 - (probs[1] + probs[3])).abs();
        assert!(malignant < 1e-6, "{body}");
        assert_eq!(body["probabilities"][1]["code"], "b");
        answers.push(probs);
    }
    assert_eq!(answers[0], answers[1], "metadata is not used by an image-only model");
}

/// A server state over `models` (imported models, loaded lazily) and a fresh SQLite file in `data`.
fn state_over(models: &std::path::Path, data: &std::path::Path) -> AppState {
    common::state_over(models, data, &[])
}

/// The memory a prediction reserves grows with the imported graph (issue 18): the import
/// records the sum of its layer outputs, and `estimate::predict` reserves twice that instead of
/// sklesion's measured fixed part. A tiny fixture reserves less than an analysis, a larger one
/// more than a tiny one; the real sklesion graph's bound covers what was measured for it
/// (`estimate::ANALYZE_FIXED`, measured by the `request_peak` example), so the bound is not
/// below a real model's peak.
#[test]
fn a_prediction_reserves_memory_by_the_imported_graph() {
    use ocular_models::estimate;
    let models = tempfile::tempdir().unwrap();
    let mut recorded = Vec::new();
    for fixture in ["densenet_like", "xception_like"] {
        let file = workspace_root().join("fixtures/keras").join(format!("{fixture}.keras"));
        let (dir, converted) =
            ocular_convert::install::import_keras(&file, models.path(), &ImportOptions::new(fixture)).unwrap();
        let manifest = ocular_core::Manifest::load(&dir).unwrap();
        let bytes = manifest.extra["activation_bytes"].as_u64().unwrap_or_else(|| panic!("{fixture}: not recorded"));
        assert_eq!(Some(bytes), converted.activation_values.map(|v| v * 4));
        recorded.push(bytes);
    }
    let photo = std::fs::read(serve_dir().join("31x31_chelsea.png")).unwrap();
    let limits = ocular_image::Limits { max_bytes: 20 << 20, max_pixels: 40_000_000 };
    let [small, larger] = [recorded[0], recorded[1]].map(|a| estimate::predict(&photo, &limits, Some(a)));
    assert!(
        recorded[0] < recorded[1],
        "densenet_like (16x16) {} vs xception_like (31x31) {}",
        recorded[0],
        recorded[1]
    );
    assert!(small < larger && larger < estimate::analyze(&photo, &limits), "{small} {larger}");

    let path = std::env::var_os("OCULAR_SKLESION_KERAS")
        .map_or_else(|| workspace_root().join("models/.cache/src/sklesion/model.keras"), std::path::PathBuf::from);
    let found =
        if path.exists() { Ok(path) } else { Err("sklesion model.keras not found (set OCULAR_SKLESION_KERAS)") };
    let Some(path) = ocular_test_support::Need::Models.available(found) else { return };
    let values = ocular_convert::keras::convert(&path).unwrap().activation_values.expect("sklesion has a fixed size");
    let bound = estimate::predict(&photo, &limits, Some(values * 4));
    eprintln!(
        "activation bytes: densenet_like {}, xception_like {}, sklesion {}",
        recorded[0],
        recorded[1],
        values * 4
    );
    assert!(bound >= estimate::analyze(&photo, &limits), "sklesion's bound {bound} is below its measured peak");
}

/// The model routes answer what the OpenAPI document says, field by field: the cards of
/// `GET /api/v1/models` (with an extra input, classes, Grad-CAM layer, source) and a prediction
/// with Grad-CAM, against the typed schemas (`ModelList`, `PredictReport`).
#[tokio::test]
async fn the_model_routes_answer_what_their_openapi_schemas_say() {
    let r = reference();
    let served = r.models.iter().find(|m| m.fixture == "xception_like").unwrap();
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let file = workspace_root().join("fixtures/keras/xception_like.keras");
    ocular_convert::install::import_keras(&file, models.path(), &ImportOptions::new("x")).unwrap();
    let app = TestApp::over(state_over(models.path(), data.path()));
    let doc = ocular_server::openapi::document();
    let answer_schema = |path: &str, method: &str| {
        let ok = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(ok["$ref"].is_string(), "{path}: answer not typed: {ok}");
        ok.clone()
    };

    let (status, list) = app.get("/api/v1/models").await;
    assert_eq!(status, 200);
    common::schema_fits(doc, &answer_schema("/api/v1/models", "get"), &list, "models").unwrap();
    let fields: Vec<(String, String)> = served.extras.iter().map(|(k, v)| (k.clone(), joined(v))).collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let photo = std::fs::read(serve_dir().join(&served.cases[0].image)).unwrap();
    let (status, body) =
        app.post_form("/api/v1/models/x/predict?top_k=3&gradcam=true", &fields, Some(("image", &photo))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["gradcam"]["overlay_url"].is_string(), "{body}");
    common::schema_fits(doc, &answer_schema("/api/v1/models/{name}/predict", "post"), &body, "predict").unwrap();
    // And the checker is not blind: a field the schema does not list is caught.
    let mut extra = body.clone();
    extra["predictions"][0]["surprise"] = Value::Bool(true);
    assert!(common::schema_fits(doc, &answer_schema("/api/v1/models/{name}/predict", "post"), &extra, "p").is_err());
}
