//! [`CompactIndex`]: a catalog of a million products inside a 512 MB host. One-bit codes of a
//! centred random projection stay in anonymous memory; 4-bit refinement codes and the full
//! vectors (f32) live in two memory-mapped files that the kernel may page out. A search runs
//! three stages: it scans the one-bit codes and keeps every row that may still rank, narrows
//! those rows' score intervals with their 4-bit codes (`fine.rs`: 648 B per 1280-d row instead
//! of 5,120), and rescores from the f32 file only the rows still in reach of the top k, usually
//! a few dozen to a few hundred. [`CompactConfig::read_budget`] caps the bytes one search reads
//! from the two files.
//!
//! Why not [`crate::QuantizedIndex`] at this size: its int8 codes are `d` bytes per vector,
//! 2 KiB per product for the three spaces (1280 + 384 + 384 dimensions), so a million products
//! need 2 GB of heap before any model is loaded. Here a row costs `bits/8 + 15` bytes of
//! anonymous memory (codes; centroid index, 1 B; three f16: factor, offset, σ; u32 id; u32 in
//! the dense id table), see `memory_bytes`: by default 71 B for a 448-bit
//! `image` row and 39 B for a 192-bit 384-d row, 149 B per product for the three spaces.
//!
//! # What a search guarantees
//!
//! The scan estimates every row's cosine from its code (see `codes.rs` for RaBitQ's estimator
//! and its error) together with a standard deviation `σ` of the estimate, and treats
//! `estimate ± z·σ` as the row's score interval (`z` is [`CompactConfig::confidence`]). It keeps
//! every row passing the filter whose upper end reaches the k-th best lower end: the band
//! argument of the int8 index (`search.rs`), so *if every interval holds*, the kept rows contain
//! the exact top k. Their 4-bit codes are read, best upper end first, giving each a much
//! narrower interval (`fine.rs`), until no remaining one-bit upper end reaches the k-th best
//! refined lower end. The rows whose refined interval still reaches the band are rescored from
//! the f32 copies, best upper end first, stopping as soon as no remaining upper end reaches the
//! k-th best rescored score. Where one-bit codes cannot tell rows apart (rows that differ by
//! unstructured noise), the second stage is what keeps the f32 reads small: on the bench
//! catalog at a million rows, 123 f32 rows per photo query instead of 40,779.
//!
//! Unlike the int8 bound, these intervals are statistical: over the random rotation the
//! estimator's error is close to normal, not bounded, so an interval fails with a probability
//! of about `2·Φ(−z)` per row (1.2 % at the default `z = 2.5`; a failure only matters for a row
//! that would rank and whose estimate fell that far). Hence the result is **recall measured,
//! not exactness**: `examples/bench_compact.rs` measures recall@10 against an exact f32 scan on
//! a bench-like and a clustered near-duplicate catalog at 10k–1M rows (1.0 at every size, see
//! docs/BENCHMARKS.md), and the integration test `compact` holds recall ≥ 0.98 at 2000 rows.
//! Scores returned are exact f32 cosines of the stored vectors. The kept set adapts to the
//! data: rows that codes cannot tell apart (near-duplicates, a product photographed
//! thousands of times with noise) are all kept and rescored, instead of being silently cut
//! the way a fixed `k × oversample` shortlist is; the price is rescoring work, measured in the
//! benchmark.
//!
//! Filters run inside the scan, only on rows whose interval still reaches the band, so a
//! filtered page still fills when enough rows pass.
//!
//! Ids are below 2³². Those below [`CompactConfig::dense_ids_below`] (2²⁸ by default) are
//! addressed through a dense table (`id / id_stride`), 4 bytes per id up to the largest one:
//! made for database keys that count up, as ocular's do. Larger ids (ocular's further photos
//! of a product, whose photo number is in the id's high bits) go to an overflow map, about
//! 10 B per id actually present, so a few sparse high ids never stretch the table.

pub(crate) mod codes;
mod fine;
mod projection;
mod signs;
mod snapshot;
mod vectors;

pub use snapshot::{SnapshotError, remove_snapshot};

use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;

use half::f16;
use half::slice::HalfFloatSliceExt;
use parking_lot::RwLock;

use crate::quantize::normalized;
use crate::rescore::dot_f32;
use crate::top_k::KthBest;
use crate::{Filter, Hit, IndexError, VectorIndex};
use codes::{Coder, F16_ROUNDING, QueryTables};
use fine::FineQuery;
use projection::Projection;
use signs::SignKernel;
use vectors::VectorFile;

/// Rows per segment: segments are allocated whole, so growth never copies codes and never
/// leaves more than one segment of slack. 1024 rather than 4096: a shard's last segment is
/// slack of up to `SEGMENT_ROWS` rows in each space: with 4096 (and the id table's growth by
/// a quarter) a 100k-product catalog in two shards took 161.6 B per product, now 150.9
/// (docs/BENCHMARKS.md, "Whole server at 1M"). A multiple of `BLOCK`, so the scan's blocks
/// are unchanged.
const SEGMENT_ROWS: usize = 1024;

/// Rows whose f16 columns are widened together during a scan.
const BLOCK: usize = 256;

/// No row in this table slot.
const EMPTY: u32 = u32::MAX;

/// How to build a [`CompactIndex`].
#[derive(Debug, Clone)]
pub struct CompactConfig {
    /// Dimension of every vector.
    pub dim: usize,
    /// Code bits per vector: a multiple of 64, at most `dim` rounded up to a power of two.
    pub bits: usize,
    /// `z`: rows whose score interval `estimate ± z·σ` reaches the band are rescored.
    pub confidence: f32,
    /// Centroids rows are coded relative to (see [`train_centroids`]; at most 256, each of
    /// `dim` components); the origin alone when empty.
    pub centroids: Vec<Vec<f32>>,
    /// Where the unlinked vector file is created (the page cache of that file system holds
    /// it). On tmpfs it would be swap-backed shared memory, not reclaimable page cache.
    pub dir: PathBuf,
    /// Ids stored here are all congruent modulo this (a shard's); the id table is indexed by
    /// `id / id_stride`.
    pub id_stride: u64,
    /// Seed of the fixed random projection.
    pub seed: u64,
    /// A named vector file (created empty) instead of an unlinked one in `dir`: for an index
    /// that will be saved with [`CompactIndex::save`] and mapped again by [`CompactIndex::open`].
    /// The refinement codes go beside it ([`fine_path`]).
    pub vectors: Option<PathBuf>,
    /// Bytes one search may read from the mapped files (refinement codes, then f32 rows);
    /// rows beyond it rank by their best estimate (see [`CompactIndex::search_with_stats`]).
    pub read_budget: usize,
    /// Ids below this are found through the dense table, larger ones through the overflow map
    /// (module docs). Not saved: a snapshot's table and map are rebuilt from its ids.
    pub dense_ids_below: u64,
}

impl CompactConfig {
    /// Defaults measured by `examples/bench_compact.rs` and sized so that ocular's three spaces
    /// (1280 + 384 + 384 dimensions) take 149 B per product: 448 bits above 512 dimensions,
    /// 192 up to 512, `z = 2.5`; the vector file in the system's temporary directory.
    pub fn new(dim: usize) -> Self {
        let bits = if dim > 512 { 448 } else { 192 }.min(dim.next_power_of_two().max(64));
        Self {
            dim,
            bits,
            confidence: 2.5,
            centroids: Vec::new(),
            dir: std::env::temp_dir(),
            id_stride: 1,
            seed: 0x6f63_756c_6172,
            vectors: None,
            read_budget: usize::MAX,
            dense_ids_below: 1 << 28,
        }
    }

    pub fn bits(mut self, bits: usize) -> Self {
        self.bits = bits;
        self
    }

    pub fn confidence(mut self, z: f32) -> Self {
        self.confidence = z;
        self
    }

    pub fn centroids(mut self, centroids: Vec<Vec<f32>>) -> Self {
        self.centroids = centroids;
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    pub fn id_stride(mut self, stride: u64) -> Self {
        self.id_stride = stride.max(1);
        self
    }

    pub fn vectors(mut self, path: impl Into<PathBuf>) -> Self {
        self.vectors = Some(path.into());
        self
    }

    pub fn read_budget(mut self, bytes: usize) -> Self {
        self.read_budget = bytes;
        self
    }

    pub fn dense_ids_below(mut self, limit: u64) -> Self {
        self.dense_ids_below = limit;
        self
    }
}

/// Where the refinement codes of the vector file at `vectors` are kept: beside it, with
/// `.q4` appended to its name.
pub fn fine_path(vectors: &std::path::Path) -> PathBuf {
    let mut name = vectors.as_os_str().to_owned();
    name.push(".q4");
    PathBuf::from(name)
}

/// Up to `count` centroids of the normalised `sample` (invalid vectors skipped) by k-means
/// (Lloyd, `iterations` rounds, seeded with evenly spaced sample rows so the result is
/// deterministic): what rows are coded relative to. Centroids are means of unit vectors, not
/// normalised, so that residuals are as short as possible. Fewer come back when the sample is
/// smaller than `count`; none when it is empty.
pub fn train_centroids(dim: usize, sample: &[Vec<f32>], count: usize, iterations: usize) -> Vec<Vec<f32>> {
    let units: Vec<Vec<f32>> = sample.iter().filter_map(|v| normalized(v, dim).ok()).collect();
    let count = count.min(units.len()).min(256);
    if count == 0 {
        return Vec::new();
    }
    let mut centroids: Vec<Vec<f32>> = (0..count).map(|j| units[j * units.len() / count].clone()).collect();
    let dot = dot_f32;
    for _ in 0..iterations {
        let norms: Vec<f32> = centroids.iter().map(|c| dot(c, c)).collect();
        let mut sums = vec![vec![0.0f64; dim]; count];
        let mut counts = vec![0usize; count];
        for u in &units {
            let j = (0..count)
                .map(|j| (j, norms[j] - 2.0 * dot(u, &centroids[j])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(j, _)| j);
            sums[j].iter_mut().zip(u).for_each(|(s, v)| *s += f64::from(*v));
            counts[j] += 1;
        }
        for ((c, sum), n) in centroids.iter_mut().zip(sums).zip(counts) {
            // An empty cluster keeps its centroid (it may win rows in a later round).
            if n > 0 {
                *c = sum.into_iter().map(|s| (s / n as f64) as f32).collect();
            }
        }
    }
    centroids
}

/// What one search did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompactStats {
    /// Codes scored.
    pub scanned: usize,
    /// Rows whose interval reached the band (after the filter).
    pub shortlisted: usize,
    /// Shortlisted rows whose 4-bit refinement code was read.
    pub refined: usize,
    /// Rows rescored from the vector file.
    pub rescored: usize,
}

struct Segment {
    codes: Vec<u8>,
    centroids: Vec<u8>,
    factors: Vec<f16>,
    offsets: Vec<f16>,
    sigmas: Vec<f16>,
    ids: Vec<u32>,
}

impl Segment {
    fn new(code_bytes: usize) -> Self {
        Self {
            codes: Vec::with_capacity(SEGMENT_ROWS * code_bytes),
            centroids: Vec::with_capacity(SEGMENT_ROWS),
            factors: Vec::with_capacity(SEGMENT_ROWS),
            offsets: Vec::with_capacity(SEGMENT_ROWS),
            sigmas: Vec::with_capacity(SEGMENT_ROWS),
            ids: Vec::with_capacity(SEGMENT_ROWS),
        }
    }
}

struct Rows {
    code_bytes: usize,
    segments: Vec<Segment>,
    /// `id / id_stride` → slot, [`EMPTY`] when absent, for ids below `dense_below`.
    table: Vec<u32>,
    /// Id → slot for the ids at or above `dense_below`.
    overflow: HashMap<u32, u32>,
    stride: u64,
    dense_below: u64,
    len: usize,
    vectors: VectorFile,
    /// 4-bit refinement codes, one row per slot (`fine.rs`).
    fine: VectorFile,
    /// A vector-file check left for later ([`CompactIndex::open_unverified`]).
    unverified: Option<Unverified>,
}

/// The state of a vector file opened without its checksum being read.
#[derive(Clone, Copy)]
enum Unverified {
    /// The vector file and the refinement file should have these CRC-32s over their rows.
    Crc(u32, u32),
    /// Written since: the saved CRC no longer tells anything.
    Written,
}

impl Rows {
    /// Empty rows over the given files.
    fn new(config: &CompactConfig, vectors: VectorFile, fine: VectorFile) -> Self {
        Rows {
            code_bytes: config.bits / 8,
            segments: Vec::new(),
            table: Vec::new(),
            overflow: HashMap::new(),
            stride: config.id_stride.max(1),
            dense_below: config.dense_ids_below,
            len: 0,
            vectors,
            fine,
            unverified: None,
        }
    }

    /// The dense table's cell of `id`, `None` for an overflow id.
    fn cell(&self, id: u32) -> Option<usize> {
        (u64::from(id) < self.dense_below).then(|| (u64::from(id) / self.stride) as usize)
    }

    /// The slot holding `id`: in the table (`Err` when another id shares its cell, i.e. the
    /// ids do not agree modulo the stride) or in the overflow map.
    fn slot_of(&self, id: u32) -> Result<Option<usize>, ()> {
        match self.cell(id) {
            Some(cell) => match self.table.get(cell).filter(|&&s| s != EMPTY) {
                Some(&s) if self.id_at(s as usize) == id => Ok(Some(s as usize)),
                Some(_) => Err(()),
                None => Ok(None),
            },
            None => Ok(self.overflow.get(&id).map(|&s| s as usize)),
        }
    }

    /// Records that `id` is in `slot`; `false` if some id was there already.
    fn set_slot(&mut self, id: u32, slot: u32) -> bool {
        match self.cell(id) {
            Some(cell) => {
                if cell >= self.table.len() {
                    // Exact growth by 1/32 of the table, where growth by a quarter left up to
                    // a quarter of it as slack (docs/BENCHMARKS.md, "Whole server at 1M").
                    // Still geometric, so the copies stay linear in the table's size.
                    let want = (cell + 1).max(self.table.len() + self.table.len() / 32);
                    self.table.reserve_exact(want - self.table.len());
                    self.table.resize(want, EMPTY);
                }
                std::mem::replace(&mut self.table[cell], slot) == EMPTY
            }
            None => self.overflow.insert(id, slot).is_none(),
        }
    }

    fn clear_slot(&mut self, id: u32) {
        match self.cell(id) {
            Some(cell) => self.table[cell] = EMPTY,
            None => {
                self.overflow.remove(&id);
            }
        }
    }

    fn id_at(&self, slot: usize) -> u32 {
        self.segments[slot / SEGMENT_ROWS].ids[slot % SEGMENT_ROWS]
    }

    fn centroid_at(&self, slot: usize) -> usize {
        self.segments[slot / SEGMENT_ROWS].centroids[slot % SEGMENT_ROWS] as usize
    }

    fn write_code(&mut self, slot: usize, code: &codes::RowCode) {
        let (seg, row) = (slot / SEGMENT_ROWS, slot % SEGMENT_ROWS);
        let b = self.code_bytes;
        let s = &mut self.segments[seg];
        s.codes[row * b..(row + 1) * b].copy_from_slice(&code.bytes);
        s.centroids[row] = code.centroid;
        s.factors[row] = code.factor;
        s.offsets[row] = code.offset;
        s.sigmas[row] = code.sigma;
    }

    fn push(&mut self, id: u32, code: &codes::RowCode) {
        if self.segments.last().is_none_or(|s| s.ids.len() == SEGMENT_ROWS) {
            self.segments.push(Segment::new(self.code_bytes));
        }
        if let Some(s) = self.segments.last_mut() {
            s.codes.extend_from_slice(&code.bytes);
            s.centroids.push(code.centroid);
            s.factors.push(code.factor);
            s.offsets.push(code.offset);
            s.sigmas.push(code.sigma);
            s.ids.push(id);
        }
        self.len += 1;
    }

    /// Moves the last row into `slot` and drops the last row.
    fn swap_remove(&mut self, slot: usize) -> std::io::Result<()> {
        let last = self.len - 1;
        if slot != last {
            let (ls, lr) = (last / SEGMENT_ROWS, last % SEGMENT_ROWS);
            let b = self.code_bytes;
            let src = &self.segments[ls];
            let code = codes::RowCode {
                bytes: src.codes[lr * b..(lr + 1) * b].to_vec(),
                centroid: src.centroids[lr],
                factor: src.factors[lr],
                offset: src.offsets[lr],
                sigma: src.sigmas[lr],
            };
            let moved = src.ids[lr];
            self.write_code(slot, &code);
            self.segments[slot / SEGMENT_ROWS].ids[slot % SEGMENT_ROWS] = moved;
            self.set_slot(moved, slot as u32);
            self.vectors.copy(last, slot)?;
            self.fine.copy(last, slot)?;
        }
        if let Some(s) = self.segments.last_mut() {
            s.codes.truncate(s.ids.len().saturating_sub(1) * self.code_bytes);
            s.centroids.pop();
            s.factors.pop();
            s.offsets.pop();
            s.sigmas.pop();
            s.ids.pop();
            if s.ids.is_empty() {
                self.segments.pop();
            }
        }
        self.len -= 1;
        Ok(())
    }
}

/// A candidate of the shortlist.
#[derive(Clone, Copy)]
struct Candidate {
    lower: f32,
    upper: f32,
    id: u32,
    slot: u32,
}

/// Compact codes in memory, f16 vectors in a mapped file; see the module docs.
pub struct CompactIndex {
    dim: usize,
    confidence: f32,
    stride: u64,
    /// The projection's seed, saved with the codes.
    seed: u64,
    coder: Coder,
    /// The refinement codes' dither (`fine.rs`), from `seed`.
    dither: Vec<f32>,
    read_budget: usize,
    /// Off: shortlisted rows go straight to the f32 rescoring ([`Self::set_refine`]).
    refine: std::sync::atomic::AtomicBool,
    /// The one-bit scan's kernel (`signs.rs`): the fastest the CPU has, unless
    /// [`Self::set_scan_kernel`] chose another.
    kernel: parking_lot::Mutex<SignKernel>,
    rows: RwLock<Rows>,
}

impl CompactIndex {
    pub fn new(mut config: CompactConfig) -> Result<Self, IndexError> {
        validate(&config)?;
        let mut centroids = std::mem::take(&mut config.centroids);
        if centroids.len() > 256 {
            return Err(IndexError::InvalidConfig("at most 256 centroids"));
        }
        if centroids.iter().any(|c| c.len() != config.dim || c.iter().any(|v| !v.is_finite())) {
            return Err(IndexError::InvalidConfig("centroids must be finite and have the index's dimension"));
        }
        if centroids.is_empty() {
            centroids.push(vec![0.0; config.dim]);
        }
        let (row, fine_row) = (config.dim * 4, fine::row_bytes(config.dim));
        let (vectors, fine) = match &config.vectors {
            Some(path) => (VectorFile::create_named(path, row), VectorFile::create_named(&fine_path(path), fine_row)),
            None => (VectorFile::create(&config.dir, row), VectorFile::create(&config.dir, fine_row)),
        };
        let (vectors, fine) = (vectors.map_err(IndexError::Io)?, fine.map_err(IndexError::Io)?);
        Ok(Self::from_parts(&config, &centroids, Rows::new(&config, vectors, fine)))
    }

    fn from_parts(config: &CompactConfig, centroids: &[Vec<f32>], rows: Rows) -> Self {
        Self {
            dim: config.dim,
            confidence: config.confidence,
            stride: config.id_stride.max(1),
            seed: config.seed,
            coder: Coder::new(Projection::new(config.dim, config.bits, config.seed), centroids, config.dim),
            dither: fine::dither(config.dim, config.seed),
            read_budget: config.read_budget,
            refine: std::sync::atomic::AtomicBool::new(true),
            kernel: parking_lot::Mutex::new(SignKernel::detect()),
            rows: RwLock::new(rows),
        }
    }

    /// Bytes of the vector file: page cache the kernel may reclaim, not counted by
    /// [`VectorIndex::memory_bytes`].
    pub fn mapped_bytes(&self) -> usize {
        let rows = self.rows.read();
        rows.vectors.file_bytes() + rows.fine.file_bytes()
    }

    /// Like [`VectorIndex::search`], also reporting what the search did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<(Vec<Hit>, CompactStats), IndexError> {
        self.search_with_confidence(query, k, filter, self.confidence)
    }

    /// [`Self::search_with_stats`] with another confidence `z` than the configured one.
    pub fn search_with_confidence(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
        z: f32,
    ) -> Result<(Vec<Hit>, CompactStats), IndexError> {
        self.run(query, k, filter, z, usize::MAX)
    }

    /// Like [`Self::search_with_stats`], but rescores at most `max_rescored` rows (those with
    /// the best upper ends; the others rank by their estimates, below every rescored row).
    /// For rankings fused by rank, where a few swapped places at the bottom change nothing but
    /// rescoring thousands of rows of structureless vectors costs milliseconds.
    pub fn search_bounded(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
        max_rescored: usize,
    ) -> Result<(Vec<Hit>, CompactStats), IndexError> {
        self.run(query, k, filter, self.confidence, max_rescored)
    }

    /// Turns the 4-bit refinement stage off (every shortlisted row that may rank is then
    /// rescored from the f32 file, as before the stage existed) or on again: for measuring
    /// what the stage saves on one index, as `examples/bench_compact.rs` does.
    pub fn set_refine(&self, on: bool) {
        self.refine.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The one-bit scan kernels this CPU can run, fastest first (`avx512`, `avx2`,
    /// `portable`); all give bit-identical results.
    pub fn scan_kernels() -> Vec<&'static str> {
        SignKernel::available().into_iter().map(SignKernel::name).collect()
    }

    /// Scans with the named kernel (one of [`Self::scan_kernels`]) instead of the fastest:
    /// for comparing them on one index, as `examples/bench_compact.rs` does. `false` (and
    /// nothing changed) when this CPU cannot run it.
    pub fn set_scan_kernel(&self, name: &str) -> bool {
        match SignKernel::available().into_iter().find(|k| k.name() == name) {
            Some(k) => {
                *self.kernel.lock() = k;
                true
            }
            None => false,
        }
    }

    /// [`Self::search_bounded`] with another confidence `z` than the configured one.
    pub fn search_capped(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
        z: f32,
        max_rescored: usize,
    ) -> Result<(Vec<Hit>, CompactStats), IndexError> {
        self.run(query, k, filter, z, max_rescored)
    }

    fn run(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
        z: f32,
        max_rescored: usize,
    ) -> Result<(Vec<Hit>, CompactStats), IndexError> {
        let unit = normalized(query, self.dim)?;
        let tables = QueryTables::new(&self.coder, &unit, *self.kernel.lock());
        let rows = self.rows.read();
        let mut stats = CompactStats::default();
        let k = k.min(rows.len);
        if k == 0 {
            return Ok((Vec::new(), stats));
        }
        let mut band = IntervalBand::new(k);
        let b = rows.code_bytes;
        // The f16 columns are widened a block at a time (F16C where the CPU has it): per row,
        // software conversion would cost as much as the code's table reads.
        let (mut factors, mut offsets, mut sigmas) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
        let mut dots = [0.0f32; BLOCK];
        for (seg_index, seg) in rows.segments.iter().enumerate() {
            for start in (0..seg.ids.len()).step_by(BLOCK) {
                let n = BLOCK.min(seg.ids.len() - start);
                let range = start..start + n;
                seg.factors[range.clone()].convert_to_f32_slice(&mut factors[..n]);
                seg.offsets[range.clone()].convert_to_f32_slice(&mut offsets[..n]);
                seg.sigmas[range].convert_to_f32_slice(&mut sigmas[..n]);
                tables.signed_dots(&seg.codes[start * b..(start + n) * b], &mut dots[..n]);
                for (i, &signed_dot) in dots[..n].iter().enumerate() {
                    let row = start + i;
                    let j = seg.centroids[row] as usize;
                    let estimate = tables.shared[j] + offsets[i] + factors[i] * signed_dot;
                    let margin = z * sigmas[i] * tables.distance[j] + F16_ROUNDING * offsets[i].abs();
                    if estimate + margin < band.floor {
                        continue;
                    }
                    let id = seg.ids[row];
                    if filter.is_none_or(|f| f(u64::from(id))) {
                        band.push(Candidate {
                            lower: estimate - margin,
                            upper: estimate + margin,
                            id,
                            slot: (seg_index * SEGMENT_ROWS + row) as u32,
                        });
                    }
                }
            }
            stats.scanned += seg.ids.len();
        }
        let kept = band.finish();
        stats.shortlisted = kept.len();
        // What the read budget allows: f32 rows for the k results are set aside, refinement
        // codes come first out of the rest, and f32 rows get whatever they leave.
        let fine_row = fine::row_bytes(self.dim);
        let reserve = k.saturating_mul(self.dim * 4);
        let max_refined =
            (self.read_budget.saturating_sub(reserve) / fine_row).max(k).min(max_rescored.saturating_mul(8));
        let refined = if self.refine.load(std::sync::atomic::Ordering::Relaxed) {
            self.refine(&rows, &unit, &tables, kept, k, max_refined, &mut stats)
        } else {
            kept
        };
        let f32_budget = self.read_budget.saturating_sub(stats.refined * fine_row) / (self.dim * 4);
        let max_exact = max_rescored.min(f32_budget.max(k));
        // A heap, not a sort: building it is linear, and the loop usually stops after a small
        // fraction of the rows.
        let mut by_upper: BinaryHeap<ByUpper> = refined.into_iter().map(ByUpper).collect();
        let mut kth = KthBest::new(k);
        let mut scored: Vec<Hit> = Vec::with_capacity(by_upper.len().min(4 * k));
        while let Some(ByUpper(c)) = by_upper.pop() {
            if kth.get().is_some_and(|t| c.upper < t) {
                break;
            }
            if stats.rescored >= max_exact {
                // Out of budget: the rest rank by estimate, after every rescored row.
                let rest = std::iter::once(c).chain(by_upper.into_iter().map(|b| b.0));
                return Ok((rank_rest(scored, rest.collect(), k), stats));
            }
            let score = match rows.vectors.row(c.slot as usize) {
                Some(v) => {
                    stats.rescored += 1;
                    dot_f32(&unit, v)
                }
                // Unreachable (every row's vector is written before its code is visible);
                // the midpoint is the best estimate there is.
                None => (c.lower + c.upper) / 2.0,
            };
            kth.push(score);
            scored.push(Hit { id: u64::from(c.id), score });
        }
        scored.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        scored.truncate(k);
        scored.iter_mut().for_each(|h| h.score = h.score.clamp(-1.0, 1.0));
        Ok((scored, stats))
    }

    /// The middle stage: narrows the intervals of the shortlisted rows with their 4-bit codes
    /// (`fine.rs`), best one-bit upper end first, until no remaining upper end reaches the
    /// k-th best refined lower end (those rows cannot rank) or `max_refined` rows were read
    /// (the rest keep their one-bit intervals). Returns the rows that may still rank.
    #[allow(clippy::too_many_arguments)]
    fn refine(
        &self,
        rows: &Rows,
        unit: &[f32],
        tables: &QueryTables,
        kept: Vec<Candidate>,
        k: usize,
        max_refined: usize,
        stats: &mut CompactStats,
    ) -> Vec<Candidate> {
        let query = FineQuery::new(unit, &self.dither);
        let mut by_upper: BinaryHeap<ByUpper> = kept.into_iter().map(ByUpper).collect();
        let mut kth = KthBest::new(k);
        let mut out = Vec::with_capacity(by_upper.len().min(64 * k));
        let sigma = fine::Z / 12f32.sqrt();
        while let Some(ByUpper(c)) = by_upper.pop() {
            if kth.get().is_some_and(|t| c.upper < t) {
                break;
            }
            if stats.refined >= max_refined {
                out.push(c);
                out.extend(by_upper.into_iter().map(|b| b.0));
                break;
            }
            let slot = c.slot as usize;
            let Some(code) = rows.fine.bytes(slot) else {
                // Unreachable, as for the vector file: the one-bit interval stands.
                out.push(c);
                continue;
            };
            stats.refined += 1;
            let j = rows.centroid_at(slot);
            let (partial, s) = query.score(code);
            let estimate = tables.shared[j] + partial;
            let margin = sigma * s * tables.distance[j] + fine::SUM_SLACK;
            kth.push(estimate - margin);
            out.push(Candidate { lower: estimate - margin, upper: estimate + margin, ..c });
        }
        // Rows refined before the k-th lower end rose may no longer reach it.
        if let Some(t) = kth.get() {
            out.retain(|c| c.upper >= t);
        }
        out
    }
}

/// Heap bytes of the overflow map: std's HashMap (hashbrown) keeps a power-of-two bucket
/// count at most 7/8 full, one control byte per bucket plus a group of trailing ones.
fn overflow_bytes(map: &HashMap<u32, u32>) -> usize {
    match map.capacity() {
        0 => 0,
        c => (c * 8 / 7).next_power_of_two() * (size_of::<(u32, u32)>() + 1) + 16,
    }
}

/// The checks of [`CompactIndex::new`] that do not involve centroids.
fn validate(config: &CompactConfig) -> Result<(), IndexError> {
    if config.dim == 0 {
        return Err(IndexError::InvalidConfig("dimension must be at least 1"));
    }
    let padded = config.dim.next_power_of_two();
    if config.bits == 0 || !config.bits.is_multiple_of(64) || config.bits > padded.max(64) {
        return Err(IndexError::InvalidConfig("bits must be a multiple of 64, at most the padded dimension"));
    }
    if !(config.confidence.is_finite() && config.confidence >= 0.0) {
        return Err(IndexError::InvalidConfig("confidence must be finite and non-negative"));
    }
    Ok(())
}

/// The final ranking when the read budget ran out: the rescored hits, then the best of `rest`
/// by the midpoints of their intervals (estimates, below every exact score) up to `k`.
fn rank_rest(mut scored: Vec<Hit>, mut rest: Vec<Candidate>, k: usize) -> Vec<Hit> {
    let missing = k.saturating_sub(scored.len());
    let by_midpoint = |a: &Candidate, b: &Candidate| (b.lower + b.upper).total_cmp(&(a.lower + a.upper));
    // Only the best `missing` are needed, in order: a selection, then a sort of those (on
    // structureless vectors `rest` holds most of the catalog).
    if missing < rest.len() {
        if missing > 0 {
            rest.select_nth_unstable_by(missing - 1, by_midpoint);
        }
        rest.truncate(missing);
    }
    rest.sort_unstable_by(by_midpoint);
    scored.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    scored.extend(rest.iter().take(missing).map(|c| Hit { id: u64::from(c.id), score: (c.lower + c.upper) / 2.0 }));
    scored.iter_mut().for_each(|h| h.score = h.score.clamp(-1.0, 1.0));
    scored.truncate(k);
    scored
}

/// Orders candidates by upper end, for a max-heap.
struct ByUpper(Candidate);

impl PartialEq for ByUpper {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for ByUpper {}

impl PartialOrd for ByUpper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByUpper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.upper.total_cmp(&other.0.upper)
    }
}

/// The band of [`crate::top_k`]'s `Band`, with a margin per element: keeps every candidate
/// whose upper end reaches the k-th best lower end seen so far.
struct IntervalBand {
    k: usize,
    floor: f32,
    elements: Vec<Candidate>,
    limit: usize,
}

impl IntervalBand {
    fn new(k: usize) -> Self {
        Self { k, floor: f32::NEG_INFINITY, elements: Vec::new(), limit: (4 * k).max(256) }
    }

    fn push(&mut self, c: Candidate) {
        self.elements.push(c);
        if self.elements.len() >= self.limit {
            self.cut();
            self.limit = self.limit.max(2 * self.elements.len());
        }
    }

    fn cut(&mut self) {
        if self.elements.len() < self.k {
            return;
        }
        let (_, kth, _) = self.elements.select_nth_unstable_by(self.k - 1, |a, b| b.lower.total_cmp(&a.lower));
        self.floor = self.floor.max(kth.lower);
        let floor = self.floor;
        self.elements.retain(|c| c.upper >= floor);
    }

    fn finish(mut self) -> Vec<Candidate> {
        self.cut();
        self.elements
    }
}

impl VectorIndex for CompactIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.rows.read().len
    }

    fn upsert(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let small = u32::try_from(id).map_err(|_| IndexError::IdOutOfRange { id })?;
        let unit = normalized(vector, self.dim)?;
        let code = self.coder.encode(&unit);
        let refinement = fine::encode(&unit, self.coder.centroid(code.centroid as usize), &self.dither);
        let mut rows = self.rows.write();
        if rows.unverified.is_some() {
            rows.unverified = Some(Unverified::Written);
        }
        let found = rows
            .slot_of(small)
            .map_err(|()| IndexError::InvalidConfig("ids of one index must agree modulo id_stride"))?;
        if let Some(slot) = found {
            rows.vectors.write(slot, &unit).map_err(IndexError::Io)?;
            rows.fine.write_bytes(slot, &refinement).map_err(IndexError::Io)?;
            rows.write_code(slot, &code);
            return Ok(());
        }
        let slot = rows.len;
        if slot >= EMPTY as usize {
            return Err(IndexError::Capacity { max: EMPTY as usize });
        }
        // The vector and its refinement first: a failed write leaves the index as it was.
        rows.vectors.write(slot, &unit).map_err(IndexError::Io)?;
        rows.fine.write_bytes(slot, &refinement).map_err(IndexError::Io)?;
        rows.set_slot(small, slot as u32);
        rows.push(small, &code);
        Ok(())
    }

    fn remove(&self, id: u64) -> bool {
        let Ok(small) = u32::try_from(id) else { return false };
        let mut rows = self.rows.write();
        let Ok(Some(slot)) = rows.slot_of(small) else { return false };
        if rows.unverified.is_some() {
            rows.unverified = Some(Unverified::Written);
        }
        rows.clear_slot(small);
        if let Err(e) = rows.swap_remove(slot) {
            // The code moved but its vector could not: the moved row now rescores from a stale
            // vector until rewritten. Logged by the caller's metrics would be better; a failed
            // pwrite into the page cache means the disk is full.
            debug_assert!(false, "vector file write failed: {e}");
        }
        true
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<Vec<Hit>, IndexError> {
        self.search_with_stats(query, k, filter).map(|(hits, _)| hits)
    }

    /// Anonymous memory: codes, factors, ids, the id table and the centre. The vector file
    /// is page cache ([`CompactIndex::mapped_bytes`]).
    fn memory_bytes(&self) -> usize {
        let rows = self.rows.read();
        let segments: usize = rows
            .segments
            .iter()
            .map(|s| {
                s.codes.capacity()
                    + s.centroids.capacity()
                    + (s.factors.capacity() + s.offsets.capacity() + s.sigmas.capacity()) * 2
                    + s.ids.capacity() * 4
            })
            .sum();
        size_of::<Self>()
            + segments
            + rows.segments.capacity() * size_of::<Segment>()
            + rows.table.capacity() * 4
            + overflow_bytes(&rows.overflow)
            + (self.coder.centroids.len() + self.coder.projected.len() + self.coder.norms_sq.len()) * 4
            + self.coder.projection.padded() * 8
    }
}

impl std::fmt::Debug for CompactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactIndex")
            .field("dim", &self.dim)
            .field("bits", &self.coder.projection.bits())
            .field("centroids", &self.coder.count())
            .field("confidence", &self.confidence)
            .field("len", &self.len())
            .finish()
    }
}
