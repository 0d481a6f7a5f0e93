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

use image::RgbImage;

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
///
/// Only the crop is computed (`pillow::resize_bicubic_window`), pixel-identical to resizing
/// everything and cropping after: a long, thin image used to be resized whole first, so a
/// 186 KB PNG of 1,000,000 x 2 pixels made a 112-million-pixel-wide intermediate (29 s and
/// 6.7 GB for one request, issue 16). Now its cost is the crop's.
pub fn resize_shortest_center_crop_bicubic(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = (u64::from(img.width()), u64::from(img.height()));
    if w == 0 || h == 0 || size == 0 {
        return RgbImage::new(size, size);
    }
    let (nw, nh) = shortest_side_size((w, h), size);
    let (left, top) = ((nw - size) / 2, (nh - size) / 2);
    pillow::resize_bicubic_window(img, (nw, nh), (left, top, size, size))
}

/// The size transformers resizes `(w, h)` to before the centre crop (both nonzero).
fn shortest_side_size((w, h): (u64, u64), size: u32) -> (u32, u32) {
    let s = u64::from(size);
    // Integer division equals Python's int(size * long / short) for any realistic size: an
    // exact quotient is exactly representable, an inexact one is far from an integer.
    let (nw, nh) = if w <= h { (s, s * h / w) } else { (s * w / h, s) };
    // Saturate rather than wrap for an absurd size; the window never reaches that far.
    (u32::try_from(nw).unwrap_or(u32::MAX), u32::try_from(nh).unwrap_or(u32::MAX))
}

/// Peak bytes of [`resize_shortest_center_crop_bicubic`] on a `width x height` image, besides
/// the image itself (for memory estimates before decoding).
pub fn shortest_center_crop_peak_bytes(width: u32, height: u32, size: u32) -> u64 {
    if width == 0 || height == 0 || size == 0 {
        return 0;
    }
    let (nw, nh) = shortest_side_size((u64::from(width), u64::from(height)), size);
    pillow::window_peak_bytes((width, height), (nw, nh), (size, size))
}

/// Peak bytes of [`thumbnail`] on a `width x height` image, besides the image itself.
pub fn thumbnail_peak_bytes(width: u32, height: u32, max_side: u32) -> u64 {
    let (tw, th) = thumbnail_size(width, height, max_side);
    pillow::window_peak_bytes((width, height), (tw, th), (tw, th))
}

fn thumbnail_size(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side || max_side == 0 {
        return (w, h);
    }
    let shrink = |short: u32| -> u32 {
        let v = (u64::from(short) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        // v <= max_side because short <= long.
        (v as u32).max(1)
    };
    if w >= h { (max_side, shrink(h)) } else { (shrink(w), max_side) }
}

/// Shrinks `img` so that its longer side is at most `max_side`, keeping the aspect ratio
/// (the shorter side is rounded to nearest, at least 1). Smaller images are returned as is.
pub fn thumbnail(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (tw, th) = thumbnail_size(w, h, max_side);
    if (tw, th) == (w, h) {
        return img.clone();
    }
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

    /// The strip of issue 16: CLIP's shortest side of 1,000,000 x 2 is 112 million pixels
    /// wide. Only the 16 x 16 crop is made, in well under a second and a few MB.
    #[test]
    fn a_long_thin_strip_costs_only_its_crop() {
        let strip = RgbImage::from_fn(1_000_000, 2, |x, y| image::Rgb([(x % 251) as u8, y as u8 * 90, 7]));
        let started = std::time::Instant::now();
        let out = resize_shortest_center_crop_bicubic(&strip, 16);
        assert_eq!(out.dimensions(), (16, 16));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        let peak = shortest_center_crop_peak_bytes(1_000_000, 2, 224);
        assert!(peak < 1 << 20, "estimated {peak} bytes");
        let tall = RgbImage::from_fn(3, 40_000, |x, y| image::Rgb([x as u8, (y % 256) as u8, 1]));
        assert_eq!(resize_shortest_center_crop_bicubic(&tall, 16).dimensions(), (16, 16));
    }

    #[test]
    fn peak_estimates_cover_the_intermediates() {
        // 4000 x 3000 to a 640 px thumbnail: 640 x 3000 x 3 after the row pass, the output,
        // and the weights (16 bytes per source column or row, about).
        let t = thumbnail_peak_bytes(4000, 3000, 640);
        assert!(t >= 640 * 3000 * 3 + 640 * 480 * 3, "{t}");
        assert!(t < 640 * 3000 * 3 + 640 * 480 * 3 + 32 * 7000, "{t}");
        assert_eq!(thumbnail_size(80, 60, 100), (80, 60));
    }

    #[test]
    fn thumbnail_bounds_the_long_side() {
        assert_eq!(thumbnail(&RgbImage::new(600, 400), 160).dimensions(), (160, 107));
        assert_eq!(thumbnail(&RgbImage::new(300, 451), 200).dimensions(), (133, 200));
        assert_eq!(thumbnail(&RgbImage::new(1000, 1), 10).dimensions(), (10, 1));
        assert_eq!(thumbnail(&RgbImage::new(80, 60), 100).dimensions(), (80, 60));
    }
}
