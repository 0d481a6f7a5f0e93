//! Helpers for tests that use the real models installed by `ocular models fetch`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use ocular_models::image_classifier::ImageClassifier;
use ocular_models::session::SessionOptions;
use ocular_models::skin::SkinModel;
use ocular_models::text_encoder::TextEncoder;
use ocular_models::{Registry, RegistryOptions};

use crate::common::{ort_library, workspace_root};

pub fn models_dir() -> PathBuf {
    std::env::var_os("OCULAR_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("models"))
}

/// One registry over the installed models for the whole test binary (each model loads once).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::discover(RegistryOptions {
            models_dir: models_dir(),
            ort_library: Some(ort_library()),
            session: SessionOptions::default(),
            enabled: None,
        })
        .expect("discover models");
        assert!(
            registry.skin.is_some() && registry.image.is_some() && registry.text.is_some(),
            "real models missing in {}: run `ocular models fetch`",
            models_dir().display()
        );
        registry
    })
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

pub fn skin() -> Arc<SkinModel> {
    block(registry().skin.as_ref().expect("skin slot").get()).expect("sklesion loads")
}

pub fn imagenet() -> Arc<ImageClassifier> {
    block(registry().image.as_ref().expect("image slot").get()).expect("efficientnet loads")
}

pub fn text() -> Arc<TextEncoder> {
    block(registry().text.as_ref().expect("text slot").get()).expect("minilm loads")
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = models_dir().join("photos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
