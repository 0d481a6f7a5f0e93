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
//! Vectors are kept as int8 codes only; the shortlist is rescored from the f32 vectors in the
//! store ([`StoreRescorer`]), because f16 copies would triple memory (MODELS.md, the 512 MB
//! host): 100k products cost about 130 MB for `image` (1280-d) and 43 MB per 384-d space.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use ocular_index::{Filter, Hit, QuantizedConfig, QuantizedIndex, Rescore, Rescorer, VectorIndex};
use ocular_store::{ProductKey, Store};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::embed::SpaceModel;
use crate::error::SearchError;

/// Where a space's index is in its life.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// How shortlists are rescored at full precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// int8 in memory, f32 from the store for the shortlist (least memory).
    #[default]
    Store,
    /// int8 + f16 in memory (no database round trip; about 3× the memory).
    F16,
}

/// Fetches full-precision vectors of one space and model from the store.
pub struct StoreRescorer {
    store: Arc<dyn Store>,
    space: &'static str,
    model: String,
}

impl Rescorer for StoreRescorer {
    fn fetch(
        &self,
        ids: &[u64],
        sink: &mut dyn FnMut(u64, &[f32]),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for &id in ids {
            for e in self.store.embeddings_of(ProductKey(id))? {
                if e.space == self.space && e.model == self.model {
                    sink(id, &e.vector);
                }
            }
        }
        Ok(())
    }
}

pub struct SpaceIndex {
    pub model: SpaceModel,
    store: Arc<dyn Store>,
    precision: Precision,
    index: RwLock<Arc<QuantizedIndex>>,
    state: RwLock<SpaceState>,
    /// `Some` while loading: keys written since the load began.
    touched: Mutex<Option<HashSet<u64>>>,
}

impl SpaceIndex {
    pub fn new(model: SpaceModel, store: Arc<dyn Store>, precision: Precision) -> Result<Self, SearchError> {
        let index = Self::empty(&model, &store, precision)?;
        Ok(Self {
            model,
            store,
            precision,
            index: RwLock::new(index),
            state: RwLock::new(SpaceState::Unloaded),
            touched: Mutex::new(None),
        })
    }

    fn empty(
        model: &SpaceModel,
        store: &Arc<dyn Store>,
        precision: Precision,
    ) -> Result<Arc<QuantizedIndex>, SearchError> {
        let rescore = match precision {
            Precision::F16 => Rescore::F16,
            Precision::Store => Rescore::External(Arc::new(StoreRescorer {
                store: store.clone(),
                space: model.space,
                model: model.model.clone(),
            })),
        };
        Ok(Arc::new(QuantizedIndex::new(QuantizedConfig::new(model.dim.max(1)).rescore(rescore))?))
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
        let fresh = Self::empty(&self.model, &self.store, self.precision)?;
        let mut touched = self.touched.lock();
        *self.index.write() = fresh;
        *touched = Some(HashSet::new());
        *self.state.write() = SpaceState::Loading;
        Ok(())
    }

    /// Streams the space's stored vectors into a fresh index. Call [`Self::begin_loading`]
    /// first. Blocking: about 0.2 s per 100k 1280-d vectors on SQLite.
    pub fn load(&self) -> SpaceState {
        let started = Instant::now();
        let result = self.stream();
        *self.touched.lock() = None;
        let state = match result {
            Ok(foreign) if foreign.is_empty() => {
                SpaceState::Ready { vectors: self.index.read().len(), load_ms: started.elapsed().as_millis() as u64 }
            }
            Ok(found) => {
                *self.index.write() =
                    Self::empty(&self.model, &self.store, self.precision).unwrap_or_else(|_| self.index.read().clone());
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

    /// Loads every vector of the configured model; returns the other models found.
    fn stream(&self) -> Result<Vec<String>, SearchError> {
        let index = self.index.read().clone();
        let mut foreign: Vec<String> = Vec::new();
        let mut failure = None;
        self.store.for_each_embedding(self.model.space, &mut |e| {
            if e.model != self.model.model {
                if !foreign.iter().any(|m| m == e.model) {
                    foreign.push(e.model.to_string());
                }
                return ControlFlow::Continue(());
            }
            let touched = self.touched.lock();
            if touched.as_ref().is_some_and(|t| t.contains(&e.key.0)) {
                return ControlFlow::Continue(());
            }
            match index.upsert(e.key.0, e.vector) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    failure = Some(err);
                    ControlFlow::Break(())
                }
            }
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(foreign),
        }
    }

    /// Applies a committed write: `Some(vector)` upserts, `None` removes.
    pub fn apply(&self, key: ProductKey, vector: Option<&[f32]>) -> Result<(), SearchError> {
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
        match vector {
            Some(v) => index.upsert(key.0, v)?,
            None => {
                index.remove(key.0);
            }
        }
        Ok(())
    }

    /// The `k` best hits passing `filter`, if the space can search.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<Vec<Hit>, SearchError> {
        self.ready()?;
        let index = self.index.read().clone();
        Ok(index.search(query, k, filter)?)
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
