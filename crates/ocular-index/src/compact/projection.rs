//! A fixed random projection: a randomised Hadamard rotation (two rounds of random sign flips
//! and a fast Walsh–Hadamard transform), cut to its first `bits` coordinates.
//!
//! Why random and fixed rather than learned: the codes of a persisted index must not change
//! when the catalog does, and a random rotation spreads every vector's energy evenly over the
//! coordinates, which is what one-bit codes need (RaBitQ's argument: Gao & Long, SIGMOD 2024,
//! <https://arxiv.org/abs/2405.12497>). `H·D` costs `O(D log D)` per vector instead of the
//! `O(D²)` of a dense orthogonal matrix and needs no stored matrix at all, only `2·D` signs
//! from a fixed seed.
//!
//! Keeping only the first `bits` of the `D` (the dimension rounded up to a power of two)
//! rotated coordinates, scaled by `√(D/bits)`, is a Johnson–Lindenstrauss projection:
//! `⟨P a, P b⟩` estimates `⟨a, b⟩` with a standard deviation of about
//! `‖a‖‖b‖·√((1 − bits/D)/bits)`, which the search's error bound includes.

/// The projection `P`: `bits` output coordinates from `dim` input ones.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    dim: usize,
    padded: usize,
    bits: usize,
    /// Two rounds of ±1 signs, `padded` each.
    signs: [Vec<f32>; 2],
}

impl Projection {
    /// `bits` must be a power of two or at most `dim` rounded up to one (checked by the
    /// caller); a small `dim` is zero-padded up to `bits`.
    pub(crate) fn new(dim: usize, bits: usize, seed: u64) -> Self {
        let padded = dim.next_power_of_two().max(bits.next_power_of_two());
        let mut state = seed;
        let mut sign = || {
            // SplitMix64: a fixed seed gives the same projection in every process.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            if (z ^ (z >> 31)) & 1 == 0 { 1.0 } else { -1.0 }
        };
        let first = (0..padded).map(|_| sign()).collect();
        let second = (0..padded).map(|_| sign()).collect();
        Self { dim, padded, bits, signs: [first, second] }
    }

    pub(crate) fn padded(&self) -> usize {
        self.padded
    }

    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    /// `P·x` into `out` (`bits` values); `scratch` is reused between calls.
    pub(crate) fn apply(&self, x: &[f32], scratch: &mut Vec<f32>, out: &mut [f32]) {
        debug_assert_eq!(x.len(), self.dim);
        scratch.clear();
        scratch.extend_from_slice(x);
        scratch.resize(self.padded, 0.0);
        for signs in &self.signs {
            scratch.iter_mut().zip(signs).for_each(|(v, s)| *v *= s);
            fwht(scratch);
        }
        // Each unnormalised transform multiplies norms by √D; the cut keeps `bits` of `D`
        // coordinates, so √(D/bits) restores the expected norm.
        let scale = 1.0 / (self.padded as f32 * (self.bits as f32 / self.padded as f32).sqrt());
        out.iter_mut().zip(scratch.iter()).for_each(|(o, v)| *o = v * scale);
    }
}

/// In-place unnormalised fast Walsh–Hadamard transform; `v.len()` is a power of two.
fn fwht(v: &mut [f32]) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for block in v.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*x + *y, *x - *y);
                *x = s;
                *y = d;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn full_width_is_a_rotation() {
        let p = Projection::new(100, 128, 7);
        let a: Vec<f32> = (0..100).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..100).map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0).collect();
        let (mut s, mut pa, mut pb) = (Vec::new(), vec![0.0; 128], vec![0.0; 128]);
        p.apply(&a, &mut s, &mut pa);
        p.apply(&b, &mut s, &mut pb);
        assert!((dot(&pa, &pa) - dot(&a, &a)).abs() < 1e-3 * dot(&a, &a));
        assert!((dot(&pa, &pb) - dot(&a, &b)).abs() < 1e-3 * dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
    }

    #[test]
    fn same_seed_same_projection_other_seed_other() {
        let x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let run = |seed| {
            let mut out = vec![0.0; 16];
            Projection::new(20, 16, seed).apply(&x, &mut Vec::new(), &mut out);
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn a_cut_keeps_norms_on_average() {
        let p = Projection::new(512, 128, 3);
        let mut total = 0.0;
        let mut out = vec![0.0; 128];
        for k in 0..64 {
            let x: Vec<f32> = (0..512).map(|i| if i == (k * 7) % 512 { 1.0 } else { 0.0 }).collect();
            p.apply(&x, &mut Vec::new(), &mut out);
            total += dot(&out, &out);
        }
        assert!((total / 64.0 - 1.0).abs() < 0.05, "mean squared norm {}", total / 64.0);
    }
}
