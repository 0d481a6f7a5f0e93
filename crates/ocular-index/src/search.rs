//! The search algorithm: one quantised scan that collects a provably sufficient shortlist,
//! then full-precision rescoring of that shortlist.
//!
//! Every stored row satisfies `|r − a| ≤ E`, where `a` is its quantised score, `r` its
//! full-precision score and `E` a bound known before the scan starts (query residual, the
//! store's largest residual, rescoring precision; see [`crate::quantize`]). Let `A_k` be the
//! k-th best quantised score among rows passing the filter. The scan keeps every passing row
//! with `a ≥ A_k − 2E` (the [`Band`]), rescores them, and returns the best k. That is exact:
//!
//! * the k rows with the best `a` are kept and have `r ≥ a − E ≥ A_k − E`, so the k-th best
//!   rescored score `s_k ≥ A_k − E`;
//! * a row left out has `a < A_k − 2E`, so `r ≤ a + E < A_k − E ≤ s_k`: it cannot rank.
//!
//! This replaces a fixed "top k·oversample" shortlist, which can miss a row and cannot tell:
//! the shortlist is exactly as long as the data and quantisation error require (tens of
//! rows on random 512-d data; more when many products are near-duplicates), and no second
//! scan is ever needed. The filter runs only on rows whose score reaches the band, so a
//! selective filter costs nothing on rows that could not rank anyway.
//!
//! "Exact" is relative to the rescoring precision: identical to an f32 scan with
//! [`Rescore::F32`] or an external f32 source, within 2⁻¹¹ of it with [`Rescore::F16`].

use parking_lot::RwLock;

use crate::kernel::{Checked, QueryCodes};
use crate::quantize::{ScoreBound, quantize};
use crate::rescore::{Rescore, Rescorer, dot_f32};
use crate::storage::{SegmentView, Store};
use crate::top_k::{Band, KthBest, Scored, TopK, rank};
use crate::{Filter, Hit, IndexError};

/// What one search did, for benchmarks, tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SearchStats {
    /// Rows whose quantised score was computed.
    pub scanned: usize,
    /// Rows in the shortlist (the band).
    pub shortlisted: usize,
    /// Full-precision scores computed: the band's best part in memory (see
    /// `rescore_in_memory`), the whole band with an external rescorer (one round trip).
    pub rescored: usize,
    /// The bound `E` on |full-precision − quantised score| that sized the shortlist.
    pub error_bound: f32,
}

/// Rows per kernel call: the i32 results stay in L1 while the selection loop reads them.
const BLOCK: usize = 256;

pub(crate) struct Params<'a> {
    pub store: &'a RwLock<Store>,
    pub kernel: Checked,
    pub rescore: &'a Rescore,
    pub dim: usize,
}

/// A normalised query with its quantised forms.
struct Query<'a> {
    unit: &'a [f32],
    codes: QueryCodes,
    /// Scan scores are `dot · row_scale`; times this they are quantised cosines `a`.
    scale: f32,
    residual: f64,
}

pub(crate) fn run(
    p: &Params<'_>,
    unit: &[f32],
    k: usize,
    filter: Option<Filter<'_>>,
) -> Result<(Vec<Hit>, SearchStats), IndexError> {
    let quantized = quantize(unit);
    let q =
        Query { unit, codes: QueryCodes::new(quantized.codes), scale: quantized.scale, residual: quantized.residual };
    let mut stats = SearchStats::default();
    let store = p.store.read();
    // Clamping k to the index size also bounds every allocation below.
    let k = k.min(store.len());
    if k == 0 {
        return Ok((Vec::new(), stats));
    }

    if let Rescore::Off = p.rescore {
        let top = top_k(&store, p.kernel, &q, k, filter, &mut stats);
        stats.shortlisted = top.len();
        let hits = top.iter().map(|s| hit(s.id, s.score * q.scale)).collect();
        return Ok((hits, stats));
    }

    let bound = ScoreBound::new(q.residual, store.max_residual(), p.rescore.error_bound(p.dim), p.dim).0;
    stats.error_bound = bound;
    let band = band(&store, p.kernel, &q, k, 2.0 * bound / q.scale, filter, &mut stats);
    stats.shortlisted = band.len();
    let mut scored = match p.rescore {
        Rescore::External(rescorer) => {
            // Fetching may block on I/O: never hold the lock meanwhile.
            drop(store);
            rescore_external(rescorer.as_ref(), p.dim, &q, &band, &mut stats)?
        }
        _ => rescore_in_memory(&store, &q, band, k, bound, &mut stats),
    };
    scored.sort_unstable_by(rank);
    let hits = scored.iter().take(k).map(|s| hit(s.id, s.score)).collect();
    Ok((hits, stats))
}

fn hit(id: u64, score: f32) -> Hit {
    // Rounding can push the cosine of near-identical unit vectors a hair past 1.
    Hit { id, score: score.clamp(-1.0, 1.0) }
}

/// Calls `visit(score, segment, row)` for every stored row, `score = dot · row_scale`.
fn scan(
    store: &Store,
    kernel: Checked,
    codes: &QueryCodes,
    stats: &mut SearchStats,
    mut visit: impl FnMut(f32, &SegmentView<'_>, usize),
) {
    let padded = codes.codes.len();
    let mut dots = [0i32; BLOCK];
    for segment in store.segments() {
        for (block, rows) in segment.codes.chunks(BLOCK * padded).enumerate() {
            let n = rows.len() / padded;
            let base = block * BLOCK;
            kernel.dots(codes, rows, &mut dots[..n]);
            for (i, (&dot, &scale)) in dots[..n].iter().zip(&segment.scales[base..]).enumerate() {
                visit(dot as f32 * scale, &segment, base + i);
            }
        }
        stats.scanned += segment.ids.len();
    }
}

/// The best `k` rows passing the filter by quantised score (without the query scale).
fn top_k(
    store: &Store,
    kernel: Checked,
    q: &Query<'_>,
    k: usize,
    filter: Option<Filter<'_>>,
    stats: &mut SearchStats,
) -> Vec<Scored> {
    let mut top = TopK::new(k);
    scan(store, kernel, &q.codes, stats, |score, segment, row| {
        if !top.may_accept_score(score) {
            return;
        }
        let id = segment.ids[row];
        if top.accepts(score, id) && filter.is_none_or(|f| f(id)) {
            top.push(Scored { score, id, slot: segment.first_slot + row as u32 });
        }
    });
    top.into_sorted_vec()
}

/// Every row passing the filter whose quantised score (without the query scale) is within
/// `margin` of the k-th best: the shortlist the module docs prove sufficient.
fn band(
    store: &Store,
    kernel: Checked,
    q: &Query<'_>,
    k: usize,
    margin: f32,
    filter: Option<Filter<'_>>,
    stats: &mut SearchStats,
) -> Vec<Scored> {
    let mut band = Band::new(k, margin);
    scan(store, kernel, &q.codes, stats, |score, segment, row| {
        if !band.accepts(score) {
            return;
        }
        let id = segment.ids[row];
        if filter.is_none_or(|f| f(id)) {
            band.push(Scored { score, id, slot: segment.first_slot + row as u32 });
        }
    });
    band.finish()
}

/// Full-precision scores from the copies in memory (under the same read lock as the scan).
///
/// Candidates go best quantised score first, and the loop stops at the first one whose
/// `a + E` falls below the k-th best rescored score so far: every later one has a lower `a`,
/// hence `r ≤ a + E` below that k-th score, and cannot rank (not even tie). This usually
/// rescores well under half the band.
fn rescore_in_memory(
    store: &Store,
    q: &Query<'_>,
    mut band: Vec<Scored>,
    k: usize,
    bound: f32,
    stats: &mut SearchStats,
) -> Vec<Scored> {
    band.sort_unstable_by(rank);
    let mut kth = KthBest::new(k);
    let mut scored = Vec::with_capacity(band.len().min(4 * k));
    for s in band {
        let approx = s.score * q.scale;
        if kth.get().is_some_and(|kth| approx + bound < kth) {
            break;
        }
        let full = store.full_dot(s.slot, q.unit);
        stats.rescored += usize::from(full.is_some());
        let score = full.unwrap_or(approx);
        kth.push(score);
        scored.push(Scored { score, ..s });
    }
    scored
}

/// Full-precision scores from an external [`Rescorer`]; rows it cannot find keep their
/// quantised score.
fn rescore_external(
    rescorer: &dyn Rescorer,
    dim: usize,
    q: &Query<'_>,
    rows: &[Scored],
    stats: &mut SearchStats,
) -> Result<Vec<Scored>, IndexError> {
    let mut scored: Vec<Scored> = rows.iter().map(|s| Scored { score: s.score * q.scale, ..*s }).collect();
    if rows.is_empty() {
        return Ok(scored);
    }
    let ids: Vec<u64> = rows.iter().map(|s| s.id).collect();
    let position: std::collections::HashMap<u64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut failure = None;
    rescorer
        .fetch(&ids, &mut |id, vector| {
            if failure.is_some() {
                return;
            }
            let Some(&i) = position.get(&id) else { return };
            match crate::quantize::normalized(vector, dim) {
                Ok(unit) => {
                    scored[i].score = dot_f32(q.unit, &unit);
                    stats.rescored += 1;
                }
                Err(IndexError::DimensionMismatch { expected, got }) => {
                    failure = Some(IndexError::RescorerDimension { id, expected, got });
                }
                Err(e) => failure = Some(IndexError::Rescorer(Box::new(e))),
            }
        })
        .map_err(IndexError::Rescorer)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(scored),
    }
}
