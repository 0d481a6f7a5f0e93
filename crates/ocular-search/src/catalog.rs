//! [`Catalog`]: the search service. It owns the store handle, the embedder provider and one
//! [`SpaceIndex`] per space, and is the only code that writes products, so that every write
//! reaches both the store and the indexes.
//!
//! Life cycle: [`Catalog::new`] is instant (it reads no vector and loads no model);
//! [`Catalog::begin_loading`] marks the spaces as loading and [`Catalog::load`] streams the
//! stored vectors in, on a background thread in the server so `/health` answers meanwhile. A
//! space whose stored vectors come from another model than the configured one refuses to
//! search (`reindex_required`); it checks again at most every [`RECHECK`], so after `ocular
//! reindex` ran it loads itself without a restart.
//!
//! Writes (module `ingest`) and searches (module `search`) are `impl Catalog` blocks in their
//! own files. All methods block: the server calls them on blocking threads after admission.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocular_image::Limits;
use ocular_store::{ModelCount, Store};
use parking_lot::Mutex;
use serde::Serialize;

use crate::embed::{EmbedderProvider, Embedders, SPACES, SpaceModel, model_of};
use crate::error::SearchError;
use crate::persist::IndexDir;
use crate::space::{Precision, SpaceIndex, SpaceState};

/// How often a space waiting for a reindex looks at the store again, by default.
pub const RECHECK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct CatalogOptions {
    pub precision: Precision,
    /// Caps for decoding product and query photos.
    pub image_limits: Limits,
    /// How often a space waiting for a reindex looks at the store again.
    pub recheck: Duration,
    /// Index shards searched in parallel (default: the number of cores).
    pub shards: usize,
    /// Where compact spaces keep their index across starts (module `persist`); `None` keeps
    /// unnamed files in `TMPDIR` and rebuilds at every start. Used only when this process can
    /// lock it (a second process falls back to `None`).
    pub index_dir: Option<PathBuf>,
    /// The most photos a product keeps vectors for, the main one included (1 to
    /// [`MAX_PHOTOS`](crate::photos::MAX_PHOTOS), default [`DEFAULT_MAX_PHOTOS`]): import keeps
    /// the first ones of a longer list, HTTP writes refuse more, reindex embeds only these.
    pub max_photos: usize,
}

/// Photos per product by default: each is an embedding at write time and an index entry per
/// photo space, and shops show a handful.
pub const DEFAULT_MAX_PHOTOS: usize = 8;

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            precision: Precision::default(),
            image_limits: Limits::default(),
            recheck: RECHECK,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            index_dir: None,
            max_photos: DEFAULT_MAX_PHOTOS,
        }
    }
}

pub struct Catalog {
    pub(crate) store: Arc<dyn Store>,
    provider: Arc<dyn EmbedderProvider>,
    /// One per space, in [`SPACES`] order.
    pub(crate) spaces: Vec<SpaceIndex>,
    /// Serialises "write the store, then the indexes", so two writes of one product cannot
    /// reach the index in the opposite order from the store.
    pub(crate) write_lock: Mutex<()>,
    /// How far the other processes' writes are applied (module `follow`).
    pub(crate) cursor: Mutex<crate::follow::Cursor>,
    last_recheck: Mutex<Option<Instant>>,
    recheck: Duration,
    pub(crate) limits: Limits,
    max_photos: usize,
}

/// One space in `/health?verbose=1`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpaceStatus {
    pub space: &'static str,
    pub model: String,
    pub dim: usize,
    #[serde(flatten)]
    pub state: SpaceState,
    pub memory_bytes: usize,
}

impl Catalog {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn EmbedderProvider>,
        options: CatalogOptions,
    ) -> Result<Self, SearchError> {
        let models = provider.spaces();
        let saved = match &options.index_dir {
            Some(dir) if options.precision == Precision::Compact => lock_index_dir(dir),
            _ => None,
        };
        let mut spaces = Vec::with_capacity(SPACES.len());
        // A space the provider leaves out (CLIP without its text tower) gets no index: its
        // searches answer `model_not_configured`, and writes skip its vectors.
        for space in SPACES.into_iter().filter(|s| model_of(&models, s).is_some()) {
            let model = model_of(&models, space).cloned().ok_or_else(|| SearchError::IndexFailed {
                space,
                message: "the embedder provider does not fill this space".into(),
            })?;
            if model.dim == 0 {
                return Err(SearchError::IndexFailed {
                    space,
                    message: format!("model {} has no dimension", model.model),
                });
            }
            let index = SpaceIndex::new(model, store.clone(), options.precision, options.shards)?;
            spaces.push(match &saved {
                Some(dir) => index.saved_in(dir.clone()),
                None => index,
            });
        }
        Ok(Self {
            store,
            provider,
            spaces,
            write_lock: Mutex::new(()),
            cursor: Mutex::default(),
            last_recheck: Mutex::new(None),
            recheck: options.recheck,
            limits: options.image_limits,
            // The store's ceiling bounds it whatever the caller passed (Config checks first).
            max_photos: options.max_photos.clamp(1, crate::photos::MAX_PHOTOS),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The most photos a product keeps vectors for, the main one included
    /// ([`CatalogOptions::max_photos`]).
    pub fn max_photos(&self) -> usize {
        self.max_photos
    }

    /// The configured model of every space the provider fills.
    pub fn models(&self) -> Vec<SpaceModel> {
        self.spaces.iter().map(|s| s.model.clone()).collect()
    }

    /// The loaded embedders (the models load on first use, once).
    pub async fn embedders(&self) -> Result<Arc<dyn Embedders>, SearchError> {
        Ok(self.provider.load().await?)
    }

    /// The index of a space, or `model_not_configured` when no configured model fills it.
    pub(crate) fn space(&self, name: &str) -> Result<&SpaceIndex, SearchError> {
        self.spaces.iter().find(|s| s.space() == name).ok_or_else(|| {
            SearchError::Model(ocular_models::ModelError::NotConfigured(self.provider.unconfigured(name)))
        })
    }

    /// Whether a configured model fills `space`.
    pub fn has_space(&self, name: &str) -> bool {
        self.spaces.iter().any(|s| s.space() == name)
    }

    /// True when any space refuses to search until `ocular reindex` runs.
    pub fn reindex_required(&self) -> bool {
        self.spaces.iter().any(|s| matches!(s.state(), SpaceState::ReindexRequired { .. }))
    }

    /// Marks every space as loading; searches answer `index_loading` until [`Self::load`] ends.
    pub fn begin_loading(&self) -> Result<(), SearchError> {
        // Before the load's snapshot, so no write by another process falls between the two.
        self.mark_cursor()?;
        for s in &self.spaces {
            s.begin_loading()?;
        }
        Ok(())
    }

    /// Loads every space from the store (blocking). Call [`Self::begin_loading`] first.
    pub fn load(&self) -> Vec<SpaceStatus> {
        let started = Instant::now();
        for s in &self.spaces {
            s.load();
        }
        *self.last_recheck.lock() = Some(Instant::now());
        tracing::info!(duration_ms = started.elapsed().as_millis() as u64, "search indexes loaded");
        // Searches run meanwhile: spaces opened from their snapshots have their vector files
        // checked (rebuilt on a mismatch), rebuilt ones are saved (a sync and a checksum).
        for s in &self.spaces {
            if let Err(e) = s.verify_saved() {
                tracing::error!(space = s.space(), error = %ocular_models::registry::error_chain(&e), "saved index check failed");
            }
            s.save();
        }
        self.status()
    }

    /// Loads every space now, on this thread (the CLI's path).
    pub fn load_now(&self) -> Result<Vec<SpaceStatus>, SearchError> {
        self.begin_loading()?;
        Ok(self.load())
    }

    pub fn status(&self) -> Vec<SpaceStatus> {
        self.spaces
            .iter()
            .map(|s| SpaceStatus {
                space: s.space(),
                model: s.model.model.clone(),
                dim: s.model.dim,
                state: s.state(),
                memory_bytes: s.memory_bytes(),
            })
            .collect()
    }

    /// True while any space is loading (readiness waits for it).
    pub fn is_loading(&self) -> bool {
        self.spaces.iter().any(|s| s.state() == SpaceState::Loading)
    }

    /// The stored vector counts per (space, model): what a reindex has to do.
    pub fn census(&self) -> Result<Vec<ModelCount>, SearchError> {
        Ok(self.store.embedding_models()?)
    }

    /// Ok when `space` can search. A space waiting for a reindex looks at the store again
    /// (at most every `recheck`) and reloads itself once only its model is left.
    pub(crate) fn ensure_ready(&self, space: &str) -> Result<(), SearchError> {
        let index = self.space(space)?;
        let Err(e @ SearchError::ReindexRequired { .. }) = index.ready() else { return index.ready() };
        {
            let mut last = self.last_recheck.lock();
            if last.is_some_and(|t| t.elapsed() < self.recheck) {
                return Err(e);
            }
            *last = Some(Instant::now());
        }
        let census = self.census()?;
        let foreign = census.iter().any(|c| c.space == space && c.model != index.model.model);
        if foreign {
            return Err(e);
        }
        tracing::info!(space, "stored embeddings now match the configured model; reloading the index");
        index.begin_loading()?;
        index.load();
        index.ready()
    }
}

/// Locks the index directory, or `None` (with the reason logged) when another process holds
/// it or it cannot be created: the spaces then rebuild into unnamed files, as before.
fn lock_index_dir(dir: &std::path::Path) -> Option<Arc<IndexDir>> {
    match IndexDir::lock(dir) {
        Ok(Some(locked)) => Some(Arc::new(locked)),
        Ok(None) => {
            tracing::info!(dir = %dir.display(), "index directory in use by another process; not saving the index");
            None
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "index directory unusable; not saving the index");
            None
        }
    }
}
