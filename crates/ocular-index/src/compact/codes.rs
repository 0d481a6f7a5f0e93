//! One-bit codes with RaBitQ's estimator and error bound, and the query-side lookup tables
//! that score a code in `bits / 8` table reads.
//!
//! A stored unit vector `x` is assigned its nearest centroid `c` (k-means on a sample of the
//! catalog, see [`super::train_centroids`]) and only its residual is coded:
//! `w = P(x − c)` (see [`super::projection`]), kept as the signs `s = sign(w)` plus three
//! numbers. The score splits as
//!
//! ```text
//! q·x = q·c + ⟨c, x − c⟩ + ⟨q − c, x − c⟩
//! ```
//!
//! where `q·c` is computed once per centroid and query, `⟨c, x − c⟩` once per row at insert,
//! and only the last term is estimated, with RaBitQ's estimator (Gao & Long, SIGMOD 2024,
//! <https://arxiv.org/abs/2405.12497>): `⟨a, w⟩ ≈ f·⟨Pa, s⟩` with `f = ‖w‖² / ‖w‖₁`. The
//! estimator is linear in `a`, so `f·⟨P(q − c), s⟩ = f·⟨Pq, s⟩ − f·⟨Pc, s⟩`: one lookup table
//! for `Pq` serves every centroid, and the row stores `offset = ⟨c, x − c⟩ − f·⟨Pc, s⟩`.
//!
//! The error of that estimate is `‖w‖·⟨e, s⟩/(γ·√bits)`, with `e` the part of `P(q − c)`
//! orthogonal to `w` and `γ = ‖w‖₁ / (‖w‖·√bits)` (how well the signs align with `w`, about
//! 0.8); over the random rotation it is close to normal with standard deviation at most
//! `‖P(q − c)‖·‖w‖·√(1 − γ²) / (γ·√(bits − 1))`. The projection's own error (when `bits` is
//! below the padded dimension `D`) adds `‖q − c‖·‖x − c‖·√((1 − bits/D)/bits)`, and rounding
//! `f` to f16 adds at most `2⁻¹¹·f·√bits·‖P(q − c)‖`. Each row stores the sum of these per unit
//! of `‖q − c‖` as `σ`; the search treats `estimate ± (z·σ·‖q − c‖ + 2⁻¹¹·|offset|)` as the
//! row's score interval (the last term covers the f16 offset).
//!
//! Why centroids: embeddings of one kind of product (and near-duplicates most of all) share
//! most of their direction. Measured from the origin or the catalog mean, the error scales
//! with `‖x‖ = 1` while such rows differ by far less, so the interval would cover the whole
//! group; measured from the group's centroid both `‖x − c‖` and `‖q − c‖` are small when the
//! query is near the group, and the interval shrinks with them. Any centroids keep the
//! intervals valid; good ones only make them tighter.

use half::f16;

use super::projection::Projection;
use super::signs::SignKernel;

/// Rounding of f16 (11 significant bits).
pub(crate) const F16_ROUNDING: f32 = 1.0 / 2048.0;

/// The stored form of one row.
pub(crate) struct RowCode {
    /// `bits / 8` bytes, bit `i % 8` of byte `i / 8` set when `w_i > 0`.
    pub bytes: Vec<u8>,
    /// Index of the row's centroid.
    pub centroid: u8,
    /// `‖w‖² / ‖w‖₁`.
    pub factor: f16,
    /// `⟨c, x − c⟩ − f·⟨Pc, s⟩` (with the rounded `f`).
    pub offset: f16,
    /// Standard deviation of the estimate per unit of `‖q − c‖` (rounded up).
    pub sigma: f16,
}

/// The fixed data every code refers to: projection and centroids.
pub(crate) struct Coder {
    pub projection: Projection,
    /// `count × dim`.
    pub centroids: Vec<f32>,
    /// `count × bits`: `P·c` per centroid.
    pub projected: Vec<f32>,
    /// `‖c‖²` per centroid.
    pub norms_sq: Vec<f32>,
    pub dim: usize,
}

impl Coder {
    /// `centroids` must be non-empty, each of length `dim`, at most 256.
    pub(crate) fn new(projection: Projection, centroids: &[Vec<f32>], dim: usize) -> Self {
        let bits = projection.bits();
        let mut projected = vec![0.0; centroids.len() * bits];
        let mut scratch = Vec::new();
        for (c, out) in centroids.iter().zip(projected.chunks_exact_mut(bits)) {
            projection.apply(c, &mut scratch, out);
        }
        Self {
            norms_sq: centroids.iter().map(|c| c.iter().map(|v| v * v).sum()).collect(),
            centroids: centroids.concat(),
            projected,
            projection,
            dim,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.norms_sq.len()
    }

    pub(crate) fn centroid(&self, j: usize) -> &[f32] {
        &self.centroids[j * self.dim..(j + 1) * self.dim]
    }

    /// The centroid nearest to `unit` (smallest `‖x − c‖²`).
    fn nearest(&self, unit: &[f32]) -> usize {
        (0..self.count())
            .map(|j| (j, self.norms_sq[j] - 2.0 * dot(unit, self.centroid(j))))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(j, _)| j)
    }

    /// Encodes a unit vector.
    pub(crate) fn encode(&self, unit: &[f32]) -> RowCode {
        let bits = self.projection.bits();
        let j = self.nearest(unit);
        let c = self.centroid(j);
        let residual: Vec<f32> = unit.iter().zip(c).map(|(x, m)| x - m).collect();
        let mut w = vec![0.0; bits];
        self.projection.apply(&residual, &mut Vec::new(), &mut w);
        let mut bytes = vec![0u8; bits / 8];
        for (i, &v) in w.iter().enumerate() {
            if v > 0.0 {
                bytes[i / 8] |= 1 << (i % 8);
            }
        }
        let l1: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
        let l2sq: f64 = w.iter().map(|v| f64::from(*v).powi(2)).sum();
        let residual_norm = residual.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        let c_dot_r: f64 = c.iter().zip(&residual).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let b = bits as f64;
        let jl = residual_norm * ((1.0 - b / self.projection.padded() as f64).max(0.0) / b).sqrt();
        let centroid = j as u8;
        if l1 == 0.0 {
            // x − c projects to zero: the estimate is q·c + ⟨c, x − c⟩, off by ⟨q − c, x − c⟩.
            let sigma = round_up(residual_norm + jl);
            return RowCode { bytes, centroid, factor: f16::ZERO, offset: f16::from_f64(c_dot_r), sigma };
        }
        let factor = f16::from_f64(l2sq / l1);
        let pc = &self.projected[j * bits..(j + 1) * bits];
        let pc_dot_s: f64 = pc.iter().zip(&w).map(|(p, v)| if *v > 0.0 { f64::from(*p) } else { -f64::from(*p) }).sum();
        let offset = f16::from_f64(c_dot_r - factor.to_f64() * pc_dot_s);
        let gamma = (l1 / (l2sq.sqrt() * b.sqrt())).min(1.0);
        let rabitq = l2sq.sqrt() * (1.0 - gamma * gamma).sqrt() / (gamma * (b - 1.0).max(1.0).sqrt());
        let rounding = f64::from(F16_ROUNDING) * factor.to_f64() * b.sqrt();
        RowCode { bytes, centroid, factor, offset, sigma: round_up(rabitq + jl + rounding) }
    }
}

/// Eight-lane dot product (a plain iterator sum is one serial chain of adds).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::rescore::dot_f32(a, b)
}

/// `v` as an f16 no smaller than `v` (f16 keeps 11 significant bits).
fn round_up(v: f64) -> f16 {
    f16::from_f64(v * (1.0 + 2f64.powi(-10)))
}

/// A query prepared for scanning codes: `⟨Pq, s⟩` for a code `s` is
/// `2·Σ_{s_i = +1} Pq_i − Σ Pq`, the first sum taken by the kernels of `signs.rs`.
pub(crate) struct QueryTables {
    /// `Pq`, `bits` values.
    pq: Vec<f32>,
    sum: f32,
    kernel: SignKernel,
    /// `q·c` per centroid.
    pub shared: Vec<f32>,
    /// `max(‖q − c‖, ‖P(q − c)‖)` per centroid: what every row's `σ` is scaled by.
    pub distance: Vec<f32>,
}

impl QueryTables {
    pub(crate) fn new(coder: &Coder, unit: &[f32], kernel: SignKernel) -> Self {
        let bits = coder.projection.bits();
        let mut pq = vec![0.0; bits];
        coder.projection.apply(unit, &mut Vec::new(), &mut pq);
        let q_sq = dot(unit, unit);
        let mut shared = Vec::with_capacity(coder.count());
        let mut distance = Vec::with_capacity(coder.count());
        for j in 0..coder.count() {
            let qc = dot(unit, coder.centroid(j));
            let pc = &coder.projected[j * bits..(j + 1) * bits];
            let projected: f32 = pq.iter().zip(pc).map(|(a, b)| (a - b) * (a - b)).sum();
            shared.push(qc);
            distance.push((q_sq - 2.0 * qc + coder.norms_sq[j]).max(projected).max(0.0).sqrt());
        }
        Self { sum: pq.iter().sum(), pq, kernel, shared, distance }
    }

    /// `⟨Pq, s⟩` for each of the `out.len()` codes in `codes` (`bits / 8` bytes each).
    pub(crate) fn signed_dots(&self, codes: &[u8], out: &mut [f32]) {
        self.kernel.sums(&self.pq, codes, out);
        out.iter_mut().for_each(|v| *v = 2.0 * *v - self.sum);
    }

    /// `⟨Pq, s⟩` for one row's code bytes.
    #[cfg(test)]
    pub(crate) fn signed_dot(&self, code: &[u8]) -> f32 {
        let mut out = [0.0];
        self.signed_dots(code, &mut out);
        out[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn tables_compute_the_signed_dot_product() {
        let p = Projection::new(64, 64, 5);
        let q = unit((0..64).map(|i| (i as f32 * 0.37).sin()).collect());
        let mut pq = vec![0.0; 64];
        p.apply(&q, &mut Vec::new(), &mut pq);
        let tables = QueryTables::new(&Coder::new(p, &[vec![0.0; 64]], 64), &q, SignKernel::detect());
        let code: Vec<u8> = (0..8).map(|i| (i * 53 + 11) as u8).collect();
        let direct: f32 = (0..64).map(|i| if code[i / 8] >> (i % 8) & 1 == 1 { pq[i] } else { -pq[i] }).sum();
        assert!((tables.signed_dot(&code) - direct).abs() < 1e-4);
    }

    #[test]
    fn estimate_errors_stay_within_a_few_sigma() {
        // Over many random pairs, |error| / σ behaves like a standard normal's magnitude.
        let (dim, bits) = (384, 256);
        // Two centroids, one near the data: rows pick either, and errors scale with the
        // distance to the chosen one.
        let near = unit((0..dim).map(|i| (i as f32 * 0.01).cos()).collect::<Vec<_>>());
        let coder =
            Coder::new(Projection::new(dim, bits, 11), &[vec![0.0; dim], near.iter().map(|v| v * 0.9).collect()], dim);
        let mut state = 1u64;
        let mut rand = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let (mut worst, mut beyond_2) = (0.0f32, 0);
        let n = 400;
        for _ in 0..n {
            let mix = |r: f32| if r > 0.0 { 1.0 } else { 0.0 };
            let (wx, wq) = (mix(rand()), mix(rand()));
            let x = unit((0..dim).map(|i| rand() * 0.3 + wx * near[i] * 8.0).collect());
            let q = unit((0..dim).map(|i| rand() * 0.3 + wq * near[i] * 8.0).collect());
            let code = coder.encode(&x);
            let t = QueryTables::new(&coder, &q, SignKernel::detect());
            let j = code.centroid as usize;
            let estimate = t.shared[j] + code.offset.to_f32() + code.factor.to_f32() * t.signed_dot(&code.bytes);
            let exact: f32 = q.iter().zip(&x).map(|(a, b)| a * b).sum();
            let margin = code.sigma.to_f32() * t.distance[j];
            let z = ((estimate - exact).abs() - F16_ROUNDING * code.offset.to_f32().abs()).max(0.0) / margin;
            worst = worst.max(z);
            beyond_2 += usize::from(z > 2.0);
        }
        assert!(worst < 5.0, "worst error {worst} σ");
        // A normal exceeds 2σ 4.6 % of the time.
        assert!(beyond_2 < n / 8, "{beyond_2} of {n} beyond 2σ");
    }
}
