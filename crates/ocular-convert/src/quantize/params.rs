//! Scales and zero points: how float ranges become int8/uint8 grids.
//!
//! Activations are asymmetric u8 with the float 0 exactly representable, so zero padding and
//! ReLU stay exact. Weights are symmetric per output channel (one scale per channel, because
//! BatchNorm folding leaves channel ranges orders of magnitude apart), stored in one of the
//! [`WeightFormat`]s below.
//!
//! Why the format matters: ONNX Runtime's x86 kernels (MLAS) pick the integer GEMM by the
//! weight type and the CPU. For u8 activations × **s8** weights on a CPU without VNNI (AVX2
//! only, e.g. AMD EPYC before Zen 4), MLAS multiplies with `vpmaddubsw`, which adds two
//! u8×s8 products into a *saturating* int16: 2 × 255 × 127 = 64,770 does not fit 32,767, so
//! sums clip and the result depends on the instruction set (VNNI's `vpdpbusd` accumulates in
//! int32 and does not clip). Measured under an AVX2-only CPU model (docs/QUANTIZATION.md): the
//! full-range s8 EfficientNet agreed with fp32 on 59% of top-1 classes, against 95% with VNNI.
//! Two formats avoid the saturation: 7-bit weights (`reduce_range`: 2 × 255 × 64 fits int16)
//! and **u8 weights** with zero point 128, which MLAS runs through its U8U8 kernels (operands
//! widened to int16 and multiplied by `vpmaddwd` into int32: exact on every x86 CPU, with VNNI
//! or without). u8 keeps the full 255-step weight grid, so it is the default.

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

/// How quantised weights are stored (see the module docs for why it matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// uint8 with zero point 128, values 1..=255: exact integer products on every x86 CPU.
    #[default]
    U8,
    /// int8 in [-127, 127]: exact only where the CPU has VNNI (AVX2 saturates int16 sums).
    S8,
    /// int8 in [-64, 64] (7 bits): exact everywhere, one bit coarser.
    S7,
}

impl WeightFormat {
    /// The largest |q| of the symmetric grid.
    pub fn max_q(self) -> f32 {
        match self {
            WeightFormat::U8 | WeightFormat::S8 => 127.0,
            WeightFormat::S7 => 64.0,
        }
    }

    /// The stored zero point (the float 0).
    pub fn zero_point(self) -> u8 {
        match self {
            WeightFormat::U8 => 128,
            WeightFormat::S8 | WeightFormat::S7 => 0,
        }
    }

    /// How the manifest and the model's metadata name it.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightFormat::U8 => "u8-zp128",
            WeightFormat::S8 => "s8",
            WeightFormat::S7 => "s7",
        }
    }

    /// The stored byte of the grid value `q` (two's complement for the signed formats).
    pub fn store(self, q: i8) -> u8 {
        match self {
            WeightFormat::U8 => (i16::from(q) + 128) as u8,
            WeightFormat::S8 | WeightFormat::S7 => q as u8,
        }
    }
}

impl std::str::FromStr for WeightFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "u8" | "u8-zp128" => Ok(WeightFormat::U8),
            "s8" => Ok(WeightFormat::S8),
            "s7" => Ok(WeightFormat::S7),
            other => Err(format!("unknown weight format {other:?}; use u8, s8 or s7")),
        }
    }
}

/// Per-output-channel symmetric weights on the grid of `format`: `w ≈ q * scale[c]`,
/// `|q| ≤ format.max_q()`; `quantized` holds the signed grid values.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightParams {
    pub quantized: Vec<i8>,
    pub scales: Vec<f32>,
    pub format: WeightFormat,
}

/// Quantises a weight tensor whose first axis is the output channel (ONNX Conv `[O, I/g, kh, kw]`).
pub fn weights_per_channel(w: &[f32], channels: usize, format: WeightFormat) -> WeightParams {
    let per = w.len() / channels.max(1);
    let max_q = format.max_q();
    let mut quantized = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for chunk in w.chunks(per.max(1)) {
        let max = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // -128 is left out so the grid is symmetric and negation cannot overflow.
        let scale = if max > 0.0 { max / max_q } else { 1.0 };
        quantized.extend(chunk.iter().map(|v| (v / scale).round().clamp(-max_q, max_q) as i8));
        scales.push(scale);
    }
    WeightParams { quantized, scales, format }
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
                *q = (v / need).round().clamp(-weights.format.max_q(), weights.format.max_q()) as i8;
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
        let p = weights_per_channel(&w, 2, WeightFormat::S8);
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
    fn formats_keep_the_int16_pair_sum_of_avx2_in_range_or_go_unsigned() {
        // vpmaddubsw adds two u8 x s8 products into a saturating i16: the 7-bit grid must fit.
        let w: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 10.0).collect();
        let s7 = weights_per_channel(&w, 1, WeightFormat::S7);
        let widest = s7.quantized.iter().map(|q| i32::from(*q).abs()).max().unwrap();
        assert_eq!(widest, 64);
        assert!(2 * 255 * widest <= i32::from(i16::MAX));
        // The u8 format stores q + 128: the float 0 is the zero point, the grid is 1..=255.
        let u8p = weights_per_channel(&w, 1, WeightFormat::U8);
        let stored: Vec<u8> = u8p.quantized.iter().map(|q| WeightFormat::U8.store(*q)).collect();
        assert_eq!(*stored.iter().min().unwrap(), 1);
        assert_eq!(*stored.iter().max().unwrap(), 255);
        assert_eq!(WeightFormat::U8.store(0), WeightFormat::U8.zero_point());
        assert_eq!(WeightFormat::S8.store(-1), 255);
    }

    #[test]
    fn bias_uses_the_product_of_scales() {
        let (q, s) = bias_int32(&[0.3, -0.1], 0.01, &[0.5, 0.1]);
        assert!((s[0] - 0.005).abs() < 1e-9 && (s[1] - 0.001).abs() < 1e-9, "{s:?}");
        assert_eq!(q, vec![60, -100]);
    }
}
