//! One-bit codes with RaBitQ's estimator and error bound, and the query-side lookup tables
//! that score a code in `bits / 8` table reads.
//!
//! A stored unit vector `x` is centred on the catalog's mean direction `μ` and projected,
//! `w = P(x − μ)` (see [`super::projection`]); only the signs `s = sign(w)` are kept, with two
//! numbers. Since `q·x = q·μ + q·(x − μ)` and `q·μ` is the same for every row, a search only
//! has to estimate `⟨Pq, w⟩`, and RaBitQ's estimator does that from the signs:
//!
//! ```text
//! ⟨Pq, w⟩ ≈ ⟨Pq, s⟩ · ‖w‖² / ‖w‖₁                       (factor f = ‖w‖² / ‖w‖₁)
//! ```
//!
//! Its error is `⟨e, s⟩/(c·√bits)·‖w‖` where `e` is the part of `Pq` orthogonal to `w` and
//! `c = ‖w‖₁ / (‖w‖·√bits)` (how well the signs align with `w`, about 0.8); over the random
//! rotation it is close to normal with standard deviation at most
//! `‖Pq‖·‖w‖·√(1 − c²) / (c·√(bits − 1))`. The projection's own error (when `bits` is below
//! the padded dimension) adds `‖x − μ‖·√((1 − bits/D)/bits)`. Each row stores the root sum
//! of squares of both as `σ`; the search treats `estimate ± z·σ` as the row's score interval.
//!
//! Centring is what makes one bit enough on real embeddings: CNN features are non-negative
//! and text embeddings share a common direction, so raw vectors all point one way, their
//! scores are packed together and a bound proportional to `‖x‖` would cover all of them.
//! `‖x − μ‖` is typically 0.5–0.8 of that. Any `μ` keeps the bound valid; a good one only
//! makes it tighter.

use half::f16;

use super::projection::Projection;

/// The stored form of one row.
pub(crate) struct RowCode {
    /// `bits / 8` bytes, bit `i % 8` of byte `i / 8` set when `w_i > 0`.
    pub bytes: Vec<u8>,
    /// `‖w‖² / ‖w‖₁`.
    pub factor: f16,
    /// Standard deviation of the estimate per unit of `‖Pq‖` (rounded up).
    pub sigma: f16,
}

/// Encodes a unit vector; `scratch` and `w` are reused between calls.
pub(crate) fn encode(
    projection: &Projection,
    center: &[f32],
    unit: &[f32],
    scratch: &mut Vec<f32>,
    w: &mut Vec<f32>,
) -> RowCode {
    let bits = projection.bits();
    let centred: Vec<f32> = unit.iter().zip(center).map(|(x, m)| x - m).collect();
    w.resize(bits, 0.0);
    projection.apply(&centred, scratch, w);
    let mut bytes = vec![0u8; bits / 8];
    for (i, &v) in w.iter().enumerate() {
        if v > 0.0 {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    let l1: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
    let l2sq: f64 = w.iter().map(|v| f64::from(*v).powi(2)).sum();
    let centred_norm = centred.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    if l1 == 0.0 {
        // x = μ (or projects to zero): the estimate is q·μ, off by at most ‖x − μ‖ = tiny.
        return RowCode { bytes, factor: f16::ZERO, sigma: round_up(centred_norm) };
    }
    let b = bits as f64;
    let c = (l1 / (l2sq.sqrt() * b.sqrt())).min(1.0);
    let rabitq = l2sq.sqrt() * (1.0 - c * c).sqrt() / (c * (b - 1.0).max(1.0).sqrt());
    let padded = projection.padded() as f64;
    let jl = centred_norm * ((1.0 - b / padded).max(0.0) / b).sqrt();
    RowCode {
        bytes,
        factor: f16::from_f64(l2sq / l1),
        sigma: round_up((rabitq * rabitq + jl * jl).sqrt()),
    }
}

/// `v` as an f16 no smaller than `v` (f16 keeps 11 significant bits).
fn round_up(v: f64) -> f16 {
    f16::from_f64(v * (1.0 + 2f64.powi(-10)))
}

/// A query prepared for scanning codes: `⟨Pq, s⟩` for a code `s` is
/// `2·Σ_j table_j[byte_j] − Σ Pq`, one table read per code byte.
pub(crate) struct QueryTables {
    /// `bits / 8` tables of 256 entries: entry `b` of table `j` sums `Pq_{8j+t}` over the bits
    /// `t` set in `b`.
    tables: Vec<f32>,
    sum: f32,
    /// `‖Pq‖`, scaling every row's `σ`.
    pub norm: f32,
    /// `q·μ`, the part of every score shared by all rows.
    pub shared: f32,
}

impl QueryTables {
    pub(crate) fn new(projection: &Projection, center: &[f32], unit: &[f32]) -> Self {
        let bits = projection.bits();
        let mut pq = vec![0.0; bits];
        projection.apply(unit, &mut Vec::new(), &mut pq);
        let mut tables = vec![0.0f32; bits / 8 * 256];
        for (table, coords) in tables.chunks_exact_mut(256).zip(pq.chunks_exact(8)) {
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize;
                table[b] = table[b & (b - 1)] + coords[low];
            }
        }
        let norm = pq.iter().map(|v| v * v).sum::<f32>().sqrt();
        let shared = unit.iter().zip(center).map(|(q, m)| q * m).sum();
        Self { tables, sum: pq.iter().sum(), norm, shared }
    }

    /// `⟨Pq, s⟩` for one row's code bytes.
    #[inline]
    pub(crate) fn signed_dot(&self, code: &[u8]) -> f32 {
        // Four partial sums break the dependency chain of the adds.
        let mut acc = [0.0f32; 4];
        for (j4, bytes) in code.chunks_exact(4).enumerate() {
            for (t, (&byte, a)) in bytes.iter().zip(acc.iter_mut()).enumerate() {
                *a += self.tables[(4 * j4 + t) * 256 + byte as usize];
            }
        }
        2.0 * (acc[0] + acc[1] + (acc[2] + acc[3])) - self.sum
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
        let tables = QueryTables::new(&p, &vec![0.0; 64], &q);
        let mut pq = vec![0.0; 64];
        p.apply(&q, &mut Vec::new(), &mut pq);
        let code: Vec<u8> = (0..8).map(|i| (i * 53 + 11) as u8).collect();
        let direct: f32 =
            (0..64).map(|i| if code[i / 8] >> (i % 8) & 1 == 1 { pq[i] } else { -pq[i] }).sum();
        assert!((tables.signed_dot(&code) - direct).abs() < 1e-4);
    }

    #[test]
    fn estimate_errors_stay_within_a_few_sigma() {
        // Over many random pairs, |error| / σ behaves like a standard normal's magnitude.
        let (dim, bits) = (384, 256);
        let p = Projection::new(dim, bits, 11);
        let center = vec![0.0; dim];
        let mut state = 1u64;
        let mut rand = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let (mut worst, mut beyond_2) = (0.0f32, 0);
        let n = 400;
        for _ in 0..n {
            let x = unit((0..dim).map(|_| rand()).collect());
            let q = unit((0..dim).map(|_| rand()).collect());
            let code = encode(&p, &center, &x, &mut Vec::new(), &mut Vec::new());
            let t = QueryTables::new(&p, &center, &q);
            let estimate = t.shared + code.factor.to_f32() * t.signed_dot(&code.bytes);
            let exact: f32 = q.iter().zip(&x).map(|(a, b)| a * b).sum();
            let z = (estimate - exact).abs() / (code.sigma.to_f32() * t.norm);
            worst = worst.max(z);
            beyond_2 += usize::from(z > 2.0);
        }
        assert!(worst < 5.0, "worst error {worst} σ");
        // A normal exceeds 2σ 4.6 % of the time.
        assert!(beyond_2 < n / 8, "{beyond_2} of {n} beyond 2σ");
    }
}
