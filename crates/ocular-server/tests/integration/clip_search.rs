//! The search API with `--search-models clip` and the tiny random-weight CLIP of
//! `fixtures/clip/` (installed with `import_clip`, as users install theirs): photo and text
//! search, zero-shot labels on `/api/v1/embed/image`, `/health?verbose=1`, the switch from the
//! default models (409 until reindexed), an image-only install, and start-up validation.

use std::path::PathBuf;
use std::sync::Arc;

use ocular_convert::clip::Precision;
use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions};
use ocular_server::AppState;
use ocular_server::search_models::{self, SearchModels};
use serde_json::{Value, json};

use crate::catalog_app::{CatalogApp, form_request, ids};
use crate::common::{config, ort_library, split, workspace_root};

fn fixtures() -> PathBuf {
    workspace_root().join("fixtures/clip")
}

fn fixture_photo(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("fixture photo")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).expect("reference.json"))
        .expect("reference json")
}

fn row(v: &Value) -> Vec<f32> {
    v.as_array().expect("row").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A server over the tiny CLIP (both towers, or the image tower alone) and `store`.
struct ClipApp {
    state: AppState,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl ClipApp {
    fn new(image_only: bool, store: Option<Arc<dyn ocular_store::Store>>) -> Self {
        let models = tempfile::tempdir().expect("models dir");
        let data = tempfile::tempdir().expect("data dir");
        let export = if image_only { vec![fixtures().join("vision.onnx")] } else { vec![fixtures()] };
        ocular_convert::install::import_clip(
            &export,
            models.path(),
            "tiny",
            Precision::Float32,
            None,
            &mut |_: &str| {},
        )
        .expect("import-clip");
        let config = config(&[
            "--models-dir",
            models.path().to_str().expect("utf8"),
            "--data-dir",
            data.path().to_str().expect("utf8"),
            "--search-models",
            "clip",
        ]);
        let options = RegistryOptions {
            models_dir: config.models_dir.clone(),
            ort_library: Some(ort_library()),
            session: SessionOptions { intra_threads: 1 },
            enabled: None,
        };
        let registry = search_models::discover(options, config.search_models, config.precisions()).expect("registry");
        let store = store.unwrap_or_else(|| {
            ocular_store::open(&ocular_store::Location::Sqlite(data.path().join("t.db")), true).expect("store")
        });
        Self { state: AppState::new(config, registry, store), _dirs: (models, data) }
    }

    async fn loaded(self) -> Self {
        ocular_server::search::spawn_index_load(&self.state).expect("search is configured").await.expect("load");
        self
    }

    async fn call(&self, req: axum::http::Request<axum::body::Body>) -> (u16, Value) {
        use tower::ServiceExt;
        split(ocular_server::router(self.state.clone()).oneshot(req).await.expect("infallible")).await
    }

    async fn form(&self, uri: &str, fields: &[(&str, &str)], image: Option<&[u8]>) -> (u16, Value) {
        self.call(form_request("POST", uri, fields, image)).await
    }

    async fn json(&self, uri: &str, body: Value) -> (u16, Value) {
        let req = axum::http::Request::post(uri)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request");
        self.call(req).await
    }

    async fn health(&self) -> Value {
        self.call(axum::http::Request::get("/health?verbose=1").body(axum::body::Body::empty()).expect("req")).await.1
    }

    /// The model ids of the installed towers, from their manifests.
    fn tower_ids(&self) -> (String, Option<String>) {
        let id = |m: &ocular_core::Manifest| format!("{}@{}", m.name, m.version);
        let image = id(&self.state.registry.clip_image.as_ref().expect("image tower").manifest());
        (image, self.state.registry.clip_text.as_ref().map(|t| id(&t.manifest())))
    }
}

/// (id, title, photo): the reference photos under reference texts.
const PRODUCTS: [(&str, &str, &str); 3] = [
    ("cat", "an astronaut in a white spacesuit", "cat.png"),
    ("rocket", "a rocket launching into the sky", "rocket.png"),
    ("astronaut", "A cup of coffee ☕ on a table!", "astronaut.png"),
];

async fn add_products(call: impl AsyncFn(&[(&str, &str)], &[u8]) -> (u16, Value)) {
    for (id, title, photo) in PRODUCTS {
        let (status, body) = call(&[("id", id), ("title", title)], &fixture_photo(photo)).await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_zero_shot_labels_with_clip() {
    let app = ClipApp::new(false, None).loaded().await;
    add_products(async |fields, photo| app.form("/api/v1/products", fields, Some(photo)).await).await;
    let (image_id, text_id) = app.tower_ids();
    let text_id = text_id.expect("text tower");

    // Every space is CLIP's, reported with its model id; nothing waits for a reindex.
    let health = app.health().await;
    assert_eq!(health["search_models"]["configured"], json!("clip"), "{health}");
    assert_eq!(health["search_models"]["reindex_required"], json!(false));
    assert_eq!(health["search_models"]["unfilled_spaces"], json!([]));
    assert_eq!(health["search_models"]["zero_shot_labels"], json!(true));
    let models: Vec<(Value, Value)> =
        health["search"].as_array().expect("spaces").iter().map(|s| (s["space"].clone(), s["model"].clone())).collect();
    assert_eq!(
        models,
        [(json!("image"), json!(image_id)), (json!("text"), json!(text_id)), (json!("image_text"), json!(image_id))]
    );
    let names: Vec<&str> =
        health["models"].as_array().expect("models").iter().map(|m| m["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["tiny-image", "tiny-text"], "no MiniLM or EfficientNet in a CLIP-only models dir");

    // Photo search finds the photo's own product first.
    for (id, _, photo) in PRODUCTS {
        let (status, body) = app.form("/api/v1/search", &[("threshold", "-1")], Some(&fixture_photo(photo))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids(&body)[0], id);
        assert!((body["results"][0]["similarity"].as_f64().expect("sim") - 1.0).abs() < 1e-4, "{body}");
    }

    // Text search goes through the CLIP text tower: the photo cosines are the reference's.
    let r = reference();
    let query = r["texts"][1].as_str().expect("text");
    let (status, body) = app.json("/api/v1/search/text", json!({"query": query, "threshold": -1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).len(), 3);
    for hit in body["results"].as_array().expect("results") {
        let i = PRODUCTS.iter().position(|p| p.0 == hit["product"]["id"]).expect("known product");
        let want = dot(&row(&r["fp32"]["text"][1]), &row(&r["fp32"]["image"][i]));
        let got = hit["signals"]["image_text"].as_f64().expect("image_text cosine") as f32;
        assert!((got - want).abs() < 0.02, "{}: {got} vs reference {want}", hit["product"]["id"]);
    }

    // Raw embeddings are CLIP's, 16-d, and the text one equals the reference.
    let (status, body) = app.json("/api/v1/embed/text", json!({"text": query})).await;
    assert_eq!((status, body["model"].clone(), body["dim"].clone()), (200, json!(text_id), json!(16)), "{body}");
    assert!(dot(&row(&body["embedding"]), &row(&r["fp32"]["text"][1])) > 0.9999);

    // Zero-shot labels: the probabilities `score_labels` gives, and the reference's.
    let labels: Vec<&str> = r["labels"].as_array().expect("labels").iter().map(|l| l.as_str().expect("l")).collect();
    let field = serde_json::to_string(&labels).expect("json");
    let (status, body) = app.form("/api/v1/embed/image", &[("labels", &field)], Some(&fixture_photo("cat.png"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], json!(image_id));
    let text = app.state.registry.clip_text.as_ref().expect("text slot").get().await.expect("text tower");
    let direct = text.score_labels(&row(&body["embedding"]), &labels).expect("score_labels");
    let got = body["labels"].as_array().expect("labels");
    assert_eq!(got.len(), 3);
    for ((name, p), g) in direct.iter().zip(got) {
        assert_eq!(g["name"], json!(name), "best first, as score_labels orders them");
        assert!((g["probability"].as_f64().expect("p") as f32 - p).abs() < 1e-6);
    }
    for (label, want) in labels.iter().zip(row(&r["zero_shot"][0])) {
        let g = got.iter().find(|g| g["name"] == json!(label)).expect("label");
        assert!((g["probability"].as_f64().expect("p") as f32 - want).abs() < 2e-3, "{label}");
    }
    // One label per line works too; without `labels` CLIP returns no labels.
    let (status, lines) =
        app.form("/api/v1/embed/image", &[("labels", &labels.join("\n"))], Some(&fixture_photo("cat.png"))).await;
    assert_eq!((status, lines["labels"].clone()), (200, body["labels"].clone()));
    let (_, plain) = app.form("/api/v1/embed/image", &[], Some(&fixture_photo("cat.png"))).await;
    assert_eq!(plain["labels"], json!([]));
    // Untrusted input is bounded.
    let many = (0..65).map(|i| format!("label {i}")).collect::<Vec<_>>().join("\n");
    for bad in [many.as_str(), "[1, 2]", "a cat\na cat", &"x".repeat(301)] {
        let (status, body) = app.form("/api/v1/embed/image", &[("labels", bad)], Some(&fixture_photo("cat.png"))).await;
        assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_labels")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_need_clip() {
    let app = CatalogApp::new(&[]);
    let (status, body) =
        app.form("POST", "/api/v1/embed/image", &[("labels", "a cat\na dog")], Some(&fixture_photo("cat.png"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("labels_need_clip")), "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("--search-models clip"));
    let (_, health) = app.get("/health?verbose=1").await;
    assert_eq!(health["search_models"]["configured"], json!("default"));
    assert_eq!(health["search_models"]["zero_shot_labels"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_the_default_models_answers_409_until_reindexed() {
    let default = CatalogApp::new(&[]).loaded().await;
    add_products(async |fields, photo| default.form("POST", "/api/v1/products", fields, Some(photo)).await).await;
    let store = default.state.store.clone();

    let app = ClipApp::new(false, Some(store.clone())).loaded().await;
    let (status, body) = app.form("/api/v1/search", &[], Some(&fixture_photo("rocket.png"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("reindex_required")), "{body}");
    let (status, body) = app.json("/api/v1/search/text", json!({"query": "a rocket"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("reindex_required")), "{body}");
    let health = app.health().await;
    assert_eq!(health["search_models"]["reindex_required"], json!(true), "{health}");
    for space in health["search"].as_array().expect("spaces") {
        assert_eq!(space["state"], json!("reindex_required"), "{space}");
    }

    // `ocular reindex` with the same configuration (its code path: the catalog's reindex).
    let catalog = app.state.catalog.clone().expect("catalog");
    tokio::task::spawn_blocking(move || {
        let embedders = tokio::runtime::Handle::current().block_on(catalog.embedders()).expect("towers");
        let loader = ocular_search::ImageLoader::local(ocular_image::Limits::default());
        let report = ocular_search::reindex::reindex(
            &catalog,
            embedders.as_ref(),
            &loader,
            ocular_search::reindex::Which::All,
            8,
            &mut Quiet,
        )
        .expect("reindex");
        assert_eq!((report.products, report.failures.len()), (3, 0), "{report:?}");
    })
    .await
    .expect("reindex task");

    // After a restart (a running server re-checks by itself within 10 s) everything searches.
    let app = ClipApp::new(false, Some(store)).loaded().await;
    let health = app.health().await;
    assert_eq!(health["search_models"]["reindex_required"], json!(false), "{health}");
    let (status, body) = app.form("/api/v1/search", &[("threshold", "-1")], Some(&fixture_photo("rocket.png"))).await;
    assert_eq!((status, ids(&body)[0].as_str()), (200, "rocket"), "{body}");
    let (status, body) = app.json("/api/v1/search/text", json!({"query": "a rocket", "threshold": -1})).await;
    assert_eq!(status, 200, "{body}");
}

struct Quiet;

impl ocular_search::import::Progress for Quiet {
    fn update(&mut self, _: u64, _: u64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_only_clip_install_searches_photos_and_says_why_text_fails() {
    let app = ClipApp::new(true, None).loaded().await;
    assert_eq!(app.state.registry.statuses().len(), 1, "the text tower is neither installed nor loaded");
    add_products(async |fields, photo| app.form("/api/v1/products", fields, Some(photo)).await).await;

    let (status, body) =
        app.form("/api/v1/search", &[("threshold", "-1")], Some(&fixture_photo("astronaut.png"))).await;
    assert_eq!((status, ids(&body)[0].as_str()), (200, "astronaut"), "{body}");

    let (status, body) = app.json("/api/v1/search/text", json!({"query": "a rocket"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("model_not_configured")), "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("text tower"), "{body}");
    let (status, body) = app.json("/api/v1/embed/text", json!({"text": "a rocket"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("model_not_configured")), "{body}");
    let (status, body) =
        app.form("/api/v1/embed/image", &[("labels", "a cat\na dog")], Some(&fixture_photo("cat.png"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("model_not_configured")), "{body}");

    let health = app.health().await;
    assert_eq!(health["search_models"]["unfilled_spaces"], json!(["text"]), "{health}");
    assert_eq!(health["search_models"]["zero_shot_labels"], json!(false));
    let spaces: Vec<&str> =
        health["search"].as_array().expect("spaces").iter().map(|s| s["space"].as_str().expect("space")).collect();
    assert_eq!(spaces, ["image", "image_text"]);
}

#[test]
fn clip_chosen_but_not_installed_is_a_start_up_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    let options = RegistryOptions {
        models_dir: empty.path().to_path_buf(),
        ort_library: None,
        session: SessionOptions::default(),
        enabled: None,
    };
    let registry = Registry::discover(options).expect("discover");
    let err = search_models::provider(SearchModels::Clip, &registry).err().expect("no CLIP installed");
    assert!(err.to_string().contains("ocular models import-clip"), "{err}");
    assert!(search_models::provider(SearchModels::Default, &registry).expect("default").is_none(), "search off");
    assert_eq!(config(&["--search-models", "clip"]).search_models, SearchModels::Clip);
    assert_eq!(config(&[]).search_models, SearchModels::Default);
}

#[test]
fn each_choice_leaves_the_other_search_models_out_of_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    ocular_convert::install::import_clip(&[fixtures()], dir.path(), "tiny", Precision::Int8, None, &mut |_: &str| {})
        .expect("import-clip");
    for m in ["efficientnet-lite0", "minilm"] {
        let to = dir.path().join(m);
        std::fs::create_dir_all(&to).expect("mkdir");
        let from = workspace_root().join("models").join(m).join("manifest.json");
        std::fs::copy(&from, to.join("manifest.json")).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let options = RegistryOptions {
        models_dir: dir.path().to_path_buf(),
        ort_library: None,
        session: SessionOptions::default(),
        enabled: None,
    };
    let names = |choice| {
        let registry = search_models::discover(options.clone(), choice, Default::default()).expect("discover");
        registry.statuses().into_iter().map(|s| s.name).collect::<Vec<_>>()
    };
    // EfficientNet stays under CLIP: skin analysis uses it to reject photos that are not skin.
    assert_eq!(names(SearchModels::Clip), ["efficientnet-lite0", "tiny-image", "tiny-text"]);
    assert_eq!(names(SearchModels::Default), ["efficientnet-lite0", "minilm"]);
}
