//! Reduced-scale JPEG decoding in the DCT domain.
//!
//! A JPEG stores 8x8 blocks of DCT coefficients; an inverse DCT of size 4, 2 or 1 over the
//! low-frequency coefficients yields the block at 1/2, 1/4 or 1/8 scale directly (libjpeg's
//! `scale_denom`, Pillow's `Image.draft`). A 12-megapixel phone photo that will be shrunk to
//! 224 pixels is then decoded at 1/8 scale: a fraction of the time and memory of a full decode.
//!
//! zune-jpeg, the JPEG codec of `image` 0.25, has no such option, so this path uses the
//! `jpeg-decoder` crate (`Decoder::scale`). It is only taken when the image is at least twice
//! the target in both axes; otherwise the full decoder runs. Progressive JPEGs still buffer
//! their coefficients at full resolution (a format constraint), so the saving there is smaller.

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};
use jpeg_decoder::{Decoder, PixelFormat};

use super::{Decoded, Limits, flatten_to_rgb, swaps_axes};
use crate::error::ImageError;
use crate::format::Format;

/// Output size of a decode at `1/denominator` scale: jpeg-decoder (like libjpeg) rounds up.
fn scaled_len(len: u32, denominator: u32) -> u32 {
    len.div_ceil(denominator)
}

/// Largest denominator in {8, 4, 2} whose output still covers `target` in both axes; 1 when
/// none does (the image is less than twice the target somewhere).
pub(crate) fn choose_denominator(full: (u32, u32), target: (u32, u32)) -> u32 {
    [8, 4, 2].into_iter().find(|&d| scaled_len(full.0, d) >= target.0 && scaled_len(full.1, d) >= target.1).unwrap_or(1)
}

/// Decodes at reduced scale, or returns `Ok(None)` when the full-resolution path should be
/// used instead (no useful reduction, a colour type this path does not handle, or a file
/// jpeg-decoder cannot read).
/// `full` is the stored size from the header; `target` is in display orientation.
pub(super) fn decode(
    bytes: &[u8],
    full: (u32, u32),
    target: (u32, u32),
    limits: &Limits,
) -> Result<Option<Decoded>, ImageError> {
    let mut decoder = Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.codec_alloc_budget()).unwrap_or(usize::MAX));
    // Any failure of this optional path hands the file to the full decoder, which supports
    // features jpeg-decoder lacks and reports its own error for files that are really corrupt.
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let stored = (u32::from(info.width), u32::from(info.height));
    limits.check_dimensions(stored.0, stored.1)?;
    // CMYK and 16-bit JPEGs are rare; the full decoder handles their colour conversion.
    if stored != full || !matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24) {
        return Ok(None);
    }

    let orientation = decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
    let target = if swaps_axes(orientation) { (target.1, target.0) } else { target };
    let denominator = choose_denominator(full, target);
    if denominator == 1 {
        return Ok(None);
    }
    let want = (scaled_len(full.0, denominator), scaled_len(full.1, denominator));
    // Both fit in u16: they are at most the JPEG's own u16 dimensions.
    let Ok((w, h)) = decoder.scale(want.0 as u16, want.1 as u16) else {
        return Ok(None);
    };
    let (w, h) = (u32::from(w), u32::from(h));
    // jpeg-decoder picks its scale from one axis only; never hand back less than the target.
    if w < target.0 || h < target.1 {
        return Ok(None);
    }
    let Ok(pixels) = decoder.decode() else {
        return Ok(None);
    };
    // A buffer shorter than its dimensions would be a jpeg-decoder bug; fall back as well.
    let image = match info.pixel_format {
        PixelFormat::L8 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    let Some(mut image) = image else {
        return Ok(None);
    };
    image.apply_orientation(orientation);
    let (original_width, original_height) = if swaps_axes(orientation) { (full.1, full.0) } else { full };
    Ok(Some(Decoded {
        image: flatten_to_rgb(image),
        format: Format::Jpeg,
        original_width,
        original_height,
        scale_denominator: denominator,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denominator_never_goes_below_target() {
        // 12 MP 4:3 photo to a 254x254 model input: 4000/8 = 500, 3000/8 = 375.
        assert_eq!(choose_denominator((4000, 3000), (254, 254)), 8);
        // 640x427 to 160x107: 427/4 rounds up to 107 (libjpeg and Pillow give 160x107).
        assert_eq!(choose_denominator((640, 427), (160, 107)), 4);
        assert_eq!(choose_denominator((640, 427), (160, 108)), 2);
        // Less than twice the target in one axis: no reduction.
        assert_eq!(choose_denominator((600, 400), (254, 254)), 1);
        assert_eq!(choose_denominator((4000, 300), (254, 254)), 1);
    }
}
