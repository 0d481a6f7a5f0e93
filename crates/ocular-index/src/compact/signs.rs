//! The one-bit scan's inner loop: `Σ_{i: bit i set} Pq_i` for every code of a block, the sum
//! that the estimator's `⟨Pq, s⟩ = 2·Σ_{s_i = +1} Pq_i − Σ Pq` needs (see `codes.rs`).
//!
//! Why not lookup tables (the scan's first form): one table of 256 sums per code byte is
//! 57 KB for a 448-bit code, more than the L1 cache, and each row costs 56 dependent table
//! reads. A masked add instead adds the query values of 16 bits at once: AVX-512 takes the code's
//! 16 bits as the lane mask of one `vaddps` (28 instructions per 448-bit row); AVX2 expands each
//! byte into a lane mask (broadcast, test, and) first.
//!
//! Every kernel computes the same f32 operations in the same order, so all return bit-identical
//! sums, which the tests check: sixteen lanes (lane `l` holds bits `16c + l`), four accumulators
//! of sixteen lanes (chunk `c` of 16 bits goes to accumulator `c % 4`, so four chains of adds run
//! side by side), then `(a0 + a1) + (a2 + a3)` and a halving fold of the sixteen lanes
//! (`l + (l + 8)`, then `+4`, `+2`, `+1`). A clear bit adds nothing in the AVX-512 kernel and
//! `+0.0` in the others: the same, because an accumulator starting at `+0.0` is never `−0.0`
//! (a round-to-nearest sum is `−0.0` only when both terms are), and `x + 0.0 = x` for every
//! other `x`.

/// Bits per 64-bit word of a code; codes are whole words (`bits` is a multiple of 64).
const WORD: usize = 64;

/// Which implementation runs, chosen once per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignKernel {
    /// Plain Rust for the build's baseline target.
    Portable,
    /// AVX2: each code byte expanded to an eight-lane mask.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F: 16 code bits are the mask of one masked add.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl SignKernel {
    /// The fastest kernel the running CPU supports.
    pub(crate) fn detect() -> Self {
        Self::available().into_iter().next().unwrap_or(Self::Portable)
    }

    /// Every kernel the running CPU supports, fastest first.
    pub(crate) fn available() -> Vec<Self> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Self::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                out.push(Self::Avx2);
            }
        }
        out.push(Self::Portable);
        out
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => "avx512",
        }
    }

    /// `out[r] = Σ_{bit i of code r set} pq[i]` for the `out.len()` codes of `bytes` bytes each
    /// in `codes`. `pq.len() = 8·bytes`, a multiple of 64.
    ///
    /// Only [`Self::detect`] and [`Self::available`] make the x86 variants, after checking
    /// the CPU: that is what makes the calls below sound.
    pub(crate) fn sums(self, pq: &[f32], codes: &[u8], out: &mut [f32]) {
        let bytes = pq.len() / 8;
        assert!(pq.len().is_multiple_of(WORD) && !pq.is_empty(), "codes are whole 64-bit words");
        assert_eq!(codes.len(), out.len() * bytes, "one output per code");
        match self {
            Self::Portable => portable(pq, codes, out),
            // SAFETY: this variant exists only where AVX2 was detected; lengths checked above.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => unsafe { x86::sums_avx2(pq, codes, out) },
            // SAFETY: this variant exists only where AVX-512F was detected; lengths as above.
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => unsafe { x86::sums_avx512(pq, codes, out) },
        }
    }
}

/// The definition every kernel reproduces (module docs), written so that the compiler
/// vectorises it: a clear bit masks its value to `+0.0` (bit test, compare, and), as the AVX2
/// kernel does.
fn portable(pq: &[f32], codes: &[u8], out: &mut [f32]) {
    let bytes = pq.len() / 8;
    for (o, code) in out.iter_mut().zip(codes.chunks_exact(bytes)) {
        let mut acc = [[0.0f32; 16]; 4];
        for (word, q) in code.chunks_exact(8).zip(pq.chunks_exact(WORD)) {
            for (acc, (pair, q)) in acc.iter_mut().zip(word.chunks_exact(2).zip(q.chunks_exact(16))) {
                let m = u32::from(u16::from_le_bytes([pair[0], pair[1]]));
                for (l, (s, v)) in acc.iter_mut().zip(q).enumerate() {
                    let keep = 0u32.wrapping_sub(u32::from(m & (1 << l) != 0));
                    *s += f32::from_bits(v.to_bits() & keep);
                }
            }
        }
        let mut lanes = [0.0f32; 16];
        for (l, s) in lanes.iter_mut().enumerate() {
            *s = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
        }
        *o = fold(lanes);
    }
}

/// The halving fold of sixteen lanes.
fn fold(mut lanes: [f32; 16]) -> f32 {
    let mut width = 16;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::WORD;

    /// The fold of sixteen lanes held as two halves (`lo` = lanes 0–7, `hi` = 8–15).
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    unsafe fn fold256(lo: __m256, hi: __m256) -> f32 {
        let eight = _mm256_add_ps(lo, hi);
        let four = _mm_add_ps(_mm256_castps256_ps128(eight), _mm256_extractf128_ps::<1>(eight));
        let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
        let one = _mm_add_ss(two, _mm_shuffle_ps::<0b01>(two, two));
        _mm_cvtss_f32(one)
    }

    /// One row's sixteen lanes (before the fold); `code.len() = pq.len() / 8`, a multiple of
    /// 8. Safe to call from code compiled for AVX-512F only (which checks the CPU).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn lanes_avx512(pq: &[f32], code: &[u8]) -> __m512 {
        assert!(pq.len() >= WORD * (code.len() / 8));
        let mut acc = [_mm512_setzero_ps(); 4];
        for (w, word) in code.chunks_exact(8).enumerate() {
            let m = u64::from_le_bytes(word.try_into().unwrap_or_default());
            for (a, acc) in acc.iter_mut().enumerate() {
                // SAFETY: 64·w + 16·a + 16 ≤ 8·code.len() ≤ pq.len() (asserted); unaligned load.
                let q = unsafe { _mm512_loadu_ps(pq.as_ptr().add(WORD * w + 16 * a)) };
                *acc = _mm512_mask_add_ps(*acc, (m >> (16 * a)) as u16, *acc, q);
            }
        }
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))
    }

    /// One step of the fold for rows whose partial sums sit in groups of `2g` lanes, `x`'s
    /// rows before `y`'s: each group becomes `lane l + lane l + g` (`l < g`), a group of `g`
    /// lanes, `x`'s rows in the low half of the result.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn halve(x: __m512, y: __m512, g: i32) -> __m512 {
        let mut first = [0i32; 16];
        for (o, f) in first.iter_mut().enumerate() {
            let o = o as i32;
            *f = (o / g) * 2 * g + o % g;
        }
        // SAFETY: 16 i32 values, 64 bytes; unaligned load.
        let first = unsafe { _mm512_loadu_si512(first.as_ptr().cast()) };
        let second = _mm512_add_epi32(first, _mm512_set1_epi32(g));
        _mm512_add_ps(_mm512_permutex2var_ps(x, first, y), _mm512_permutex2var_ps(x, second, y))
    }

    /// Sixteen rows' lanes folded at once: the per-row fold's dependent chain of shuffles and
    /// adds costs as much as the masked adds themselves, while four steps of `halve` fold
    /// sixteen rows in fifteen adds, with the same operations per row.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn fold16(rows: &[__m512; 16]) -> __m512 {
        let mut v = *rows;
        let mut n = 16;
        let mut g = 8;
        while n > 1 {
            for i in 0..n / 2 {
                v[i] = halve(v[2 * i], v[2 * i + 1], g);
            }
            n /= 2;
            g /= 2;
        }
        v[0]
    }

    /// # Safety
    /// The CPU must support AVX-512F; `pq.len()` is a multiple of 64 and
    /// `codes.len() = out.len() · pq.len() / 8`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sums_avx512(pq: &[f32], codes: &[u8], out: &mut [f32]) {
        let bytes = pq.len() / 8;
        let mut outs = out.chunks_exact_mut(16);
        let mut blocks = codes.chunks_exact(16 * bytes);
        for (o, block) in (&mut outs).zip(&mut blocks) {
            let mut lanes = [_mm512_setzero_ps(); 16];
            for (l, code) in lanes.iter_mut().zip(block.chunks_exact(bytes)) {
                *l = lanes_avx512(pq, code);
            }
            // SAFETY: `o` holds 16 f32; unaligned store.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), fold16(&lanes)) };
        }
        for (o, code) in outs.into_remainder().iter_mut().zip(blocks.remainder().chunks_exact(bytes)) {
            let sum = lanes_avx512(pq, code);
            let lo = _mm512_castps512_ps256(sum);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sum)));
            // SAFETY: AVX-512F implies AVX.
            *o = unsafe { fold256(lo, hi) };
        }
    }

    /// # Safety
    /// The CPU must support AVX2; lengths as for [`sums_avx512`].
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums_avx2(pq: &[f32], codes: &[u8], out: &mut [f32]) {
        let bytes = pq.len() / 8;
        // Lane t of a byte's mask tests bit t.
        let select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        for (o, code) in out.iter_mut().zip(codes.chunks_exact(bytes)) {
            // acc[a][h]: accumulator a, lanes 8h..8h + 8.
            let mut acc = [[_mm256_setzero_ps(); 2]; 4];
            for (c, &byte) in code.iter().enumerate() {
                let bits = _mm256_and_si256(_mm256_set1_epi32(i32::from(byte)), select);
                let mask = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, select));
                // SAFETY: 8·c + 8 ≤ 8·bytes = pq.len(); unaligned load.
                let q = unsafe { _mm256_loadu_ps(pq.as_ptr().add(8 * c)) };
                let (chunk, half) = (c / 2, c % 2);
                let a = &mut acc[chunk % 4][half];
                *a = _mm256_add_ps(*a, _mm256_and_ps(mask, q));
            }
            let lo = _mm256_add_ps(_mm256_add_ps(acc[0][0], acc[1][0]), _mm256_add_ps(acc[2][0], acc[3][0]));
            let hi = _mm256_add_ps(_mm256_add_ps(acc[0][1], acc[1][1]), _mm256_add_ps(acc[2][1], acc[3][1]));
            // SAFETY: AVX2 implies AVX.
            *o = unsafe { fold256(lo, hi) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> impl Iterator<Item = u64> {
        let mut state = seed;
        (0..n).map(move |_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 11
        })
    }

    #[test]
    fn every_available_kernel_matches_the_portable_one_bit_for_bit() {
        // Every code length the index allows up to 1024 bits, rows counts that do not fill a
        // block, values of mixed magnitude and sign (and −0.0).
        for words in 1..=16 {
            let bits = words * WORD;
            for rows in [1, 3, 16, 17, 40] {
                let seed = (bits * 31 + rows) as u64;
                let pq: Vec<f32> = random(bits, seed)
                    .enumerate()
                    .map(|(i, r)| match i % 97 {
                        0 => -0.0,
                        _ => ((r % 20_000) as f32 - 10_000.0) * 1e-4 * if i % 7 == 0 { 1e3 } else { 1.0 },
                    })
                    .collect();
                let codes: Vec<u8> = random(rows * bits / 8, seed ^ 5).map(|r| r as u8).collect();
                let mut want = vec![0.0; rows];
                SignKernel::Portable.sums(&pq, &codes, &mut want);
                for (r, code) in codes.chunks_exact(bits / 8).enumerate() {
                    let set = (0..bits).filter(|i| code[i / 8] >> (i % 8) & 1 == 1);
                    let direct: f64 = set.clone().map(|i| f64::from(pq[i])).sum();
                    let scale: f64 = set.map(|i| f64::from(pq[i].abs())).sum();
                    let error = (f64::from(want[r]) - direct).abs();
                    assert!(error <= 1e-5 * scale, "{bits} bits: {} vs {direct}", want[r]);
                }
                for kernel in SignKernel::available() {
                    let mut got = vec![f32::NAN; rows];
                    kernel.sums(&pq, &codes, &mut got);
                    let (a, b): (Vec<u32>, Vec<u32>) =
                        (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
                    assert_eq!(a, b, "{kernel:?} at {bits} bits, {rows} rows");
                }
            }
        }
    }

    #[test]
    fn all_ones_and_all_zeros() {
        let pq: Vec<f32> = (0..192).map(|i| i as f32 * 0.5 - 40.0).collect();
        let codes = [vec![0xffu8; 24], vec![0u8; 24]].concat();
        for kernel in SignKernel::available() {
            let mut out = [f32::NAN; 2];
            kernel.sums(&pq, &codes, &mut out);
            assert_eq!(out[0], pq.iter().sum::<f32>(), "{kernel:?}");
            assert_eq!(out[1].to_bits(), 0.0f32.to_bits(), "{kernel:?}");
        }
    }
}
