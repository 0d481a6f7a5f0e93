//! From a decoded image to a model's input tensor, following its manifest's
//! [`ImagePreprocess`] recipe: resize per [`ResizeMode`], then
//! `value = (pixel * scale - mean[c]) / std[c]`, then NHWC or NCHW layout.
//!
//! The result is one image without the batch axis (`3*h*w` values); callers stack images to
//! batch. The arithmetic is float32 in the formula's order: with sklesion's identity recipe
//! (scale 1, mean 0, std 1) the resized pixels pass through unchanged.

use image::RgbImage;
use ocular_core::{ImagePreprocess, Layout, ResizeMode};

use crate::resize::{resize_bilinear_tf, resize_shortest_center_crop_bicubic};

/// Normalises and lays out an HWC float image of `pre.width x pre.height` pixels.
///
/// # Panics
/// If `hwc.len() != pre.width * pre.height * 3`: a caller bug, not an input error.
pub fn to_tensor(hwc: &[f32], pre: &ImagePreprocess) -> Vec<f32> {
    let pixels = pre.width as usize * pre.height as usize;
    assert_eq!(hwc.len(), pixels * 3, "HWC buffer does not match the {}x{} preprocessing size", pre.width, pre.height);
    let norm = |v: f32, c: usize| (v * pre.scale - pre.mean[c]) / pre.std[c];
    match pre.layout {
        Layout::Nhwc => hwc.chunks_exact(3).flat_map(|p| [norm(p[0], 0), norm(p[1], 1), norm(p[2], 2)]).collect(),
        Layout::Nchw => {
            let mut out = vec![0.0f32; hwc.len()];
            let (r, rest) = out.split_at_mut(pixels);
            let (g, b) = rest.split_at_mut(pixels);
            for (i, p) in hwc.chunks_exact(3).enumerate() {
                r[i] = norm(p[0], 0);
                g[i] = norm(p[1], 1);
                b[i] = norm(p[2], 2);
            }
            out
        }
    }
}

/// Resizes `img` per `pre.resize` and returns the input tensor (see [`to_tensor`]).
///
/// For [`ResizeMode::ShortestBicubicCenterCrop`] with a non-square size, the shortest side
/// goes to the larger of the two and the centre `width x height` is kept.
pub fn preprocess(img: &RgbImage, pre: &ImagePreprocess) -> Vec<f32> {
    let hwc = match pre.resize {
        ResizeMode::BilinearTf => resize_bilinear_tf(img, pre.width, pre.height),
        ResizeMode::ShortestBicubicCenterCrop => {
            let side = pre.width.max(pre.height);
            let square = resize_shortest_center_crop_bicubic(img, side);
            let cropped = image::imageops::crop_imm(
                &square,
                (side - pre.width) / 2,
                (side - pre.height) / 2,
                pre.width,
                pre.height,
            )
            .to_image();
            cropped.as_raw().iter().map(|&v| f32::from(v)).collect()
        }
    };
    to_tensor(&hwc, pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(layout: Layout) -> ImagePreprocess {
        ImagePreprocess {
            width: 2,
            height: 1,
            resize: ResizeMode::BilinearTf,
            layout,
            scale: 1.0,
            mean: [127.0, 127.0, 127.0],
            std: [128.0, 128.0, 128.0],
        }
    }

    #[test]
    fn efficientnet_recipe_by_hand() {
        // (v - 127) / 128 for pixels (255, 127, 0) and (63, 191, 127).
        let hwc = [255.0, 127.0, 0.0, 63.0, 191.0, 127.0];
        assert_eq!(to_tensor(&hwc, &recipe(Layout::Nhwc)), vec![1.0, 0.0, -0.9921875, -0.5, 0.5, 0.0]);
        assert_eq!(to_tensor(&hwc, &recipe(Layout::Nchw)), vec![1.0, -0.5, 0.0, 0.5, -0.9921875, 0.0]);
    }

    #[test]
    #[should_panic(expected = "does not match")]
    fn wrong_buffer_length_is_a_bug() {
        to_tensor(&[0.0; 3], &recipe(Layout::Nhwc));
    }
}
