//! Replacing a served model without downtime (issue 18, item 4): `ocular models import
//! --replace` into a running server's models folder, then `POST /api/v1/models:reload`,
//! `POST /api/v1/models/{name}/reload` or SIGHUP.
//!
//! The imported models are the Keras fixtures whose outputs `scripts/keras_serve_reference.py`
//! recorded (fixtures/keras/serve/reference.json), so "answers switch to the new model's
//! numbers" is checked against Keras' own numbers for each model, not against ocular's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ocular_convert::import::ImportOptions;
use ocular_server::AppState;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, TestApp, workspace_root};
use crate::keras_reference::{Served, serve_dir, served};

const KEY: &str = "reload-test-key-0123456789";

/// `ocular models import fixtures/keras/FIXTURE.keras --name NAME --replace` with the recipe the
/// reference script applied.
fn import(models: &Path, name: &str, m: &Served) {
    let mut opts = m.import_options(name);
    opts.replace = true;
    let file = workspace_root().join("fixtures/keras").join(format!("{}.keras", m.fixture));
    ocular_convert::install::import_keras(&file, models, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// A server state with the API key over `models` (lazy loads) and a fresh SQLite file.
fn state_over(models: &Path, data: &Path) -> AppState {
    common::state_over(models, data, &["--api-key", KEY])
}

/// One HTTP/1.1 request to a real server; `(status, JSON body)`.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, key: bool, form: Option<&[u8]>) -> (u16, Value) {
    let boundary = "ocular-reload-boundary";
    let body = form.map(|photo| {
        let mut b = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(photo);
        b.extend(format!("\r\n--{boundary}--\r\n").bytes());
        b
    });
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if key {
        head.push_str(&format!("X-Api-Key: {KEY}\r\n"));
    }
    if body.is_some() {
        head.push_str(&format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.as_ref().map_or(0, Vec::len)));
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body.as_deref().unwrap_or_default()).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let json = text.find("\r\n\r\n").and_then(|i| serde_json::from_str(&text[i + 4..]).ok()).unwrap_or(Value::Null);
    (status, json)
}

/// The class scores of an answer, by class index.
fn scores(body: &Value) -> Vec<f32> {
    let predictions = body["predictions"].as_array().expect("predictions");
    let mut got = vec![f32::NAN; predictions.len()];
    for p in predictions {
        got[p["index"].as_u64().unwrap() as usize] = p["probability"].as_f64().unwrap() as f32;
    }
    got
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// One answer a client got: whether its request started after the reload had answered, and
/// the status, model version and class scores of the answer.
struct Answer {
    after_reload: bool,
    photo: usize,
    status: u16,
    version: String,
    scores: Vec<f32>,
}

/// Clients keep predicting while another process's import replaces the model and a reload
/// swaps it in: no request fails, each answer comes from the old or the new model (its version
/// and Keras' numbers for that model agree), and every request after the reload gets the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_model_is_swapped_in_while_requests_run() {
    let (old, new) = (served("resnet_like"), served("mobilenetv2_like"));
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    import(models.path(), "swap", &old);
    let state = state_over(models.path(), data.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ocular_server::serve_until(state.clone(), listener, async {
        let _ = stopped.await;
    }));

    // Each client alternates the two photos the references were made on: the old model's
    // chelsea (32x32) and the new one's (40x40).
    let photos =
        Arc::new([&old, &new].map(|m| std::fs::read(serve_dir().join(&m.cases[1].image)).expect("reference photo")));
    let reloaded = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..3 {
        let (photos, reloaded, after) = (photos.clone(), reloaded.clone(), after.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in c.. {
                let after_reload = reloaded.load(Ordering::SeqCst);
                if after_reload && after.fetch_add(1, Ordering::SeqCst) >= 12 {
                    break;
                }
                let photo = i % 2;
                let uri = "/api/v1/models/swap/predict?top_k=10&gradcam=true";
                let (status, body) = http(addr, "POST", uri, false, Some(&photos[photo])).await;
                let version = body["model"]["version"].as_str().unwrap_or_default().to_string();
                let scores = if status == 200 { scores(&body) } else { Vec::new() };
                answers.push(Answer { after_reload, photo, status, version, scores });
            }
            answers
        }));
    }

    let before = loop {
        let (status, list) = http(addr, "GET", "/api/v1/models", false, None).await;
        assert_eq!(status, 200);
        if list["models"][0]["state"] == "ready" {
            break list["models"][0]["version"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // The reload needs the key.
    let (status, body) = http(addr, "POST", "/api/v1/models:reload", false, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    // Another process replaces the folder while requests run.
    let models_dir = models.path().to_path_buf();
    let replacement = new.clone();
    tokio::task::spawn_blocking(move || import(&models_dir, "swap", &replacement)).await.unwrap();
    let (status, body) = http(addr, "POST", "/api/v1/models:reload", true, None).await;
    assert_eq!(status, 200, "{body}");
    reloaded.store(true, Ordering::SeqCst);
    let line = &body["models"][0];
    assert_eq!((line["name"].as_str(), line["outcome"].as_str()), (Some("swap"), Some("replaced")), "{body}");
    assert_eq!(line["previous_version"].as_str(), Some(before.as_str()), "{body}");
    let after_version = line["version"].as_str().unwrap().to_string();
    assert_ne!(after_version, before, "a replaced model gets a new version: {body}");

    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|a| a.status != 200).map(|a| a.status).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {failed:?}", failed.len(), answers.len());
    let mut compared = [0usize; 2];
    for a in &answers {
        let model = match a.version.as_str() {
            v if v == before => &old,
            v if v == after_version => &new,
            v => panic!("answer from an unknown version {v}"),
        };
        assert!(!a.after_reload || a.version == after_version, "a request after the reload got the old model");
        assert_eq!(a.scores.len(), model.cases[1].output.len(), "{}: class count", model.fixture);
        // The photo Keras saw for this model: its numbers must be ocular's.
        let own_photo = if model.fixture == old.fixture { 0 } else { 1 };
        if a.photo == own_photo {
            let d = max_diff(&a.scores, &model.cases[1].output);
            assert!(d <= 1e-4, "{}: max |d| {d}", model.fixture);
            compared[own_photo] += 1;
        }
    }
    assert!(compared[0] > 0 && compared[1] > 0, "both models' answers checked against Keras: {compared:?}");
    let (status, list) = http(addr, "GET", "/api/v1/models", false, None).await;
    assert_eq!((status, list["models"][0]["version"].as_str()), (200, Some(after_version.as_str())), "{list}");
    assert_eq!(list["models"][0]["classes"].as_array().map(Vec::len), Some(new.cases[1].output.len()));
    eprintln!(
        "reload under load: {} answers, {} from the old model, {} from the new, none failed",
        answers.len(),
        answers.iter().filter(|a| a.version == before).count(),
        answers.iter().filter(|a| a.version == after_version).count()
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// A replacement that does not load (its graph is corrupt) leaves the old model serving, the
/// reload answers `409 model_reload_failed` with the reason, and `/health?verbose=1` shows it
/// until a good replacement is reloaded (here by SIGHUP, as an operator's `kill -HUP` would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_keeps_the_old_model_serving() {
    let (old, bad, good) = (served("resnet_like"), served("densenet_like"), served("mobilenetv2_like"));
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    import(models.path(), "swap", &old);
    let app = TestApp::over(state_over(models.path(), data.path()));
    let photo = std::fs::read(serve_dir().join(&old.cases[0].image)).unwrap();
    let predict = async |app: &TestApp| {
        let (status, body) = app.post_form("/api/v1/models/swap/predict?top_k=10", &[], Some(("image", &photo))).await;
        assert_eq!(status, 200, "{body}");
        (body["model"]["version"].as_str().unwrap().to_string(), scores(&body))
    };
    let (version, first) = predict(&app).await;
    assert!(max_diff(&first, &old.cases[0].output) <= 1e-4);

    // A new import whose graph was damaged after it was written.
    import(models.path(), "swap", &bad);
    let graph = models.path().join("swap/model.onnx");
    let bytes = std::fs::read(&graph).unwrap();
    std::fs::write(&graph, &bytes[..bytes.len() / 2]).unwrap();
    let reload = |uri: &'static str| {
        axum::http::Request::post(uri).header("x-api-key", KEY).body(axum::body::Body::empty()).unwrap()
    };
    let (status, body) = common::split(app.send(reload("/api/v1/models:reload")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("model_reload_failed")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("swap") && message.contains("keeps serving"), "{message}");
    // Still the old model, with its numbers.
    let (still, again) = predict(&app).await;
    assert_eq!((still.as_str(), again.as_slice()), (version.as_str(), first.as_slice()));
    let health = axum::http::Request::get("/health?verbose=1").header("x-api-key", KEY).body(axum::body::Body::empty());
    let (_, health) = common::split(app.send(health.unwrap()).await).await;
    let status_of = |h: &Value| h["models"].as_array().and_then(|m| m.iter().find(|m| m["name"] == "swap").cloned());
    let swap = status_of(&health).unwrap_or_else(|| panic!("{health}"));
    assert!(swap["reload_error"].as_str().is_some_and(|e| !e.is_empty()), "{swap}");
    assert_eq!((swap["state"].as_str(), swap["version"].as_str()), (Some("ready"), Some(version.as_str())), "{swap}");
    // The same model for one name, and an unknown name, over the per-model route.
    let (status, _) = common::split(app.send(reload("/api/v1/models/swap/reload")).await).await;
    assert_eq!(status, 409);
    let (status, body) = common::split(app.send(reload("/api/v1/models/nope/reload")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_configured")), "{body}");

    // A good replacement, picked up on SIGHUP.
    import(models.path(), "swap", &good);
    ocular_server::reload::reload_on_hangup(app.state.registry.clone());
    let pid = std::process::id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let health = loop {
        let req =
            axum::http::Request::get("/health?verbose=1").header("x-api-key", KEY).body(axum::body::Body::empty());
        let (_, health) = common::split(app.send(req.unwrap()).await).await;
        let swap = status_of(&health).unwrap();
        if swap["version"].as_str() != Some(version.as_str()) || std::time::Instant::now() > deadline {
            break swap;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(health["reload_error"].is_null() && health["reloads"] == 1, "{health}");
    let photo = std::fs::read(serve_dir().join(&good.cases[0].image)).unwrap();
    let (status, body) = app.post_form("/api/v1/models/swap/predict?top_k=10", &[], Some(("image", &photo))).await;
    assert_eq!(status, 200, "{body}");
    assert!(max_diff(&scores(&body), &good.cases[0].output) <= 1e-4, "{body}");
}

/// An imported skin model replaced and reloaded through its own route: analyses made before
/// keep the version that made them, the ones after carry the new version (the same file with
/// new labels is a new version too).
#[tokio::test]
async fn stored_analyses_keep_the_skin_model_version_that_made_them() {
    let m = served("efficientnet_like");
    let models = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let install = |prefix: &str| {
        let labels: Vec<ocular_core::Label> = ["a", "b", "c", "d"]
            .iter()
            .map(|code| ocular_core::Label {
                code: (*code).into(),
                name: format!("{prefix} {code}"),
                description: None,
                malignant: Some(*code == "b"),
            })
            .collect();
        let mut opts = ImportOptions::new("mine");
        (opts.kind, opts.labels, opts.replace) = (ocular_core::ModelKind::SkinClassifier, Some(labels), true);
        let file = workspace_root().join("fixtures/keras/efficientnet_like.keras");
        ocular_convert::install::import_keras(&file, models.path(), &opts).unwrap();
    };
    install("first");
    let app = TestApp::over(state_over(models.path(), data.path()));
    let photo = std::fs::read(serve_dir().join(&m.cases[1].image)).unwrap();
    let analyze = async |app: &TestApp| {
        let (status, body) = app.post_form("/api/v1/analyze?force=true", &[], Some(("image", &photo))).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let first = analyze(&app).await;
    install("second");
    let req = axum::http::Request::post("/api/v1/models/mine/reload").header("x-api-key", KEY);
    let (status, body) = common::split(app.send(req.body(axum::body::Body::empty()).unwrap()).await).await;
    assert_eq!((status, body["models"][0]["outcome"].as_str()), (200, Some("replaced")), "{body}");
    let second = analyze(&app).await;
    let (v1, v2) = (first["model"]["version"].as_str().unwrap(), second["model"]["version"].as_str().unwrap());
    assert_ne!(v1, v2, "new labels, new version");
    assert_eq!(second["probabilities"][0]["name"], "second a", "{second}");
    let mut versions = BTreeMap::new();
    for body in [&first, &second] {
        let id = body["id"].as_str().unwrap();
        let req = axum::http::Request::get(format!("/api/v1/analyses/{id}")).header("x-api-key", KEY);
        let (status, stored) = common::split(app.send(req.body(axum::body::Body::empty()).unwrap()).await).await;
        assert_eq!(status, 200, "{stored}");
        versions.insert(id.to_string(), stored["model"]["version"].as_str().unwrap().to_string());
    }
    assert_eq!(versions[first["id"].as_str().unwrap()], v1, "the stored analysis keeps the model that made it");
    assert_eq!(versions[second["id"].as_str().unwrap()], v2);
    assert_eq!(first["probabilities"][0]["name"], "first a");
}
