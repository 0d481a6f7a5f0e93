//! The plain-Rust kernel: written so that LLVM vectorises it (an integer sum is associative,
//! so the reduction may be reordered), and reused under `target_feature` by the x86 module.

/// `a · b` for two code rows.
#[inline(always)]
pub(super) fn dot(a: &[i8], b: &[i8]) -> i32 {
    // |sum| ≤ d·127² stays far below i32::MAX for any realistic d (< 133 000).
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// `out[i] = query · rows[i]`.
#[inline(always)]
pub(super) fn dots(query: &[i8], rows: &[i8], out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        *o = dot(query, row);
    }
}
