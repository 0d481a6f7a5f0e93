//! Rescoring: the second, full-precision look at the quantised shortlist.
//!
//! Which full-precision copy to keep is a memory decision. Bytes per vector, as reported by
//! `memory_bytes()` (codes, copy, id, scale and id-map share; `examples/bench_index.rs`; `d`
//! is rounded up to a multiple of 64 for the codes, which 384, 512 and 1280 already are):
//!
//! | option                                      | formula    | d = 384 | d = 512 | d = 1280 |
//! |---------------------------------------------|------------|---------|---------|----------|
//! | int8 only ([`Rescore::Off`], [`Rescore::External`]) | d + 46 | 430 | 558 | 1326 |
//! | int8 + f16 ([`Rescore::F16`], the default)  | 3d + 46    | 1198    | 1582    | 3886     |
//! | int8 + f32 ([`Rescore::F32`])               | 5d + 46    | 1966    | 2606    | 6446     |
//! | (a plain f32 index, for comparison)         | 4d + 46    | 1582    | 2094    | 5166     |
//!
//! So 100k CLIP-sized products take 56 MB (int8 only), 158 MB (f16) or 261 MB (f32).
//!
//! f16 is the default: rescoring with it moves a cosine by at most 2⁻¹¹ ≈ 4.9·10⁻⁴ (each
//! component keeps 11 significant bits; in practice about 10⁻⁵ as the roundings cancel), far
//! below any difference a shopper could see, for 40 % less memory than f32 and 25 % less than
//! a plain f32 index. Where memory is tighter (a 512 MB host with a large catalogue),
//! [`Rescore::External`] keeps only int8 in memory and fetches the f32 vectors of the
//! shortlist (tens to a few hundred ids) from the database that stores them anyway.

use std::sync::Arc;

use half::f16;

/// Supplies full-precision vectors for rescoring from outside the index (for example the
/// product database, which keeps every embedding as f32 anyway).
pub trait Rescorer: Send + Sync {
    /// Calls `sink(id, vector)` for each id in `ids` that it can find (in any order). Ids it
    /// cannot find (deleted meanwhile) keep their quantised score. Vectors need not be
    /// normalised. Called without any index lock held, so it may block on I/O.
    fn fetch(
        &self,
        ids: &[u64],
        sink: &mut dyn FnMut(u64, &[f32]),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// How the quantised shortlist is rescored; see the module docs for the memory trade-off.
#[derive(Clone)]
pub enum Rescore {
    /// No rescoring: scores are the quantised ones and the ranking is approximate
    /// (recall@10 ≈ 0.9 on hard random data; see the crate's tests).
    Off,
    /// Keep an f16 copy of every vector in memory (default).
    F16,
    /// Keep an f32 copy in memory: scores equal a brute-force f32 scan up to summation order.
    F32,
    /// Keep only int8 in memory and fetch full vectors for the shortlist from elsewhere.
    External(Arc<dyn Rescorer>),
}

impl std::fmt::Debug for Rescore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rescore::Off => "Off",
            Rescore::F16 => "F16",
            Rescore::F32 => "F32",
            Rescore::External(_) => "External",
        })
    }
}

impl Rescore {
    /// Largest difference between the score this rescorer computes and the exact `q·x`
    /// for unit vectors, excluding summation rounding (accounted for separately).
    pub(crate) fn error_bound(&self, dim: usize) -> f64 {
        match self {
            // Relative rounding 2⁻¹¹ per component for normal f16 values, and absolute 2⁻²⁵
            // for subnormal ones: Σ|q_i|(2⁻¹¹|x_i| + 2⁻²⁵) ≤ 2⁻¹¹ + 2⁻²⁵·√d.
            Rescore::F16 => 2f64.powi(-11) + 2f64.powi(-25) * (dim as f64).sqrt(),
            Rescore::Off | Rescore::F32 | Rescore::External(_) => 0.0,
        }
    }
}

/// `a · b` with eight independent partial sums: a fixed summation order (so results do not
/// depend on the CPU) that the compiler can still keep in one SIMD register.
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `query · row` with the f16 row widened to f32, in the same summation order as [`dot_f32`]
/// (eight lanes, then lanes in order, then the tail), so the F16C path and the portable one
/// agree to the bit.
pub(crate) fn dot_f16(query: &[f32], row: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the features the function is compiled for were just detected.
        return unsafe { dot_f16_f16c(query, row) };
    }
    let mut lanes = [0.0f32; 8];
    let (q8, q_rest) = query.as_chunks::<8>();
    let (r8, r_rest) = row.as_chunks::<8>();
    for (q, r) in q8.iter().zip(r8) {
        for ((lane, q), r) in lanes.iter_mut().zip(q).zip(r) {
            *lane += q * r.to_f32();
        }
    }
    finish(lanes, q_rest, r_rest)
}

/// Lanes summed in order, then the tail: shared by both paths of [`dot_f16`].
fn finish(lanes: [f32; 8], q_rest: &[f32], r_rest: &[f16]) -> f32 {
    let tail: f32 = q_rest.iter().zip(r_rest).map(|(q, r)| q * r.to_f32()).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `vcvtph2ps` widens eight halves at once; multiply and add stay separate (no FMA) so the
/// rounding matches the portable loop exactly.
///
/// # Safety
/// The CPU must support AVX and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn dot_f16_f16c(query: &[f32], row: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let (q8, q_rest) = query.as_chunks::<8>();
    let (r8, r_rest) = row.as_chunks::<8>();
    let mut acc = _mm256_setzero_ps();
    for (q, r) in q8.iter().zip(r8) {
        // SAFETY: both chunks are exactly 8 elements (32 and 16 bytes); unaligned loads.
        let (qv, rv) = unsafe { (_mm256_loadu_ps(q.as_ptr()), _mm_loadu_si128(r.as_ptr().cast::<__m128i>())) };
        acc = _mm256_add_ps(acc, _mm256_mul_ps(qv, _mm256_cvtph_ps(rv)));
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 f32s; unaligned store.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    finish(lanes, q_rest, r_rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_f16_paths_agree_to_the_bit_and_match_f32() {
        for n in [1, 8, 13, 384, 1283] {
            let q: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 37.0).collect();
            let r32: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 29.0).collect();
            let r: Vec<f16> = r32.iter().map(|&v| f16::from_f32(v)).collect();
            let widened: Vec<f32> = r.iter().map(|v| v.to_f32()).collect();
            // Same order as dot_f32 on the widened row, whichever path ran.
            assert_eq!(dot_f16(&q, &r).to_bits(), dot_f32(&q, &widened).to_bits(), "n = {n}");
            assert!((dot_f16(&q, &r) - dot_f32(&q, &r32)).abs() < 1e-3 * n as f32);
        }
    }

    #[test]
    fn dot_f32_matches_f64_reference_on_odd_lengths() {
        for n in [1, 7, 8, 9, 100, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot_f32(&a, &b)) - exact).abs() < 1e-4, "n = {n}");
        }
    }
}
