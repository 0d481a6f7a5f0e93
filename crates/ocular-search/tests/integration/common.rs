//! The real models from `./models` (run `ocular models fetch` first), loaded once per test
//! binary and shared by every test, and catalogs over temporary SQLite stores.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_search::embed::default::DefaultProvider;
use ocular_search::{Catalog, CatalogOptions, Embedders, ImageLoader};
use ocular_store::Store;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn photo(name: &str) -> PathBuf {
    root().join("models/photos").join(name)
}

struct Shared {
    registry: Registry,
    embedders: Arc<dyn Embedders>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let models = root().join("models");
        let ort = ocular_test_support::Need::Models.require(runtime::locate(None, &models));
        let registry = Registry::discover(RegistryOptions {
            models_dir: models,
            ort_library: Some(ort),
            session: SessionOptions { intra_threads: 2 },
            enabled: Some(vec!["efficientnet-lite0".into(), "minilm".into()]),
        })
        .expect("registry");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let provider = DefaultProvider::from_registry(&registry).expect("efficientnet-lite0 and minilm are installed");
        let embedders = runtime.block_on(ocular_search::EmbedderProvider::load(&provider)).expect("models load");
        Shared { registry, embedders }
    })
}

pub fn embedders() -> Arc<dyn Embedders> {
    shared().embedders.clone()
}

/// A store in a temporary directory (kept alive by the returned guard).
pub fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ocular_store::open(&ocular_store::Location::Sqlite(dir.path().join("t.db")), true).expect("store");
    (store, dir)
}

/// A catalog over `store` with the real models' spaces (indexes not loaded).
pub fn catalog(store: Arc<dyn Store>) -> Catalog {
    catalog_with(store, CatalogOptions::default())
}

/// The real models' provider (nothing loaded until a catalog asks).
pub fn provider() -> Arc<dyn ocular_search::EmbedderProvider> {
    Arc::new(DefaultProvider::from_registry(&shared().registry).expect("provider"))
}

pub fn catalog_with(store: Arc<dyn Store>, options: CatalogOptions) -> Catalog {
    let provider = DefaultProvider::from_registry(&shared().registry).expect("provider");
    Catalog::new(store, Arc::new(provider), options).expect("catalog")
}

pub fn loader() -> ImageLoader {
    ImageLoader::local(ocular_image::Limits::default())
}

/// Counts progress updates (the import must report them) without printing.
#[derive(Default)]
pub struct Quiet(pub u64);

impl ocular_search::import::Progress for Quiet {
    fn update(&mut self, _done: u64, _total: u64) {
        self.0 += 1;
    }
}
