//! One embedding space's in-memory index and its life: unloaded, loading from the store,
//! ready, or refusing to search because the stored vectors come from another model.
//!
//! The store is the truth; the index is derived from it at start-up by streaming
//! `for_each_embedding`, then kept in step by every write. Writes may arrive while the stream
//! runs, and the stream reads a snapshot taken when it started, so it could put back a vector
//! a later write replaced or deleted. Keys written during loading are therefore recorded
//! (`touched`), and the loader skips them: whatever a write did is newer than the snapshot.
//! The loader and writers take the same lock around each index operation, so for any key
//! the index ends with whichever happened last.
//!
//! By default ([`Precision::Compact`]) a space keeps one-bit codes in anonymous memory (71 B
//! per product for `image`, 39 B per 384-d space, ids included) and its f32 vectors in a mapped,
//! unlinked file in the temporary directory (`TMPDIR`; page cache the kernel can reclaim),
//! from which every search rescores the rows that may still rank: see `ocular_index::compact`
//! for the recall this keeps (measured, not proven). Codes are relative to k-means centroids
//! trained, when loading starts, on the first [`CENTROID_SAMPLE`] stored vectors of the space.
//! [`Precision::Store`] keeps int8 codes only (2 KiB per product for the three spaces) and
//! rescores an oversampled shortlist (`4k + 16`) with the f32 vectors from the store;
//! [`Precision::F16`] keeps int8 codes and f16 copies in memory: provably exact, about 3× the
//! memory of `Store`.
//!
//! A compact space given an index directory (`CatalogOptions::index_dir`, SQLite only) keeps
//! its vector files there under names and saves its codes after a rebuild; the next start
//! opens that snapshot instead of re-encoding the store when the store's change cursor has not
//! moved since (module `persist`: what makes a snapshot stale and how it is checked).
//!
//! All of the above is the in-memory backend. On PostgreSQL a space searches the stored
//! vectors through pgvector instead (`Backend::PgVector`), chosen once when the space is made.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use ocular_core::similarity::cosine;
use ocular_index::{CompactConfig, Hit, IndexError, QuantizedConfig, Rescore, SnapshotError, train_centroids};
use ocular_store::{ProductKey, Store};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::embed::SpaceModel;
use crate::error::SearchError;
use crate::persist::{self, IndexDir};
use crate::photos::{MAX_PHOTOS, PhotoHit, Photos, fold, index_id, key_of};
use crate::sharded::{ShardedIndex, SyncFilter};

/// Where a space's index is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SpaceState {
    /// Not loaded in this process (a CLI command that only writes); writes skip the index.
    Unloaded,
    Loading,
    Ready {
        vectors: usize,
        load_ms: u64,
    },
    /// Stored vectors were made by other models; search refuses until `ocular reindex`.
    ReindexRequired {
        found: Vec<String>,
    },
    Failed {
        message: String,
    },
}

/// What a space keeps in memory and how shortlists are rescored at full precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// One-bit codes in memory; rows that may rank rescored from a mapped f32 vector file.
    #[default]
    Compact,
    /// int8 in memory; the oversampled shortlist rescored from the store's f32 vectors.
    Store,
    /// int8 + f16 in memory, the index's exact rescoring (about 3× the memory).
    F16,
}

/// Stored vectors k-means trains the centroids of a compact space on.
pub const CENTROID_SAMPLE: usize = 2048;

/// Centroids of a compact space (at most 256). Training runs in `begin_loading`, on the
/// caller's thread: 2048 × 32 × 1280 × 6 multiply-adds, about 0.1 s.
const CENTROIDS: usize = 32;

/// Bytes one compact shard's search may read from its mapped files (refinement codes, then f32
/// rows; `CompactConfig::read_budget`). A photo query on a million bench products refines
/// ~24k rows per shard (15 MB) and rescores a few dozen; the cap keeps a query whose shortlist
/// is the whole catalog (structureless vectors) from reading hundreds of MB through a page
/// cache a cgroup limit keeps small. Rows beyond it rank by their estimates.
pub const READ_BUDGET: usize = 32 << 20;

/// Rows a rebuild hands to the shards at a time (each shard encodes its share on its own
/// thread, see `ShardedIndex::upsert_many`).
const LOAD_BATCH: usize = 2048;

/// Where a space's vectors are searched: chosen once, in [`SpaceIndex::new`], from the store.
/// Each operation matches on it, so a third backend is a compile error at every place that
/// must decide what it does, not a forgotten `if`.
enum Backend {
    /// The sharded in-memory index (module `sharded`), loaded from the store and kept
    /// coherent by [`SpaceIndex::apply_photos`]; `saved`: the directory a compact index is
    /// saved in across starts (see [`SpaceIndex::saved_in`]).
    InMemory { saved: Option<Arc<IndexDir>> },
    /// PostgreSQL: the vectors are searched where they are stored (pgvector HNSW), so every
    /// replica sees every write at once and no replica holds a copy to keep coherent.
    PgVector(ocular_store::postgres::PgVectorIndex),
}

/// Shortlist length for `k` results under [`Precision::Store`].
fn shortlist(k: usize) -> usize {
    k.saturating_mul(4).saturating_add(16)
}

pub struct SpaceIndex {
    pub model: SpaceModel,
    store: Arc<dyn Store>,
    precision: Precision,
    shards: usize,
    index: RwLock<Arc<ShardedIndex>>,
    state: RwLock<SpaceState>,
    /// `Some` while loading: keys written since the load began.
    touched: Mutex<Option<HashSet<u64>>>,
    /// In memory or pgvector. The fields above and below serve the in-memory backend; with
    /// pgvector `index` stays an empty placeholder (its `memory_bytes` is what it costs).
    backend: Backend,
    /// The key to save under once a rebuild has loaded (see [`Self::save`]).
    pending_save: Mutex<Option<Vec<u8>>>,
    /// Whether the last load opened the saved index rather than rebuilding.
    from_snapshot: std::sync::atomic::AtomicBool,
    /// Index ids are (product, photo) pairs (module `photos`); how many rows a result needs.
    photos: Photos,
}

impl SpaceIndex {
    /// `shards`: the index is split over that many cores (see [`ShardedIndex`]).
    pub fn new(
        model: SpaceModel,
        store: Arc<dyn Store>,
        precision: Precision,
        shards: usize,
    ) -> Result<Self, SearchError> {
        let index = Self::empty(&model, precision, shards, Vec::new())?;
        let backend = match store.as_postgres() {
            Some(pg) => Backend::PgVector(
                ocular_store::postgres::PgVectorIndex::new(
                    pg.clone(),
                    model.space,
                    &model.model,
                    model.dim.max(1),
                    ocular_store::postgres::PgIndexConfig::default(),
                )
                .map_err(SearchError::from)?,
            ),
            None => Backend::InMemory { saved: None },
        };
        Ok(Self {
            model,
            store,
            precision,
            shards,
            index: RwLock::new(index),
            state: RwLock::new(SpaceState::Unloaded),
            touched: Mutex::new(None),
            backend,
            pending_save: Mutex::new(None),
            from_snapshot: Default::default(),
            photos: Photos::default(),
        })
    }

    /// Keeps a compact space's index in `dir` across starts (module `persist`). Ignored for
    /// other precisions, PostgreSQL, and stores without a change feed (nothing to key on).
    pub fn saved_in(mut self, dir: Arc<IndexDir>) -> Self {
        let keyed = self.precision == Precision::Compact && self.store.change_feed().is_some();
        if let Backend::InMemory { saved } = &mut self.backend
            && keyed
        {
            *saved = Some(dir);
        }
        self
    }

    /// Where the index is saved across starts, if it is.
    fn saved(&self) -> Option<&Arc<IndexDir>> {
        match &self.backend {
            Backend::InMemory { saved } => saved.as_ref(),
            Backend::PgVector(_) => None,
        }
    }

    fn empty(
        model: &SpaceModel,
        precision: Precision,
        shards: usize,
        centroids: Vec<Vec<f32>>,
    ) -> Result<Arc<ShardedIndex>, SearchError> {
        let dim = model.dim.max(1);
        let rescore = match precision {
            Precision::Compact => {
                let config = CompactConfig::new(dim).centroids(centroids).read_budget(READ_BUDGET);
                return Ok(Arc::new(ShardedIndex::compact(config, shards)?));
            }
            Precision::F16 => Rescore::F16,
            Precision::Store => Rescore::Off,
        };
        Ok(Arc::new(ShardedIndex::new(QuantizedConfig::new(dim).rescore(rescore), shards)?))
    }

    /// Centroids for a compact index, trained on the first [`CENTROID_SAMPLE`] stored vectors
    /// of this space's model (none for other precisions or an empty space: codes are then
    /// relative to the origin, still correct, only less tight).
    fn centroids(&self) -> Result<Vec<Vec<f32>>, SearchError> {
        if self.precision != Precision::Compact || matches!(self.backend, Backend::PgVector(_)) {
            return Ok(Vec::new());
        }
        let mut sample = Vec::new();
        self.store.for_each_embedding(self.model.space, &mut |e| {
            if e.model == self.model.model && e.vector.len() == self.model.dim {
                sample.push(e.vector.to_vec());
            }
            if sample.len() >= CENTROID_SAMPLE { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })?;
        Ok(train_centroids(self.model.dim, &sample, CENTROIDS, 6))
    }

    pub fn space(&self) -> &'static str {
        self.model.space
    }

    pub fn state(&self) -> SpaceState {
        self.state.read().clone()
    }

    pub fn memory_bytes(&self) -> usize {
        self.index.read().memory_bytes()
    }

    /// Marks the space as loading (so searches answer `index_loading` rather than stale or
    /// empty results) before the load itself runs, possibly on another thread.
    pub fn begin_loading(&self) -> Result<(), SearchError> {
        // A saved space chooses in `load` (off this thread) between its snapshot and a rebuild;
        // until then writes land in a placeholder and are replayed from the store (`install`).
        let centroids = if self.saved().is_some() { Vec::new() } else { self.centroids()? };
        let fresh = Self::empty(&self.model, self.precision, self.shards, centroids)?;
        let mut touched = self.touched.lock();
        *self.index.write() = fresh;
        self.photos.reset();
        *touched = Some(HashSet::new());
        *self.state.write() = SpaceState::Loading;
        Ok(())
    }

    /// Streams the space's stored vectors into a fresh index. Call [`Self::begin_loading`]
    /// first. Blocking: about 0.2 s per 100k 1280-d vectors on SQLite.
    pub fn load(&self) -> SpaceState {
        let started = Instant::now();
        let result = match &self.backend {
            Backend::PgVector(pg) => self.prepare_pg(pg),
            Backend::InMemory { saved: Some(dir) } => self.load_saved(dir),
            Backend::InMemory { saved: None } => self.stream(),
        };
        *self.touched.lock() = None;
        let state = match result {
            Ok(foreign) if foreign.is_empty() => {
                let vectors = match &self.backend {
                    Backend::PgVector(pg) => ocular_index::VectorIndex::len(pg),
                    Backend::InMemory { .. } => self.index.read().len(),
                };
                SpaceState::Ready { vectors, load_ms: started.elapsed().as_millis() as u64 }
            }
            Ok(found) => {
                *self.index.write() = Self::empty(&self.model, self.precision, self.shards, Vec::new())
                    .unwrap_or_else(|_| self.index.read().clone());
                tracing::error!(
                    space = self.model.space, expected = %self.model.model, found = ?found,
                    "stored embeddings were made by another model; this space refuses to search until `ocular reindex` runs"
                );
                SpaceState::ReindexRequired { found }
            }
            Err(e) => {
                let message = ocular_models::registry::error_chain(&e);
                tracing::error!(space = self.model.space, error = %message, "index failed to load");
                SpaceState::Failed { message }
            }
        };
        if let SpaceState::Ready { vectors, load_ms } = &state {
            tracing::info!(space = self.model.space, vectors, load_ms, "index loaded");
        }
        *self.state.write() = state.clone();
        state
    }

    /// PostgreSQL: makes sure the HNSW index exists (built once, concurrently safe across
    /// replicas) and reports vectors of other models, as [`Self::stream`] does.
    fn prepare_pg(&self, pg: &ocular_store::postgres::PgVectorIndex) -> Result<Vec<String>, SearchError> {
        pg.ensure_index().map_err(SearchError::from)?;
        let counts = self.store.embedding_models()?;
        Ok(counts
            .into_iter()
            .filter(|c| c.space == self.model.space && c.model != self.model.model)
            .map(|c| c.model)
            .collect())
    }

    /// Opens the saved index when it matches the store, else rebuilds it into the index
    /// directory and remembers the key to save it under; returns the other models found.
    fn load_saved(&self, dir: &IndexDir) -> Result<Vec<String>, SearchError> {
        let (space, model) = (self.model.space, &self.model.model);
        self.from_snapshot.store(false, std::sync::atomic::Ordering::Relaxed);
        let Some(feed) = self.store.change_feed() else { return self.stream() };
        // Read before anything else: a write after this point moves the cursor past the key.
        let key = persist::key(&self.model, feed.change_cursor()?);
        let census = self.store.embedding_models()?;
        let foreign: Vec<String> =
            census.iter().filter(|c| c.space == space && &c.model != model).map(|c| c.model.clone()).collect();
        if !foreign.is_empty() {
            return Ok(foreign);
        }
        let stored: u64 = census.iter().filter(|c| c.space == space).map(|c| c.count).sum();
        let config = CompactConfig::new(self.model.dim.max(1)).read_budget(READ_BUDGET);
        let opened = ShardedIndex::open_saved(config.clone(), self.shards, dir, space, &key).and_then(|index| {
            // Writes made since loading began are replayed into the opened files below, after
            // which the saved checksums no longer describe them: check first (rare).
            if self.touched.lock().as_ref().is_some_and(|t| !t.is_empty()) {
                index.verify_saved()?;
            }
            Ok(index)
        });
        match opened {
            Ok(index) if index.len() as u64 == stored => {
                self.install(index)?;
                self.from_snapshot.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(space, vectors = stored, "index opened from its saved snapshot");
                return Ok(Vec::new());
            }
            Ok(index) => {
                let saved = index.len();
                tracing::warn!(space, saved, stored, "saved index holds another row count than the store; rebuilding");
            }
            Err(SnapshotError::Missing) => tracing::info!(space, "no saved index; building it from the store"),
            Err(e) => {
                let error = ocular_models::registry::error_chain(&e);
                tracing::info!(space, error, "saved index not used; rebuilding it from the store");
            }
        }
        // The snapshots go before the vector files they name are written again.
        dir.clear(space).map_err(IndexError::Io)?;
        let fresh = ShardedIndex::compact_named(config.centroids(self.centroids()?), self.shards, dir, space)?;
        self.install(fresh)?;
        let foreign = self.stream()?;
        *self.pending_save.lock() = Some(key);
        Ok(foreign)
    }

    /// Makes `index` the space's index. Writes that reached the placeholder since
    /// [`Self::begin_loading`] are replayed from the store (the truth), under the lock writers
    /// take, so none falls between the two indexes.
    fn install(&self, index: ShardedIndex) -> Result<(), SearchError> {
        let touched = self.touched.lock();
        for &key in touched.iter().flatten() {
            let stored = self.store.embeddings_of(ProductKey(key))?;
            for photo in 0..MAX_PHOTOS as u16 {
                index.remove(index_id(key, photo));
            }
            for e in stored.iter().filter(|e| e.space == self.model.space && e.model == self.model.model) {
                index.upsert(index_id(key, e.photo), &e.vector)?;
                self.photos.saw(e.photo);
            }
        }
        *self.index.write() = Arc::new(index);
        Ok(())
    }

    /// Checks the vector files of an index the last load opened from its snapshot (searches
    /// run meanwhile: see [`Catalog::load`](crate::Catalog::load)); on a mismatch the snapshot
    /// is deleted and the space rebuilt from the store, on this thread. A no-op otherwise.
    pub fn verify_saved(&self) -> Result<(), SearchError> {
        let Some(dir) = self.saved() else { return Ok(()) };
        if !self.from_snapshot() {
            return Ok(());
        }
        let space = self.model.space;
        let started = Instant::now();
        let Err(e) = self.index.read().clone().verify_saved() else {
            tracing::info!(space, verify_ms = started.elapsed().as_millis() as u64, "saved index checked");
            return Ok(());
        };
        let error = ocular_models::registry::error_chain(&e);
        tracing::error!(space, error, "saved index failed its check; rebuilding it from the store");
        dir.clear(space).map_err(IndexError::Io)?;
        self.begin_loading()?;
        self.load();
        Ok(())
    }

    /// Whether the last load opened the saved index instead of rebuilding it from the store.
    pub fn from_snapshot(&self) -> bool {
        self.from_snapshot.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Saves a space rebuilt by this load (a no-op otherwise), so the next start opens it.
    /// Blocking: syncs and checksums the vector files. Call after [`Self::load`].
    pub fn save(&self) {
        let (Some(dir), Some(key)) = (self.saved(), self.pending_save.lock().take()) else { return };
        if !matches!(self.state(), SpaceState::Ready { .. }) {
            return;
        }
        let started = Instant::now();
        let space = self.model.space;
        match self.index.read().clone().save(dir, space, &key) {
            Ok(()) => tracing::info!(space, save_ms = started.elapsed().as_millis() as u64, "index saved"),
            Err(e) => {
                let error = ocular_models::registry::error_chain(&e);
                tracing::warn!(space, error, "index not saved; the next start rebuilds it");
                if let Err(e) = dir.clear(space) {
                    tracing::warn!(space, error = %e, "could not remove a partial index");
                }
            }
        }
    }

    /// Loads every vector of the configured model; returns the other models found. Rows go
    /// to the index in batches of [`LOAD_BATCH`], encoded by every shard at once.
    fn stream(&self) -> Result<Vec<String>, SearchError> {
        let index = self.index.read().clone();
        let mut foreign: Vec<String> = Vec::new();
        let mut failure = None;
        let mut batch: Vec<(u64, Vec<f32>)> = Vec::with_capacity(LOAD_BATCH);
        // Under the writers' lock, so that a key written meanwhile keeps the write (module docs).
        let flush = |batch: &mut Vec<(u64, Vec<f32>)>| {
            let touched = self.touched.lock();
            if let Some(t) = touched.as_ref() {
                batch.retain(|(id, _)| !t.contains(&key_of(*id)));
            }
            let result = index.upsert_many(batch);
            batch.clear();
            result
        };
        self.store.for_each_embedding(self.model.space, &mut |e| {
            if e.model != self.model.model {
                if !foreign.iter().any(|m| m == e.model) {
                    foreign.push(e.model.to_string());
                }
                return ControlFlow::Continue(());
            }
            // One entry per (product, photo): module `photos`.
            self.photos.saw(e.photo);
            batch.push((index_id(e.key.0, e.photo), e.vector.to_vec()));
            if batch.len() < LOAD_BATCH {
                return ControlFlow::Continue(());
            }
            match flush(&mut batch) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    failure = Some(err);
                    ControlFlow::Break(())
                }
            }
        })?;
        if failure.is_none() {
            failure = flush(&mut batch).err();
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(foreign),
        }
    }

    /// Applies a committed write of a product with at most one vector here (photo 0):
    /// `Some(vector)` makes it the product's only one, `None` removes the product.
    pub fn apply(&self, key: ProductKey, vector: Option<&[f32]>) -> Result<(), SearchError> {
        match vector {
            Some(v) => self.apply_photos(key, &[(0, v)]),
            None => self.apply_photos(key, &[]),
        }
    }

    /// Applies a committed write: the product's vectors here become exactly `vectors`
    /// (photo number, vector); none removes the product.
    pub fn apply_photos(&self, key: ProductKey, vectors: &[(u16, &[f32])]) -> Result<(), SearchError> {
        if let Backend::PgVector(_) = self.backend {
            // The committed row is the index entry.
            return Ok(());
        }
        let mut touched = self.touched.lock();
        let state = self.state.read();
        match *state {
            SpaceState::Loading => {
                if let Some(t) = touched.as_mut() {
                    t.insert(key.0);
                }
            }
            SpaceState::Ready { .. } => {}
            // The index is not in use; the next load reads the store, which has the write.
            _ => return Ok(()),
        }
        let index = self.index.read();
        for photo in 0..MAX_PHOTOS as u16 {
            if !vectors.iter().any(|(p, _)| *p == photo) {
                index.remove(index_id(key.0, photo));
            }
        }
        for &(photo, v) in vectors {
            index.upsert(index_id(key.0, photo), v)?;
            self.photos.saw(photo);
        }
        Ok(())
    }

    /// The `k` best products passing `filter` (a filter on product keys), each by its best
    /// photo, with full-precision cosines (see the module docs).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<SyncFilter<'_>>,
    ) -> Result<Vec<PhotoHit>, SearchError> {
        self.ready()?;
        if let Backend::PgVector(pg) = &self.backend {
            return self.search_pg(pg, query, k, filter);
        }
        let index = self.index.read().clone();
        let by_key = filter.map(|f| move |id: u64| f(key_of(id)));
        let filter = by_key.as_ref().map(|f| f as SyncFilter<'_>);
        let rows = self.photos.rows_for(k);
        if self.precision != Precision::Store {
            // Both rescore inside the index: f32 from the mapped file, or f16 from memory.
            return Ok(fold(index.search(query, rows, filter)?, k));
        }
        let candidates = index.search(query, shortlist(rows), filter)?;
        let exact = self.exact_scores(query, &candidates.iter().map(|h| h.id).collect::<Vec<_>>())?;
        let mut hits: Vec<Hit> = candidates
            .into_iter()
            .map(|h| Hit { id: h.id, score: exact.get(&h.id).copied().unwrap_or(h.score) })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(fold(hits, k))
    }

    /// [`Self::search`]'s `k` best, plus the `depth` best products that facets are counted
    /// over, from one scan. Under [`Precision::Store`] only the `k` best's shortlist is rescored
    /// from the store; the products past it keep their int8 cosines (within about 0.01 of the
    /// exact value): they are counted, never shown. A store read per candidate made facets (100
    /// candidates) cost more than the rest of a photo search (docs/BENCHMARKS.md). The other
    /// precisions rescore in memory and rank all `depth` exactly.
    pub fn search_deep(
        &self,
        query: &[f32],
        k: usize,
        depth: usize,
        filter: Option<SyncFilter<'_>>,
    ) -> Result<(Vec<PhotoHit>, Vec<PhotoHit>), SearchError> {
        let deep = depth.max(k);
        if self.precision != Precision::Store || matches!(self.backend, Backend::PgVector(_)) {
            let hits = self.search(query, deep, filter)?;
            return Ok((hits.iter().take(k).copied().collect(), hits));
        }
        self.ready()?;
        let index = self.index.read().clone();
        let by_key = filter.map(|f| move |id: u64| f(key_of(id)));
        let filter = by_key.as_ref().map(|f| f as SyncFilter<'_>);
        let candidates = index.search(query, shortlist(self.photos.rows_for(deep)), filter)?;
        let rescored = shortlist(self.photos.rows_for(k)).min(candidates.len());
        let ids: Vec<u64> = candidates[..rescored].iter().map(|h| h.id).collect();
        let exact = self.exact_scores(query, &ids)?;
        let mut top: Vec<Hit> = candidates[..rescored]
            .iter()
            .map(|h| Hit { id: h.id, score: exact.get(&h.id).copied().unwrap_or(h.score) })
            .collect();
        top.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok((fold(top, k), fold(candidates, deep)))
    }

    /// The `k` best hits by the in-memory scores alone: int8 cosines (within about 0.01 of
    /// the exact value) under [`Precision::Store`], exact under [`Precision::F16`], and under
    /// [`Precision::Compact`] exact for the `4k + 16` rows rescored, estimates below them. For
    /// rankings that are fused by rank, where a database round trip per candidate buys nothing.
    pub fn search_fast(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<SyncFilter<'_>>,
    ) -> Result<Vec<PhotoHit>, SearchError> {
        self.ready()?;
        if let Backend::PgVector(pg) = &self.backend {
            return self.search_pg(pg, query, k, filter);
        }
        let index = self.index.read().clone();
        let by_key = filter.map(|f| move |id: u64| f(key_of(id)));
        let filter = by_key.as_ref().map(|f| f as SyncFilter<'_>);
        let rows = self.photos.rows_for(k);
        // Compact spaces rescore no more than the int8 shortlist would (`4k + 16`): on
        // structureless vectors their band covers most of the catalog.
        Ok(fold(index.search_bounded(query, rows, filter, shortlist(rows))?, k))
    }

    /// pgvector search; its scores are exact cosines of the stored f32 vectors.
    fn search_pg(
        &self,
        pg: &ocular_store::postgres::PgVectorIndex,
        query: &[f32],
        k: usize,
        filter: Option<SyncFilter<'_>>,
    ) -> Result<Vec<PhotoHit>, SearchError> {
        let filter = filter.map(|f| f as &dyn Fn(u64) -> bool);
        let hits = pg.search_photos(query, k, filter)?;
        Ok(hits.into_iter().map(|(h, photo)| PhotoHit { id: h.id, photo, score: h.score }).collect())
    }

    /// Exact cosines of `query` with the stored vectors of index ids `ids` (made by this
    /// space's model); ids without one are left out.
    pub fn exact_scores(&self, query: &[f32], ids: &[u64]) -> Result<HashMap<u64, f32>, SearchError> {
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            for e in self.store.embeddings_of(ProductKey(key_of(id)))? {
                if let Some(c) = self.cosine_with(&e, query)
                    && index_id(key_of(id), e.photo) == id
                {
                    out.insert(id, c);
                }
            }
        }
        Ok(out)
    }

    /// The cosine of `query` with a stored embedding, if it belongs to this space and model.
    pub fn cosine_with(&self, e: &ocular_store::Embedding, query: &[f32]) -> Option<f32> {
        (e.space == self.model.space && e.model == self.model.model).then(|| cosine(&e.vector, query)).flatten()
    }

    /// Ok when the space can search; otherwise the error a search gets.
    pub fn ready(&self) -> Result<(), SearchError> {
        let space = self.model.space;
        match &*self.state.read() {
            SpaceState::Ready { .. } => Ok(()),
            SpaceState::Loading | SpaceState::Unloaded => Err(SearchError::IndexLoading { space }),
            SpaceState::ReindexRequired { found } => {
                Err(SearchError::ReindexRequired { space, expected: self.model.model.clone(), found: found.join(", ") })
            }
            SpaceState::Failed { message } => Err(SearchError::IndexFailed { space, message: message.clone() }),
        }
    }
}
