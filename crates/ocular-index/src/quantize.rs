//! Symmetric per-vector int8 scalar quantisation, and the error bound that lets the search
//! prove its quantised shortlist contains the exact top-k.
//!
//! A unit vector `x` is stored as codes `c_i = round(x_i / s)` with `s = max_i |x_i| / 127`,
//! so `c_i` lies in `[-127, 127]` (never -128: the x86 kernels negate codes, and -128 has no
//! positive twin) and the reconstruction `x̂ = s·c` has per-component error at most `s/2`.
//! The residual `e = x - x̂` therefore has `‖e‖ ≤ s·√d / 2 = √d·max|x_i| / 254`; for a unit
//! vector with spread-out components (max|x_i| ≈ 4/√d) that is about 0.016, and with
//! uniform rounding the typical `‖e‖ ≈ s·√(d/12)` is about a third of that.
//!
//! With the query quantised the same way, the quantised score `q̂·x̂` differs from `q·x` by
//!
//! ```text
//! |q·x − q̂·x̂| = |q·(x − x̂) + (q − q̂)·x̂| ≤ ‖e_x‖ + ‖e_q‖·(1 + ‖e_x‖)
//! ```
//!
//! for unit `q` and `x`. The index records the largest `‖e_x‖` it has stored (see
//! [`ScoreBound`]) so each search knows a bound that holds for every vector.

/// Largest code magnitude; symmetric so that negating a code cannot overflow.
pub(crate) const CODE_MAX: f32 = 127.0;

/// Kernels process 64 codes at a time; stored rows are zero-padded to a multiple of this,
/// which leaves every dot product unchanged.
pub(crate) const LANES: usize = 64;

/// Rounds `dim` up to the padded row length.
pub(crate) fn padded_dim(dim: usize) -> usize {
    dim.div_ceil(LANES) * LANES
}

/// Returns `vector / ‖vector‖`, after checking dimension and finiteness.
pub(crate) fn normalized(vector: &[f32], dim: usize) -> Result<Vec<f32>, crate::IndexError> {
    if vector.len() != dim {
        return Err(crate::IndexError::DimensionMismatch { expected: dim, got: vector.len() });
    }
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(crate::IndexError::NonFinite);
    }
    // f64 so that huge or tiny (but finite) inputs neither overflow nor underflow the norm.
    let norm = vector.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Err(crate::IndexError::ZeroVector);
    }
    Ok(vector.iter().map(|&v| (f64::from(v) / norm) as f32).collect())
}

/// A quantised unit vector.
pub(crate) struct Quantized {
    /// Codes, zero-padded to [`padded_dim`].
    pub codes: Vec<i8>,
    /// Reconstruction scale `s`: `x ≈ s·codes`.
    pub scale: f32,
    /// `‖x − s·codes‖`, exact up to f64 rounding.
    pub residual: f64,
}

/// Quantises a finite, non-zero vector (normally a unit one).
pub(crate) fn quantize(unit: &[f32]) -> Quantized {
    let max_abs = unit.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    // A zero vector cannot reach here (normalisation rejects it); the guard keeps the scale
    // finite should a caller ever pass one.
    let scale = if max_abs > 0.0 { max_abs / CODE_MAX } else { 1.0 };
    let mut codes = vec![0i8; padded_dim(unit.len())];
    let mut residual_sq = 0.0f64;
    for (code, &v) in codes.iter_mut().zip(unit) {
        let c = (v / scale).round().clamp(-CODE_MAX, CODE_MAX);
        // In range by the clamp above, so the cast is exact.
        *code = c as i8;
        let err = f64::from(v) - f64::from(scale) * f64::from(c);
        residual_sq += err * err;
    }
    Quantized { codes, scale, residual: residual_sq.sqrt() }
}

/// Bound on `|r − a|` between the full-precision score `r` a rescorer computes and the
/// quantised score `a`, valid for every stored vector; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScoreBound(pub f32);

impl ScoreBound {
    /// `query_residual`: ‖q − q̂‖; `max_residual`: the largest ‖x − x̂‖ stored;
    /// `rescore_error`: how far the rescorer's own score may be from the exact `q·x`
    /// (f16 copies round each component); `dim` sizes the f32 summation error.
    pub fn new(query_residual: f64, max_residual: f64, rescore_error: f64, dim: usize) -> Self {
        let quantisation = max_residual + query_residual * (1.0 + max_residual);
        // Worst-case rounding of an f32 sum of `dim` products of unit vectors (γ_d), plus the
        // few roundings of scaling the integer dot product.
        let summation = (dim as f64 + 8.0) * f64::from(f32::EPSILON);
        let bound = (quantisation + rescore_error + summation) * (1.0 + 1e-6);
        Self(bound as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_stay_symmetric_and_residual_is_bounded() {
        let dim = 100;
        let raw: Vec<f32> = (0..dim).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let unit = normalized(&raw, dim).unwrap();
        let q = quantize(&unit);
        assert_eq!(q.codes.len(), 128);
        assert!(q.codes.iter().all(|&c| c != i8::MIN));
        assert!(q.codes[dim..].iter().all(|&c| c == 0));
        assert!(q.codes.iter().any(|&c| c.unsigned_abs() == 127));
        let bound = f64::from(q.scale) * (dim as f64).sqrt() / 2.0;
        assert!(q.residual <= bound, "{} > {}", q.residual, bound);
        let recon: f64 = unit
            .iter()
            .zip(&q.codes)
            .map(|(&v, &c)| (f64::from(v) - f64::from(q.scale) * f64::from(c)).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((recon - q.residual).abs() < 1e-9);
    }

    #[test]
    fn normalisation_rejects_bad_vectors() {
        assert!(matches!(
            normalized(&[1.0, 2.0], 3),
            Err(crate::IndexError::DimensionMismatch { expected: 3, got: 2 })
        ));
        assert!(matches!(normalized(&[0.0, f32::NAN], 2), Err(crate::IndexError::NonFinite)));
        assert!(matches!(normalized(&[0.0, 0.0], 2), Err(crate::IndexError::ZeroVector)));
        let tiny = normalized(&[1e-30, 1e-30], 2).unwrap();
        assert!((tiny[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }
}
