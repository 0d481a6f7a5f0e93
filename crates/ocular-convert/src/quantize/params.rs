//! Scales and zero points: how float ranges become int8/uint8 grids.
//!
//! Why this scheme (u8 activations, s8 per-channel symmetric weights, full 8-bit range):
//! ONNX Runtime's x86 CPU kernels (MLAS) are built around "U8S8" — uint8 activations times
//! int8 weights — and its QDQ optimiser fuses `DequantizeLinear → Conv → QuantizeLinear` into
//! `QLinearConv` for exactly that pair. On CPUs with VNNI (`vpdpbusd`, AVX-512 VNNI or
//! AVX-VNNI, as on the hosts ocular targets) the u8×s8 products accumulate straight into int32,
//! so the full 8-bit weight range is safe; ONNX Runtime's `reduce_range` (7-bit weights) only
//! exists for pre-VNNI AVX2, whose `vpmaddubsw` saturates int16 pair sums, and it costs
//! accuracy everywhere else. Weights are symmetric (zero point 0, which QLinearConv's
//! per-channel path requires) with one scale per output channel, because BatchNorm folding
//! leaves channel ranges orders of magnitude apart. Activations are asymmetric u8 with the
//! float 0 exactly representable, so zero padding and ReLU stay exact.

/// Quantisation parameters of one activation tensor (uint8, per tensor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActParams {
    pub scale: f32,
    pub zero_point: u8,
}

/// The u8 grid covering `[lo, hi]` widened to include 0.
pub fn activation(lo: f32, hi: f32) -> ActParams {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = (hi - lo) / 255.0;
    if !scale.is_finite() || scale <= f32::MIN_POSITIVE {
        // A constant-zero tensor: any scale represents it; 1 keeps ONNX Runtime's checks happy.
        return ActParams { scale: 1.0, zero_point: 0 };
    }
    let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    ActParams { scale, zero_point }
}

/// Per-output-channel symmetric int8 weights: `w ≈ q * scale[c]`, `q ∈ [-127, 127]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightParams {
    pub quantized: Vec<i8>,
    pub scales: Vec<f32>,
}

/// Quantises a weight tensor whose first axis is the output channel (ONNX Conv `[O, I/g, kh, kw]`).
pub fn weights_per_channel(w: &[f32], channels: usize) -> WeightParams {
    let per = w.len() / channels.max(1);
    let mut quantized = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for chunk in w.chunks(per.max(1)) {
        let max = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // -128 is left out so the grid is symmetric and negation cannot overflow.
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        quantized.extend(chunk.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    WeightParams { quantized, scales }
}

/// Widens a channel's weight scale where its bias would not fit int32 on the grid of
/// `input_scale * weight_scale` (BatchNorm folding leaves near-dead channels with tiny weights
/// and a large bias; clamping the bias instead would silently change the channel).
pub fn fit_bias(weights: &mut WeightParams, w: &[f32], bias: &[f32], input_scale: f32) {
    const LIMIT: f32 = (1u32 << 30) as f32;
    let per = w.len() / weights.scales.len().max(1);
    for (c, b) in bias.iter().enumerate() {
        let need = b.abs() / (input_scale * LIMIT);
        if weights.scales[c] < need {
            weights.scales[c] = need;
            for (q, v) in weights.quantized[c * per..(c + 1) * per].iter_mut().zip(&w[c * per..(c + 1) * per]) {
                *q = (v / need).round().clamp(-127.0, 127.0) as i8;
            }
        }
    }
}

/// Bias as int32 on the grid of `input_scale * weight_scale[c]`, as QLinearConv consumes it.
pub fn bias_int32(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = weight_scales.iter().map(|s| s * input_scale).collect();
    let q = bias
        .iter()
        .zip(&scales)
        .map(|(b, s)| (f64::from(*b) / f64::from(*s)).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
        .collect();
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_grid_represents_zero_exactly() {
        let p = activation(-1.3, 4.7);
        // 0 quantises to the zero point, which dequantises to exactly 0; the grid spans the range.
        assert_eq!(((0.0f32 / p.scale).round() + p.zero_point as f32 - p.zero_point as f32) * p.scale, 0.0);
        let (lo, hi) = ((0.0 - p.zero_point as f32) * p.scale, (255.0 - p.zero_point as f32) * p.scale);
        assert!((lo + 1.3).abs() <= p.scale && (hi - 4.7).abs() <= p.scale, "{lo} {hi}");
        assert!((p.scale - 6.0 / 255.0).abs() < 1e-7);
        // After ReLU the whole grid is non-negative.
        assert_eq!(activation(0.0, 6.0).zero_point, 0);
        assert_eq!(activation(0.0, 0.0), ActParams { scale: 1.0, zero_point: 0 });
    }

    #[test]
    fn weights_round_trip_within_half_a_step_per_channel() {
        let w = [0.5, -1.0, 0.25, 0.001, -0.002, 0.0005];
        let p = weights_per_channel(&w, 2);
        assert_eq!(p.scales.len(), 2);
        assert_eq!(p.quantized[1], -127);
        for (c, chunk) in w.chunks(3).enumerate() {
            for (i, v) in chunk.iter().enumerate() {
                let back = f32::from(p.quantized[c * 3 + i]) * p.scales[c];
                assert!((back - v).abs() <= p.scales[c] / 2.0 + 1e-9, "{v} -> {back}");
            }
        }
        // The small channel keeps its own resolution instead of rounding to zero.
        assert_ne!(p.quantized[4], 0);
    }

    #[test]
    fn bias_uses_the_product_of_scales() {
        let (q, s) = bias_int32(&[0.3, -0.1], 0.01, &[0.5, 0.1]);
        assert!((s[0] - 0.005).abs() < 1e-9 && (s[1] - 0.001).abs() < 1e-9, "{s:?}");
        assert_eq!(q, vec![60, -100]);
    }
}
