//! TensorFlow's bilinear resize: `tf.image.resize(images, (h, w), method="bilinear",
//! antialias=False)`, which Keras models such as sklesion were trained with.
//!
//! TF 2's `resize_images_v2` calls the `ResizeBilinear` kernel with `half_pixel_centers=True`:
//! output pixel `i` samples source coordinate `(i + 0.5) * in/out - 0.5`, the two neighbours are
//! clamped to the image, and there is no antialiasing (a strong downscale skips pixels, exactly
//! as in training). Arithmetic is float32 in the kernel's order, so results match TF to within
//! rounding. Reference: tensorflow/core/kernels/image/resize_bilinear_op.cc
//! (`compute_interpolation_weights`, `HalfPixelScaler`, `compute_lerp`).

/// Sampling plan of one axis for one output index.
#[derive(Debug, Clone, Copy)]
struct Tap {
    lower: usize,
    upper: usize,
    lerp: f32,
}

fn axis(in_size: usize, out_size: usize) -> Vec<Tap> {
    // TF computes the scale and the source coordinate in float32; so must we.
    let scale = in_size as f32 / out_size as f32;
    let last = in_size as i64 - 1;
    (0..out_size)
        .map(|i| {
            let src = (i as f32 + 0.5) * scale - 0.5;
            let floor = src.floor();
            Tap {
                lower: (floor as i64).max(0) as usize,
                upper: (src.ceil() as i64).min(last) as usize,
                lerp: src - floor,
            }
        })
        .collect()
}

/// Resizes an interleaved `height x width x channels` buffer to `out_h x out_w x channels`.
/// An empty source yields zeros; same-size input is converted without resampling.
pub(crate) fn resize_hwc<T: Copy + Into<f32>>(
    src: &[T],
    (width, height, channels): (usize, usize, usize),
    (out_w, out_h): (usize, usize),
) -> Vec<f32> {
    debug_assert_eq!(src.len(), width * height * channels);
    if width == out_w && height == out_h {
        return src.iter().map(|&v| v.into()).collect();
    }
    let mut out = vec![0.0f32; out_w * out_h * channels];
    if width == 0 || height == 0 {
        return out;
    }
    let xs = axis(width, out_w);
    let ys = axis(height, out_h);
    let row_len = width * channels;
    for (oy, y) in ys.iter().enumerate() {
        let top = &src[y.lower * row_len..(y.lower + 1) * row_len];
        let bottom = &src[y.upper * row_len..(y.upper + 1) * row_len];
        let dst = &mut out[oy * out_w * channels..(oy + 1) * out_w * channels];
        for (ox, x) in xs.iter().enumerate() {
            for c in 0..channels {
                let tl: f32 = top[x.lower * channels + c].into();
                let tr: f32 = top[x.upper * channels + c].into();
                let bl: f32 = bottom[x.lower * channels + c].into();
                let br: f32 = bottom[x.upper * channels + c].into();
                let t = tl + (tr - tl) * x.lerp;
                let b = bl + (br - bl) * x.lerp;
                dst[ox * channels + c] = t + (b - t) * y.lerp;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_pixel_taps_match_tf_formula() {
        // 4 -> 2: centres at 0.5 and 2.5.
        let t = axis(4, 2);
        assert_eq!((t[0].lower, t[0].upper, t[0].lerp), (0, 1, 0.5));
        assert_eq!((t[1].lower, t[1].upper, t[1].lerp), (2, 3, 0.5));
        // 2 -> 4: -0.25 clamps to 0 (lerp against itself), 1.25 clamps its upper tap.
        let t = axis(2, 4);
        assert_eq!((t[0].lower, t[0].upper), (0, 0));
        assert_eq!((t[3].lower, t[3].upper), (1, 1));
    }

    #[test]
    fn upscaling_a_ramp_by_hand() {
        // [0, 10] to 4 samples: coordinates -0.25, 0.25, 0.75, 1.25.
        let out = resize_hwc(&[0u8, 10], (2, 1, 1), (4, 1));
        assert_eq!(out, vec![0.0, 2.5, 7.5, 10.0]);
    }
}
