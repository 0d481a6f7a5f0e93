//! Batched int8 dot products: the inner loop of every search.
//!
//! A search computes one dot product per stored vector, so this loop is the whole cost of an
//! exact scan. Several implementations exist because the fastest one depends on the CPU and
//! on what the compiler makes of plain code; `examples/bench_index.rs` times each of them, and
//! [`Kernel::detect`] picks the best the running CPU supports, in the order measured there.
//!
//! Measured on the project's Xeon VM (one core, median search, no rescoring), 10k × 512 /
//! 100k × 512: avx512-vnni 0.19 / 2.1 ms, avx2 0.19 / 2.1 ms, auto-avx2 0.35 / 4.1 ms,
//! portable 1.2 / 14 ms. The two hand-written kernels tie because both read memory as fast as
//! one core can (about 26 GB/s from cache); plain code compiled for AVX2 is half as fast and
//! the SSE2 baseline six times slower, which is why hand-written kernels exist at all.
//!
//! All kernels compute the same exact integer result, so they are interchangeable and the
//! tests compare each against the portable one.

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::quantize::LANES;

/// One implementation of the dot-product loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, vectorised by the compiler for the build's baseline target (SSE2 on x86-64).
    Portable,
    /// The same plain Rust compiled for AVX2 and selected at run time.
    AutoAvx2,
    /// Hand-written AVX2: `vpsignb` moves the query's sign onto the stored codes so that
    /// `vpmaddubsw` (unsigned × signed bytes) applies.
    Avx2,
    /// AVX-512 VNNI: `vpdpbusd` multiplies and accumulates 64 byte pairs into 16 i32 lanes in
    /// one instruction, using the same sign transfer (a masked negate).
    Avx512Vnni,
}

impl Kernel {
    /// Every kernel, fastest first (as measured by `examples/bench_index.rs`; VNNI ties with
    /// AVX2 when memory-bound and needs fewer instructions, so it goes first).
    pub const ALL: [Kernel; 4] = [Kernel::Avx512Vnni, Kernel::Avx2, Kernel::AutoAvx2, Kernel::Portable];

    /// The fastest kernel this CPU supports.
    pub fn detect() -> Kernel {
        Self::ALL.into_iter().find(|k| k.is_available()).unwrap_or(Kernel::Portable)
    }

    /// Whether the running CPU has the instructions this kernel needs.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::AutoAvx2 | Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every kernel the running CPU supports.
    pub fn available() -> Vec<Kernel> {
        Self::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::AutoAvx2 => "auto-avx2",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512Vnni => "avx512-vnni",
        }
    }
}

/// A kernel proven to run on this CPU: it can only be made by [`Checked::new`], which checks,
/// and that is what makes the `unsafe` calls into `target_feature` code below sound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked(Kernel);

impl Checked {
    pub(crate) fn new(kernel: Kernel) -> Option<Self> {
        kernel.is_available().then_some(Self(kernel))
    }

    pub(crate) fn kernel(self) -> Kernel {
        self.0
    }

    /// Writes `out[i] = query · row_i` where `rows` holds `out.len()` rows of
    /// `query.codes.len()` codes each.
    pub(crate) fn dots(self, query: &QueryCodes, rows: &[i8], out: &mut [i32]) {
        let dp = query.codes.len();
        assert_eq!(dp % LANES, 0, "rows must be padded to whole 64-code chunks");
        assert_eq!(rows.len(), out.len() * dp, "one output per row");
        match self.0 {
            Kernel::Portable => portable::dots(&query.codes, rows, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Checked` exists only for kernels whose CPU features were detected.
            Kernel::AutoAvx2 => unsafe { x86::dots_auto_avx2(&query.codes, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; lengths were checked to be whole chunks.
            Kernel::Avx2 => unsafe { x86::dots_avx2(&query.codes, &query.abs, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512Vnni => unsafe { x86::dots_avx512_vnni(&query.abs, &query.neg_mask, rows, out) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => portable::dots(&query.codes, rows, out),
        }
    }
}

/// A quantised query in the forms the kernels want, prepared once per search.
pub(crate) struct QueryCodes {
    /// Signed codes, padded to whole chunks.
    pub codes: Vec<i8>,
    /// `|codes|` as unsigned bytes: the unsigned operand of `vpmaddubsw` / `vpdpbusd`.
    pub abs: Vec<u8>,
    /// Bit `j` of word `c` is set when code `64·c + j` is negative; the stored code at that
    /// position gets negated so that `|q|·(sign(q)·x) = q·x`.
    pub neg_mask: Vec<u64>,
}

impl QueryCodes {
    pub(crate) fn new(codes: Vec<i8>) -> Self {
        let abs = codes.iter().map(|c| c.unsigned_abs()).collect();
        let neg_mask = codes
            .chunks(LANES)
            .map(|chunk| chunk.iter().enumerate().filter(|(_, c)| **c < 0).fold(0u64, |m, (j, _)| m | (1 << j)))
            .collect();
        Self { codes, abs, neg_mask }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes covering the extremes (±127), zeros and every sign pairing.
    fn codes(n: usize, seed: u64) -> Vec<i8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = ((s >> 33) % 255) as i32 - 127;
                v as i8
            })
            .collect()
    }

    #[test]
    fn every_available_kernel_matches_the_scalar_definition() {
        for dp in [64, 128, 384, 512, 1280] {
            let rows_n = 37;
            let q = QueryCodes::new(codes(dp, 1));
            let mut rows = codes(dp * rows_n, 2);
            // Worst case for saturation: all ±127 on both sides.
            rows[..dp].fill(-127);
            let expected: Vec<i32> =
                rows.chunks(dp).map(|r| r.iter().zip(&q.codes).map(|(&a, &b)| a as i32 * b as i32).sum()).collect();
            for kernel in Kernel::available() {
                let mut out = vec![0; rows_n];
                Checked::new(kernel).unwrap().dots(&q, &rows, &mut out);
                assert_eq!(out, expected, "kernel {} at {dp} dims", kernel.name());
            }
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate() {
        let dp = 256;
        let q = QueryCodes::new(vec![-127; dp]);
        let rows = vec![-127i8; dp * 3];
        for kernel in Kernel::available() {
            let mut out = vec![0; 3];
            Checked::new(kernel).unwrap().dots(&q, &rows, &mut out);
            assert_eq!(out, vec![127 * 127 * dp as i32; 3], "kernel {}", kernel.name());
        }
    }

    #[test]
    fn detect_returns_an_available_kernel() {
        assert!(Kernel::detect().is_available());
        assert!(Kernel::available().contains(&Kernel::Portable));
    }
}
