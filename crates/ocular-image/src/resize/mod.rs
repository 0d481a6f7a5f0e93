//! Resizing exactly as each model was trained, plus display thumbnails.
//!
//! A model sees the world through its preprocessing: a different resampling filter shifts its
//! inputs and, near a decision boundary, its answer. So each recipe reproduces its reference
//! implementation rather than "a good resize":
//! - [`resize_bilinear_tf`]: TensorFlow's bilinear without antialias (Keras models, sklesion);
//! - [`resize_shortest_center_crop_bicubic`]: Pillow bicubic + centre crop (CLIP via
//!   transformers' image processor).
//!
//! [`thumbnail`] uses the same Pillow bicubic, which antialiases when shrinking.

mod bilinear;
mod pillow;

use image::{RgbImage, imageops};

pub(crate) use bilinear::resize_hwc as bilinear_hwc;

/// `tf.image.resize(img, (height, width), method="bilinear", antialias=False)` as HWC float32
/// RGB in 0..=255. A same-size input is converted without resampling (bit-exact).
pub fn resize_bilinear_tf(img: &RgbImage, width: u32, height: u32) -> Vec<f32> {
    bilinear::resize_hwc(
        img.as_raw(),
        (img.width() as usize, img.height() as usize, 3),
        (width as usize, height as usize),
    )
}

/// Pillow's `Image.resize((width, height), Image.BICUBIC)`, pixel-identical.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    pillow::resize_bicubic(img, width, height)
}

/// CLIP's preprocessing geometry, as transformers' `CLIPImageProcessor`: scale the shortest
/// side to `size` with Pillow bicubic (the long side becomes `floor(size * long / short)`),
/// then crop the centre `size x size` (offsets rounded down).
pub fn resize_shortest_center_crop_bicubic(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = (u64::from(img.width()), u64::from(img.height()));
    if w == 0 || h == 0 || size == 0 {
        return RgbImage::new(size, size);
    }
    let s = u64::from(size);
    // Integer division equals Python's int(size * long / short) for any realistic size: an
    // exact quotient is exactly representable, an inexact one is far from an integer.
    let (nw, nh) = if w <= h { (s, s * h / w) } else { (s * w / h, s) };
    // Both are at most size * max(w, h), far below u32::MAX for images within the limits;
    // saturate rather than wrap if someone passes an absurd size.
    let (nw, nh) = (u32::try_from(nw).unwrap_or(u32::MAX), u32::try_from(nh).unwrap_or(u32::MAX));
    let resized = pillow::resize_bicubic(img, nw, nh);
    let (left, top) = ((nw - size) / 2, (nh - size) / 2);
    imageops::crop_imm(&resized, left, top, size, size).to_image()
}

/// Shrinks `img` so that its longer side is at most `max_side`, keeping the aspect ratio
/// (the shorter side is rounded to nearest, at least 1). Smaller images are returned as is.
pub fn thumbnail(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let long = w.max(h);
    if long <= max_side || max_side == 0 {
        return img.clone();
    }
    let shrink = |short: u32| -> u32 {
        let v = (u64::from(short) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        // v <= max_side because short <= long.
        (v as u32).max(1)
    };
    let (tw, th) = if w >= h { (max_side, shrink(h)) } else { (shrink(w), max_side) };
    pillow::resize_bicubic(img, tw, th)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_bilinear_is_exact() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 90, 7]));
        let out = resize_bilinear_tf(&img, 5, 3);
        let expected: Vec<f32> = img.as_raw().iter().map(|&v| f32::from(v)).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn crop_geometry_follows_transformers() {
        // 451x300 -> shortest 224: long = floor(224 * 451 / 300) = 336, crop left (336-224)/2.
        let img = RgbImage::from_fn(451, 300, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
        assert_eq!(resize_shortest_center_crop_bicubic(&img, 224).dimensions(), (224, 224));
        let tall = RgbImage::new(30, 97);
        assert_eq!(resize_shortest_center_crop_bicubic(&tall, 16).dimensions(), (16, 16));
    }

    #[test]
    fn thumbnail_bounds_the_long_side() {
        assert_eq!(thumbnail(&RgbImage::new(600, 400), 160).dimensions(), (160, 107));
        assert_eq!(thumbnail(&RgbImage::new(300, 451), 200).dimensions(), (133, 200));
        assert_eq!(thumbnail(&RgbImage::new(1000, 1), 10).dimensions(), (10, 1));
        assert_eq!(thumbnail(&RgbImage::new(80, 60), 100).dimensions(), (80, 60));
    }
}
