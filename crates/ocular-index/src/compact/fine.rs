//! 4-bit refinement codes: the middle stage between the one-bit scan and the f32 rescoring.
//!
//! Why a middle stage: one-bit codes cannot rank rows that differ from each other only by
//! unstructured noise (the bench catalog's seed groups, a product photographed thousands of
//! times): their score intervals all overlap, and without this stage every such row was
//! rescored from the f32 file, ~5 KB per 1280-d row (200 MB per photo query at a million
//! products). A 4-bit code of the same row is 648 B, 8× fewer bytes, and precise enough that
//! only a few dozen to a few hundred rows still overlap the top k after it; only those are read
//! as f32. The codes live in a second mapped file (page cache, like the f32 file), not in
//! anonymous memory: 648 B per `image` row would break the memory budget many times over.
//!
//! A row `x` (unit) with centroid `c` (the one its one-bit code uses) stores its residual
//! `r = x − c` as `code_i = round(r_i / s + u_i)` in −7..7, with `s = max|r_i| / 6.5` and `u` a
//! fixed pseudo-random dither in [−½, ½) per dimension (from the index's seed). With
//! subtractive dither, `r̂ = s·(code − u)` differs from `r` by errors `e_i` that are uniform on
//! [−s/2, s/2] and independent of `r` (the classic property of subtractive dither), so for any
//! query `q`
//!
//! ```text
//! q·x = q·c + ⟨c, r⟩ + ⟨q − c, r̂⟩ + ⟨q − c, e⟩
//!     = q·c + base + s·(⟨q, code⟩ − ⟨q, u⟩) + ⟨q − c, e⟩,   base = ⟨c, r⟩ − s·(⟨c, code⟩ − ⟨c, u⟩)
//! ```
//!
//! and the last term has mean 0 and standard deviation `s·‖q − c‖/√12`. Without the dither the
//! error of a row is not random with respect to a query close to it (a photo of a catalogued
//! product: `⟨r, r − r̂⟩ ≈ ‖r − r̂‖²`, a bias, not noise). The search treats
//! `estimate ± Z·s·‖q − c‖/√12` as the interval ([`Z`]).
//!
//! Row layout: `s` (f32), `base` (f32), then the codes in blocks of 32 dimensions, 16 bytes
//! each, byte `t` of a block holding dimension `t` in its low nibble and `t + 16` in its high
//! one (so the dot product loads 16 contiguous query values per nibble plane and vectorises).

/// Standard deviations of the refinement interval: a sum of hundreds of independent uniform
/// errors is close to normal, which leaves `|error| > 5σ` about once in 1.7 million rows.
pub(crate) const Z: f32 = 5.0;

/// Slack for f32 summation in the estimate (over ~1280 terms of magnitude ≤ 7·|q_i|).
pub(crate) const SUM_SLACK: f32 = 1e-5;

/// Bytes of one row's refinement code for `dim` dimensions.
pub(crate) fn row_bytes(dim: usize) -> usize {
    8 + dim.div_ceil(32) * 16
}

/// The fixed dither `u` (`dim` values in [−½, ½)) from `seed`: the same in every process.
pub(crate) fn dither(dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x7d1f_4b3c_9a2e_5f61;
    (0..dim)
        .map(|_| {
            // SplitMix64, as the projection's signs.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// The refinement code of unit vector `x` relative to centroid `c`, with dither `u`.
pub(crate) fn encode(x: &[f32], c: &[f32], u: &[f32]) -> Vec<u8> {
    let dim = x.len();
    let r: Vec<f64> = x.iter().zip(c).map(|(a, b)| f64::from(*a) - f64::from(*b)).collect();
    let max = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let s = (max / 6.5) as f32;
    let mut out = vec![0u8; row_bytes(dim)];
    let (mut c_dot_r, mut c_dot_code) = (0.0f64, 0.0f64);
    let codes = &mut out[8..];
    for i in 0..dim {
        // |r/s| ≤ 6.5 and |u| ≤ ½, so the rounded value stays in −7..7.
        let q = if s > 0.0 { (r[i] / f64::from(s) + f64::from(u[i])).round().clamp(-7.0, 7.0) } else { 0.0 };
        let nibble = (q as i8 as u8) & 0x0f;
        let (block, t) = (i / 32, i % 32);
        codes[block * 16 + t % 16] |= if t < 16 { nibble } else { nibble << 4 };
        c_dot_r += f64::from(c[i]) * r[i];
        c_dot_code += f64::from(c[i]) * (q - f64::from(u[i]));
    }
    let base = c_dot_r - f64::from(s) * c_dot_code;
    out[..4].copy_from_slice(&s.to_le_bytes());
    out[4..8].copy_from_slice(&(base as f32).to_le_bytes());
    out
}

/// A query prepared for refinement: zero-padded to whole blocks, and `⟨q, u⟩`.
pub(crate) struct FineQuery {
    padded: Vec<f32>,
    q_dot_u: f32,
}

impl FineQuery {
    pub(crate) fn new(unit: &[f32], u: &[f32]) -> Self {
        let mut padded = unit.to_vec();
        padded.resize(unit.len().div_ceil(32) * 32, 0.0);
        Self { padded, q_dot_u: crate::rescore::dot_f32(unit, u) }
    }

    /// `(estimate − q·c, s)` for one row's code: add `q·c` of the row's centroid for the
    /// estimate; the interval's half-width is `Z·s·‖q − c‖/√12 + SUM_SLACK`.
    pub(crate) fn score(&self, row: &[u8]) -> (f32, f32) {
        let s = f32::from_le_bytes([row[0], row[1], row[2], row[3]]);
        let base = f32::from_le_bytes([row[4], row[5], row[6], row[7]]);
        (base + s * (dot_q4(&self.padded, &row[8..]) - self.q_dot_u), s)
    }
}

/// `⟨q, code⟩` over whole blocks (`q.len() = 2·codes.len()`): sixteen lanes, one per byte
/// position, so both nibble planes multiply contiguous query values. The same loop compiled for
/// AVX2 where the CPU has it (the portable build targets baseline x86-64, whose SSE2 has no
/// sign-extending byte loads): the estimate needs no bit-exact order, only the interval.
fn dot_q4(q: &[f32], codes: &[u8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features the function is compiled for were just detected.
        return unsafe { dot_q4_avx2(q, codes) };
    }
    dot_q4_portable(q, codes)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q4_avx2(q: &[f32], codes: &[u8]) -> f32 {
    dot_q4_portable(q, codes)
}

#[inline(always)]
fn dot_q4_portable(q: &[f32], codes: &[u8]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (blocks, _) = codes.as_chunks::<16>();
    let (qs, _) = q.as_chunks::<32>();
    for (b, qb) in blocks.iter().zip(qs) {
        for t in 0..16 {
            let low = f32::from((b[t] << 4) as i8 >> 4);
            let high = f32::from(b[t] as i8 >> 4);
            lanes[t] += qb[t] * low + qb[t + 16] * high;
        }
    }
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn estimates_are_unbiased_and_within_the_interval() {
        // Near-duplicates of one centre, queried with a row itself (the case the dither is
        // for) and with fresh neighbours; dimensions not a multiple of 32 exercise padding.
        for dim in [384, 1000] {
            let mut state = 3u64;
            let mut rand = || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            };
            let centre = unit((0..dim).map(|_| rand()).collect());
            let c: Vec<f32> = centre.iter().map(|v| v * 0.95).collect();
            let u = dither(dim, 9);
            let rows: Vec<Vec<f32>> = (0..200)
                .map(|_| unit(centre.iter().map(|v| v + 0.3 * rand() / (dim as f32).sqrt()).collect()))
                .collect();
            let (mut errors, mut worst) = (Vec::new(), 0.0f32);
            for (i, x) in rows.iter().enumerate() {
                let code = encode(x, &c, &u);
                let q = if i % 2 == 0 { x.clone() } else { rows[(i + 1) % rows.len()].clone() };
                let fq = FineQuery::new(&q, &u);
                let (partial, s) = fq.score(&code);
                let estimate = crate::rescore::dot_f32(&q, &c) + partial;
                let exact = crate::rescore::dot_f32(&q, x);
                let dist = q.iter().zip(&c).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
                let sigma = s * dist / 12f32.sqrt();
                errors.push(estimate - exact);
                worst = worst.max((estimate - exact).abs() / sigma);
            }
            let mean = errors.iter().sum::<f32>() / errors.len() as f32;
            let rms = (errors.iter().map(|e| e * e).sum::<f32>() / errors.len() as f32).sqrt();
            assert!(worst < Z, "{dim}-d: worst error {worst} σ");
            assert!(mean.abs() < rms / 2.0, "{dim}-d: bias {mean} against rms {rms}");
        }
    }

    #[test]
    fn the_dot_product_reads_both_nibble_planes() {
        let q: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
        let codes: Vec<u8> = (0..32).map(|i| (i * 37 + 5) as u8).collect();
        let value = |i: usize| {
            let byte = codes[(i / 32) * 16 + i % 16];
            let nibble = if i % 32 < 16 { byte & 0x0f } else { byte >> 4 };
            f32::from(((nibble << 4) as i8) >> 4)
        };
        let direct: f32 = (0..64).map(|i| q[i] * value(i)).sum();
        assert!((dot_q4(&q, &codes) - direct).abs() < 1e-4);
    }
}
