//! x86-64 kernels, compiled for AVX2 / AVX-512 VNNI and called only after run-time detection
//! (see [`super::Checked`]). Rows are whole 64-code chunks, checked by the caller.
//!
//! Both hand-written kernels use the same identity: `q·x = Σ |q_i| · (sign(q_i)·x_i)`. The
//! unsigned-by-signed byte multiplies (`vpmaddubsw`, `vpdpbusd`) then apply, with `|q_i|` as
//! the unsigned operand. Codes lie in [-127, 127], so negating one never overflows, and a pair
//! sum in `vpmaddubsw` is at most 2·127² = 32 258, below the i16 saturation point.

use std::arch::x86_64::*;

use crate::quantize::LANES;

/// The portable loop, compiled with AVX2 enabled so LLVM may use 256-bit registers.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dots_auto_avx2(query: &[i8], rows: &[i8], out: &mut [i32]) {
    super::portable::dots(query, rows, out);
}

/// # Safety
/// The CPU must support AVX2; `query.len() == abs.len()` is a multiple of 64 and
/// `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dots_avx2(query: &[i8], abs: &[u8], rows: &[i8], out: &mut [i32]) {
    let dp = query.len();
    debug_assert!(dp.is_multiple_of(LANES) && abs.len() == dp && rows.len() == out.len() * dp);
    let ones = _mm256_set1_epi16(1);
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dp)) {
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        for c in (0..dp).step_by(LANES) {
            // SAFETY: c + 64 <= dp = row.len() = query.len() = abs.len(); unaligned loads.
            let (x0, x1, q0, q1, a0, a1) = unsafe {
                let x = row.as_ptr().add(c).cast::<__m256i>();
                let q = query.as_ptr().add(c).cast::<__m256i>();
                let a = abs.as_ptr().add(c).cast::<__m256i>();
                (
                    _mm256_loadu_si256(x),
                    _mm256_loadu_si256(x.add(1)),
                    _mm256_loadu_si256(q),
                    _mm256_loadu_si256(q.add(1)),
                    _mm256_loadu_si256(a),
                    _mm256_loadu_si256(a.add(1)),
                )
            };
            prefetch_ahead(row.as_ptr().wrapping_add(c));
            let p0 = _mm256_maddubs_epi16(a0, _mm256_sign_epi8(x0, q0));
            let p1 = _mm256_maddubs_epi16(a1, _mm256_sign_epi8(x1, q1));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
        }
        *o = hsum256(_mm256_add_epi32(acc0, acc1));
    }
}

/// How far ahead of the row being read to prefetch. The hardware prefetcher stops at every
/// 4 KiB page boundary, so on a scan too large for the cache a plain loop stalls at the start
/// of each page; asking for the line 8 KiB ahead keeps memory busy (measured on this
/// project's 2-core Xeon VM: about +15 % bandwidth on a 51 MB scan, 0.5 KiB gave less).
const PREFETCH_DISTANCE: usize = 8192;

/// Hints the CPU to fetch the cache line `PREFETCH_DISTANCE` bytes past `at`. A prefetch
/// never faults, so addresses past the end of the rows are harmless (hence `wrapping_add`:
/// the pointer is never dereferenced).
#[inline(always)]
fn prefetch_ahead(at: *const i8) {
    // SAFETY: `_mm_prefetch` is a hint with no memory-safety requirements (SSE is baseline
    // on x86-64).
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_DISTANCE)) };
}

#[target_feature(enable = "avx2")]
fn hsum256(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI; `abs.len()` is a multiple of 64,
/// `neg_mask.len() == abs.len() / 64` and `rows.len() == out.len() * abs.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn dots_avx512_vnni(abs: &[u8], neg_mask: &[u64], rows: &[i8], out: &mut [i32]) {
    let dp = abs.len();
    debug_assert!(dp.is_multiple_of(LANES) && neg_mask.len() * LANES == dp);
    debug_assert!(rows.len() == out.len() * dp);
    let zero = _mm512_setzero_si512();
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dp)) {
        // Two accumulators hide the latency of the dependent `vpdpbusd` chain.
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        let mut chunks = neg_mask.iter().enumerate();
        while let Some((c, &m)) = chunks.next() {
            // SAFETY: (c + 1)·64 <= dp = row.len() = abs.len(); unaligned loads.
            let (x, a) = unsafe {
                (
                    _mm512_loadu_si512(row.as_ptr().add(c * LANES).cast()),
                    _mm512_loadu_si512(abs.as_ptr().add(c * LANES).cast()),
                )
            };
            prefetch_ahead(row.as_ptr().wrapping_add(c * LANES));
            let signed = _mm512_mask_sub_epi8(x, m, zero, x);
            acc0 = _mm512_dpbusd_epi32(acc0, a, signed);
            if let Some((c, &m)) = chunks.next() {
                // SAFETY: as above, for the next chunk.
                let (x, a) = unsafe {
                    (
                        _mm512_loadu_si512(row.as_ptr().add(c * LANES).cast()),
                        _mm512_loadu_si512(abs.as_ptr().add(c * LANES).cast()),
                    )
                };
                prefetch_ahead(row.as_ptr().wrapping_add(c * LANES));
                let signed = _mm512_mask_sub_epi8(x, m, zero, x);
                acc1 = _mm512_dpbusd_epi32(acc1, a, signed);
            }
        }
        *o = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
    }
}
