//! [`QuantizedIndex`]: the in-memory [`VectorIndex`], an exact scan over int8 codes.
//!
//! Why a scan and not a graph (HNSW): a catalogue of up to ~100k products scans in a few
//! milliseconds on one core, gives exact results, needs no build step and no tuning, and takes
//! updates in microseconds. The int8 codes make the scan read a quarter of the bytes an f32
//! scan would; rescoring a shortlist at full precision restores exact scores. The shortlist is
//! sized from the quantisation error bound, so it provably holds the exact top-k (see
//! `search.rs`).
//!
//! Concurrency: one `parking_lot::RwLock`. Searches share the read lock. A writer prepares
//! everything (normalisation, quantisation, f16 conversion) before taking the write lock,
//! which it then holds only to copy one row (plus, rarely, to double the last segment's
//! buffers, at most a few MiB; see [`crate::storage`]), so readers wait microseconds.

use half::f16;
use parking_lot::RwLock;

use crate::kernel::{Checked, Kernel};
use crate::quantize::{normalized, padded_dim, quantize};
use crate::rescore::Rescore;
use crate::search::{self, SearchStats};
use crate::storage::{Encoded, FullCopy, Precision, Store};
use crate::{Filter, Hit, IndexError, VectorIndex};

/// How to build a [`QuantizedIndex`].
#[derive(Debug, Clone)]
pub struct QuantizedConfig {
    /// Dimension of every vector (384 for MiniLM, 512 for CLIP, 1280 for EfficientNet-Lite0).
    pub dim: usize,
    /// Full-precision rescoring of the shortlist; [`Rescore::F16`] by default.
    pub rescore: Rescore,
    /// Dot-product kernel; `None` picks the fastest the CPU supports.
    pub kernel: Option<Kernel>,
}

impl QuantizedConfig {
    pub fn new(dim: usize) -> Self {
        Self { dim, rescore: Rescore::F16, kernel: None }
    }

    pub fn rescore(mut self, rescore: Rescore) -> Self {
        self.rescore = rescore;
        self
    }

    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = Some(kernel);
        self
    }
}

/// Exact top-k cosine search over int8-quantised vectors with full-precision rescoring.
pub struct QuantizedIndex {
    dim: usize,
    rescore: Rescore,
    kernel: Checked,
    store: RwLock<Store>,
}

impl QuantizedIndex {
    pub fn new(config: QuantizedConfig) -> Result<Self, IndexError> {
        if config.dim == 0 {
            return Err(IndexError::InvalidConfig("dimension must be at least 1"));
        }
        let kernel = Checked::new(config.kernel.unwrap_or_else(Kernel::detect))
            .ok_or(IndexError::InvalidConfig("kernel not supported by this CPU"))?;
        let precision = match config.rescore {
            Rescore::F16 => Precision::F16,
            Rescore::F32 => Precision::F32,
            Rescore::Off | Rescore::External(_) => Precision::None,
        };
        Ok(Self {
            dim: config.dim,
            rescore: config.rescore,
            kernel,
            store: RwLock::new(Store::new(config.dim, padded_dim(config.dim), precision)),
        })
    }

    /// The dot-product kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel.kernel()
    }

    /// Like [`VectorIndex::search`], also reporting what the search did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<(Vec<Hit>, SearchStats), IndexError> {
        let unit = normalized(query, self.dim)?;
        search::run(
            &search::Params { store: &self.store, kernel: self.kernel, rescore: &self.rescore, dim: self.dim },
            &unit,
            k,
            filter,
        )
    }

    /// Normalises, quantises and converts `vector` without touching the lock.
    fn encode(&self, vector: &[f32]) -> Result<Encoded, IndexError> {
        let unit = normalized(vector, self.dim)?;
        let quantized = quantize(&unit);
        let full = match self.rescore {
            Rescore::F16 => FullCopy::F16(unit.iter().map(|&v| f16::from_f32(v)).collect()),
            Rescore::F32 => FullCopy::F32(unit),
            Rescore::Off | Rescore::External(_) => FullCopy::None,
        };
        Ok(Encoded { quantized, full })
    }
}

impl VectorIndex for QuantizedIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.store.read().len()
    }

    fn upsert(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let encoded = self.encode(vector)?;
        self.store.write().upsert(id, &encoded)
    }

    fn remove(&self, id: u64) -> bool {
        self.store.write().remove(id)
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<Vec<Hit>, IndexError> {
        self.search_with_stats(query, k, filter).map(|(hits, _)| hits)
    }

    fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.store.read().memory_bytes()
    }
}

impl std::fmt::Debug for QuantizedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedIndex")
            .field("dim", &self.dim)
            .field("len", &self.len())
            .field("rescore", &self.rescore)
            .field("kernel", &self.kernel())
            .finish()
    }
}
