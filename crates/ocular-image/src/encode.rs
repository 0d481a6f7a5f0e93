//! Encoding images this service produced (heatmap overlays, thumbnails) for responses.
//!
//! JPEG because overlays are photographic and the 512 MB hosts this runs on also pay for
//! bandwidth: a 320-pixel overlay is a few tens of kilobytes at quality 85.
//!
//! The `jpeg-encoder` crate rather than `image`'s own encoder: on a 640×480 photo at quality 85
//! it took 2.9 ms against 13.9 ms on this 2-core machine (3-5x in repeated runs; it has an AVX2
//! path), and an analysis with Grad-CAM encodes two such images (docs/BENCHMARKS.md, "Rendering").

use image::RgbImage;
use image::error::{EncodingError, ImageFormatHint};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::error::ImageError;

/// Baseline JPEG with 4:2:0 chroma subsampling at `quality` (clamped to 1..=100).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
        let hint = ImageFormatHint::Exact(image::ImageFormat::Jpeg);
        ImageError::Encode(image::ImageError::Encoding(EncodingError::new(hint, e)))
    };
    // JPEG stores each side in 16 bits.
    let side = |v: u32| u16::try_from(v).map_err(|_| fail(format!("a side of {v} pixels is over 65535").into()));
    let (w, h) = (side(img.width())?, side(img.height())?);
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.encode(img.as_raw(), w, h, ColorType::Rgb).map_err(|e| fail(e.into()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_a_complete_jpeg() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100]));
        let bytes = encode_jpeg(&img, 90).expect("encode");
        assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert!(bytes.ends_with(&[0xFF, 0xD9]));
        // Quality matters: a lower setting gives a smaller file.
        assert!(encode_jpeg(&img, 20).expect("encode").len() < bytes.len());
    }

    #[test]
    fn zero_sized_image_is_an_encode_error() {
        let err = encode_jpeg(&RgbImage::new(0, 0), 80).unwrap_err();
        assert_eq!(err.code(), "image_encode_failed");
        assert!(!err.is_client_error());
    }
}
