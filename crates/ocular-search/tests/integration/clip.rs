//! Product search with the tiny random-weight CLIP of `fixtures/clip/` behind it, installed the
//! way users install theirs (`import_clip`): photo search, text search through the CLIP text
//! tower (checked against the reference embeddings computed by `transformers`), the switch from
//! the default models (refused until reindexed), and an image-only install.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ocular_convert::clip::Precision;
use ocular_convert::install;
use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_search::embed::clip::ClipProvider;
use ocular_search::embed::{self, IMAGE, IMAGE_TEXT, TEXT, fills};
use ocular_search::reindex::{Which, reindex};
use ocular_search::{
    Catalog, CatalogOptions, EmbedderProvider, Embedders, ImageChange, ImageInput, SearchError, SearchOptions,
    SpaceState, WriteMode,
};
use ocular_store::{NewProduct, Store};
use serde_json::Value;

use crate::common::{self, Quiet};

fn fixtures() -> PathBuf {
    common::root().join("fixtures/clip")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).expect("reference.json"))
        .expect("reference json")
}

fn row(v: &Value, i: usize) -> Vec<f32> {
    v[i].as_array().expect("row").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The tiny CLIP installed into a fresh models directory, and a registry over it.
pub struct TinyClip {
    pub registry: Registry,
    _dir: tempfile::TempDir,
}

impl TinyClip {
    /// Both fp32 towers, or (`image_only`) the vision graph alone.
    pub fn install(image_only: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let export = if image_only { vec![fixtures().join("vision.onnx")] } else { vec![fixtures()] };
        install::import_clip(&export, dir.path(), "tiny", Precision::Float32, None, &mut |_: &str| {})
            .expect("import-clip");
        let models = common::root().join("models");
        let ort = ocular_test_support::Need::Models.require(runtime::locate(None, &models));
        let registry = Registry::discover(RegistryOptions {
            models_dir: dir.path().to_path_buf(),
            ort_library: Some(ort),
            session: SessionOptions { intra_threads: 1 },
            enabled: None,
        })
        .expect("registry");
        Self { registry, _dir: dir }
    }

    pub fn provider(&self) -> Arc<ClipProvider> {
        Arc::new(ClipProvider::from_registry(&self.registry).expect("clip provider"))
    }

    pub fn embedders(&self) -> Arc<dyn Embedders> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(self.provider().load()).expect("towers load")
    }

    /// A catalog over `store` that re-checks a space waiting for a reindex on every search.
    pub fn catalog(&self, store: Arc<dyn Store>) -> Catalog {
        let options = CatalogOptions { recheck: Duration::ZERO, ..CatalogOptions::default() };
        Catalog::new(store, self.provider(), options).expect("catalog")
    }
}

/// (id, title, photo path): the three reference photos, titled with reference texts.
fn products() -> Vec<(&'static str, &'static str, PathBuf)> {
    vec![
        ("cat", "an astronaut in a white spacesuit", fixtures().join("cat.png")),
        ("rocket", "a rocket launching into the sky", fixtures().join("rocket.png")),
        ("astronaut", "A cup of coffee ☕ on a table!", fixtures().join("astronaut.png")),
    ]
}

fn add_products(catalog: &Catalog, emb: &dyn Embedders) {
    for (id, title, photo) in products() {
        let bytes = std::fs::read(photo).expect("photo");
        let image = ImageChange::New(ImageInput { bytes, source_url: None });
        catalog.upsert(emb, WriteMode::Create, NewProduct::new(id, title), image).expect("create");
    }
}

#[test]
fn spaces_and_model_ids_come_from_the_clip_manifests() {
    let clip = TinyClip::install(false);
    let spaces = clip.provider().spaces();
    let image = clip.registry.clip_image.as_ref().expect("image tower").manifest();
    let text = clip.registry.clip_text.as_ref().expect("text tower").manifest();
    let id = |m: &ocular_core::Manifest| format!("{}@{}", m.name, m.version);
    let got: Vec<(&str, String, usize)> = spaces.iter().map(|s| (s.space, s.model.clone(), s.dim)).collect();
    assert_eq!(
        got,
        [(IMAGE, id(&image), 16), (TEXT, id(&text), 16), (IMAGE_TEXT, id(&image), 16)],
        "no ConSE: photos are in the text tower's space already"
    );
}

#[test]
fn search_by_photo_and_by_text_through_the_clip_towers() {
    let clip = TinyClip::install(false);
    let emb = clip.embedders();
    let (store, _dir) = common::store();
    let catalog = clip.catalog(store);
    catalog.load_now().expect("load");
    add_products(&catalog, emb.as_ref());

    // Photo search: each photo finds its own product first, with its exact cosine of 1.
    for (id, _, photo) in products() {
        let bytes = std::fs::read(photo).expect("photo");
        let results = catalog.search_image(emb.as_ref(), &bytes, &SearchOptions::new(3, -1.0)).expect("search");
        assert_eq!(results.results[0].product.id, id);
        assert!((results.results[0].similarity - 1.0).abs() < 1e-4, "{results:?}");
    }

    // Text search: the query goes through the CLIP text tower. Its cosines with the photos
    // and titles must be the ones the reference implementation's embeddings give (int8
    // in-memory codes: within 0.02); MiniLM or ConSE would give other numbers, and other widths.
    let r = reference();
    let query = r["texts"][0].as_str().expect("text");
    let q = emb.embed_query(query).expect("embed query");
    assert!(dot(&q.image_text, &row(&r["fp32"]["text"], 0)) > 0.9999, "the query vector is CLIP's");
    assert_eq!(q.text, q.image_text, "one text-tower vector serves both spaces");
    let results = catalog.search_text(emb.as_ref(), query, &SearchOptions::new(10, -1.0)).expect("text search");
    assert_eq!(results.results.len(), 3);
    let text_of = |title: &str| {
        let i = r["texts"].as_array().expect("texts").iter().position(|t| t == title).expect("a reference text");
        row(&r["fp32"]["text"], i)
    };
    for hit in &results.results {
        let signals = hit.signals.as_ref().expect("text search has signals");
        let photo = ["cat", "rocket", "astronaut"].iter().position(|p| *p == hit.product.id).expect("known product");
        let want_image = dot(&row(&r["fp32"]["text"], 0), &row(&r["fp32"]["image"], photo));
        let want_text = dot(&row(&r["fp32"]["text"], 0), &text_of(&hit.product.title));
        let (got_image, got_text) = (signals.image_text.expect("image_text"), signals.text.expect("text"));
        assert!((got_image - want_image).abs() < 0.02, "{}: image_text {got_image} vs {want_image}", hit.product.id);
        assert!((got_text - want_text).abs() < 0.02, "{}: text {got_text} vs {want_text}", hit.product.id);
    }
    // The stored photo vectors are exactly what the reference computed.
    let exact = catalog
        .search_vector(IMAGE_TEXT, &row(&r["fp32"]["text"], 0), &SearchOptions::new(3, -1.0), &mut Default::default())
        .expect("exact search");
    for hit in &exact.results {
        let photo = ["cat", "rocket", "astronaut"].iter().position(|p| *p == hit.product.id).expect("known");
        let want = dot(&row(&r["fp32"]["text"], 0), &row(&r["fp32"]["image"], photo));
        assert!((hit.similarity - want).abs() < 1e-3, "{}: {} vs {want}", hit.product.id, hit.similarity);
    }
}

#[test]
fn zero_shot_labels_match_clip_model_forward() {
    let clip = TinyClip::install(false);
    let emb = clip.embedders();
    let r = reference();
    let labels: Vec<&str> = r["labels"].as_array().expect("labels").iter().map(|l| l.as_str().expect("l")).collect();
    let bytes = std::fs::read(fixtures().join("rocket.png")).expect("photo");
    let decoded = ocular_image::decode(&bytes, &ocular_image::Limits::default(), None).expect("decode");
    let v = emb.embed_images(&[&decoded.image]).expect("embed").remove(0);
    assert!(v.labels.is_empty(), "no ImageNet labels from CLIP");
    let scored = emb.score_labels(&v.image, &labels).expect("CLIP scores labels").expect("scores");
    for (label, want) in labels.iter().zip(row(&r["zero_shot"], 1)) {
        let got = scored.iter().find(|s| s.name == *label).expect("scored").probability;
        assert!((got - want).abs() < 2e-3, "{label}: {got} vs {want}");
    }
    assert!(common::embedders().score_labels(&[0.0; 1280], &labels).is_none(), "the default models cannot");
}

#[test]
fn switching_from_the_default_models_needs_a_reindex() {
    let (store, _dir) = common::store();
    let default_emb = common::embedders();
    let writer = common::catalog(store.clone());
    add_products(&writer, default_emb.as_ref());

    let clip = TinyClip::install(false);
    let emb = clip.embedders();
    let server = clip.catalog(store.clone());
    for s in server.load_now().expect("load") {
        assert!(matches!(&s.state, SpaceState::ReindexRequired { found } if found.len() == 1), "{s:?}");
    }
    assert!(server.reindex_required());
    let photo = std::fs::read(fixtures().join("rocket.png")).expect("photo");
    let refused = server.search_image(emb.as_ref(), &photo, &SearchOptions::new(3, 0.0)).expect_err("refused");
    assert!(matches!(refused, SearchError::ReindexRequired { .. }), "{refused:?}");
    let refused = server.search_text(emb.as_ref(), "a rocket", &SearchOptions::new(3, 0.0)).expect_err("refused");
    assert!(matches!(refused, SearchError::ReindexRequired { .. }), "{refused:?}");

    let writer = clip.catalog(store.clone());
    let report =
        reindex(&writer, emb.as_ref(), &common::loader(), Which::All, 8, &mut Quiet::default()).expect("reindex");
    assert_eq!((report.products, report.vectors, report.failures.len()), (3, 9, 0), "{report:?}");
    let results = server.search_image(emb.as_ref(), &photo, &SearchOptions::new(3, -1.0)).expect("now it searches");
    assert_eq!(results.results[0].product.id, "rocket");
    server.search_text(emb.as_ref(), "a rocket", &SearchOptions::new(3, -1.0)).expect("text too");
    assert!(!server.reindex_required());
    let census = server.census().expect("census");
    assert!(census.iter().all(|c| c.model.starts_with("tiny-")), "only CLIP vectors are left: {census:?}");
}

#[test]
fn an_image_only_install_searches_photos_and_refuses_text() {
    let clip = TinyClip::install(true);
    assert!(clip.registry.clip_text.is_none() && clip.registry.statuses().len() == 1, "one tower, one model");
    let emb = clip.embedders();
    assert!(fills(emb.as_ref(), IMAGE) && fills(emb.as_ref(), IMAGE_TEXT) && !fills(emb.as_ref(), TEXT));
    let (store, _dir) = common::store();
    let catalog = clip.catalog(store.clone());
    assert_eq!(catalog.models().iter().map(|m| m.space).collect::<Vec<_>>(), [IMAGE, IMAGE_TEXT]);
    catalog.load_now().expect("load");
    add_products(&catalog, emb.as_ref());
    let stored = store.embeddings_of(store.get_product("cat").expect("get").expect("cat").key).expect("vectors");
    assert_eq!(stored.iter().map(|e| e.space.as_str()).collect::<Vec<_>>(), [IMAGE, IMAGE_TEXT], "no text vector");

    let photo = std::fs::read(fixtures().join("astronaut.png")).expect("photo");
    let results = catalog.search_image(emb.as_ref(), &photo, &SearchOptions::new(3, -1.0)).expect("photo search");
    assert_eq!(results.results[0].product.id, "astronaut");

    let refused = catalog.search_text(emb.as_ref(), "a cat", &SearchOptions::new(3, 0.0)).expect_err("no text tower");
    assert!(
        matches!(&refused, SearchError::Model(ocular_models::ModelError::NotConfigured(m)) if m.contains("text tower"))
    );
    assert!(emb.embed_texts(&["a cat"]).is_err());
    let labels = emb.score_labels(&[0.0; 16], &["a cat"]).expect("a CLIP install");
    assert!(labels.is_err_and(|e| !e.is_client_error()), "no text tower: the server's fault, not the label's");
    // Reindexing skips the space no model fills.
    let report =
        reindex(&catalog, emb.as_ref(), &common::loader(), Which::All, 8, &mut Quiet::default()).expect("reindex");
    assert_eq!(report.products, 0, "{report:?}");
    assert!(embed::model_of(&catalog.models(), TEXT).is_none());
}
