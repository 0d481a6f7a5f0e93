//! Decoding untrusted image bytes into an upright RGB image, within limits.
//!
//! Order of checks, cheapest first, so hostile input costs almost nothing:
//! 1. byte count against [`Limits::max_bytes`];
//! 2. format from the magic bytes (JPEG, PNG, WebP accepted; GIF, HEIC, ... named and refused);
//! 3. dimensions from the header, against [`Limits::max_pixels`], before the decoder allocates;
//! 4. the codec's own reading of the dimensions, checked again (no parser differential);
//! 5. decode, apply the EXIF orientation, flatten to RGB.
//!
//! Choices a caller should know:
//! - Transparency is composited onto white: product photos with a transparent background are
//!   meant to be seen on white, and dropping alpha would expose whatever colour the encoder
//!   left in transparent pixels (often black).
//! - Animated WebP: the first frame is decoded, on purpose; models take one still image.
//! - JPEG files must be complete (end with an EOI marker); truncated ones are refused rather
//!   than grey-filled (see `header`).
//! - With `target: Some((w, h))`, a large JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT
//!   domain (see `jpeg_scaled`), never below `w`x`h` in display orientation. This saves most of
//!   the decode time and memory, but changes the pixels: a consumer that must reproduce its
//!   training preprocessing exactly (the skin model) passes `None`.

mod jpeg_scaled;

pub(crate) use jpeg_scaled::choose_denominator;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, RgbaImage};

use crate::error::{DecodeError, ImageError};
use crate::format::{self, Format, Sniffed};
use crate::header;

/// The most one side may be longer than the other (in either orientation). Panoramas stop
/// around 10:1 and banners at 20:1; a 1,000,000 x 2 strip is only ever an attack on the
/// resizers, whose buffers and weights grow with the long side (issue 16).
pub const MAX_ASPECT_RATIO: u32 = 40;

/// Caps applied to every decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted encoded size.
    pub max_bytes: usize,
    /// Largest accepted `width * height`, as declared by the header.
    pub max_pixels: u64,
}

impl Default for Limits {
    /// 20 MiB and 40 megapixels: above any phone camera (a 48 MP sensor saves 12 MP by
    /// default). The RGB output of a 40 MP image is 120 MB, so a service with little memory
    /// should also bound how many decodes run at once.
    fn default() -> Self {
        Limits { max_bytes: 20 * 1024 * 1024, max_pixels: 40_000_000 }
    }
}

impl Limits {
    /// Whether an image of these dimensions may be decoded: its pixels within the cap and its
    /// aspect ratio within [`MAX_ASPECT_RATIO`]. Checked from the header, before any decoder
    /// allocates (and by memory estimates, which must agree with the decoder).
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), ImageError> {
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(ImageError::TooManyPixels { width, height, max: self.max_pixels });
        }
        let (long, short) = (width.max(height), width.min(height));
        if u64::from(long) > u64::from(short) * u64::from(MAX_ASPECT_RATIO) {
            return Err(ImageError::AspectRatio { width, height, max: MAX_ASPECT_RATIO });
        }
        Ok(())
    }

    /// Allocation budget handed to the codecs as a second line of defence: the worst case
    /// output (16-bit RGBA, 8 bytes a pixel) plus room for their working buffers.
    fn codec_alloc_budget(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

/// A decoded image, upright and in 8-bit RGB.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    pub format: Format,
    /// Size of the full-resolution image in display orientation (after EXIF rotation); equal to
    /// the size of `image` unless the JPEG was decoded at reduced scale.
    pub original_width: u32,
    pub original_height: u32,
    /// 1 for a full decode; 2, 4 or 8 when a JPEG was decoded at that fraction of its size.
    pub scale_denominator: u32,
}

/// Decodes `bytes` within `limits`. `target` is the smallest size (width, height, display
/// orientation) the consumer needs; it allows reduced-scale JPEG decoding. Pass `None` for
/// pixel-exact full-resolution decoding.
pub fn decode(bytes: &[u8], limits: &Limits, target: Option<(u32, u32)>) -> Result<Decoded, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge { bytes: bytes.len(), max: limits.max_bytes });
    }
    if bytes.is_empty() {
        return Err(DecodeError::Empty.into());
    }
    let format = match format::sniff(bytes) {
        Sniffed::Supported(f) => f,
        Sniffed::Unsupported(name) => return Err(ImageError::UnsupportedFormat(name.to_owned())),
        Sniffed::Unknown => return Err(DecodeError::NotAnImage.into()),
    };
    let (width, height) = header::dimensions(format, bytes).map_err(|reason| DecodeError::Header { format, reason })?;
    limits.check_dimensions(width, height)?;

    if let (Format::Jpeg, Some(target)) = (format, target)
        && let Some(decoded) = jpeg_scaled::decode(bytes, (width, height), target, limits)?
    {
        return Ok(decoded);
    }
    decode_full(bytes, format, limits, (width, height))
}

/// Full-resolution decode through the `image` crate's codecs.
fn decode_full(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    (width, height): (u32, u32),
) -> Result<Decoded, ImageError> {
    let codec_err = |e: image::ImageError| match e {
        // The codec's allocation budget ran out: the image needs more memory than its header
        // dimensions allow for, so it is treated as too large.
        image::ImageError::Limits(_) => ImageError::TooManyPixels { width, height, max: limits.max_pixels },
        other => DecodeError::codec(format, other).into(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
    let mut codec_limits = image::Limits::default();
    codec_limits.max_alloc = Some(limits.codec_alloc_budget());
    reader.limits(codec_limits);
    let mut decoder = reader.into_decoder().map_err(codec_err)?;

    let (codec_w, codec_h) = decoder.dimensions();
    limits.check_dimensions(codec_w, codec_h)?;
    // Orientation is advisory metadata: a broken EXIF block must not make an otherwise
    // readable photo unreadable.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(codec_err)?;
    image.apply_orientation(orientation);
    Ok(Decoded {
        original_width: image.width(),
        original_height: image.height(),
        image: flatten_to_rgb(image),
        format,
        scale_denominator: 1,
    })
}

/// Whether an EXIF orientation swaps width and height.
pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Converts any decoded colour type to 8-bit RGB, compositing alpha onto white.
pub(crate) fn flatten_to_rgb(image: DynamicImage) -> RgbImage {
    if image.color().has_alpha() { composite_on_white(&image.into_rgba8()) } else { image.into_rgb8() }
}

/// `out = c·a + 255·(1 − a)` with 8-bit `a`, rounded to nearest.
fn composite_on_white(rgba: &RgbaImage) -> RgbImage {
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            let v = (u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255;
            // v <= 255 because it is a convex combination of values <= 255.
            dst[c] = v as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_extremes_and_midpoint() {
        let rgba =
            RgbaImage::from_raw(3, 1, vec![10, 20, 30, 0, 10, 20, 30, 255, 0, 100, 254, 128]).expect("3x1 buffer");
        let rgb = composite_on_white(&rgba);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
        // 255*127/255 = 127; 100*128/255 + 127 = 177.2; 254*128/255 + 127 = 254.498
        assert_eq!(rgb.get_pixel(2, 0).0, [127, 177, 254]);
    }

    #[test]
    fn swapping_orientations() {
        assert!(swaps_axes(Orientation::Rotate90));
        assert!(swaps_axes(Orientation::Rotate270FlipH));
        assert!(!swaps_axes(Orientation::Rotate180));
        assert!(!swaps_axes(Orientation::FlipHorizontal));
    }
}
