//! Cosine similarity, the one definition every crate uses: the converter's int8 gates and
//! self-checks, the runtime's load-time self-check, and search's rescoring of stored vectors.
//!
//! Sums in f64: the gates compare cosines a few 1e-4 below 1 (an f32 sum over 1280 terms
//! drifts by about that much), and it costs nothing next to the model runs it checks.

/// The cosine of `a` and `b`, in [-1, 1]; `None` for different lengths or a zero vector (an
/// empty one included), where the angle is undefined.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (na > 0.0 && nb > 0.0).then(|| (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::cosine;

    #[test]
    fn known_angles_and_undefined_cases() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert_eq!(cosine(&[2.0, -3.0], &[-4.0, 6.0]), Some(-1.0));
        assert_eq!(cosine(&[1e-30, 0.0], &[1e-30, 0.0]), Some(1.0), "no underflow to 0/0");
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), None);
        assert_eq!(cosine(&[], &[]), None);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), None);
    }
}
