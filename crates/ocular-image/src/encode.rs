//! Encoding images this service produced (heatmap overlays, thumbnails) for responses.
//!
//! JPEG because overlays are photographic and the 512 MB hosts this runs on also pay for
//! bandwidth: a 320-pixel overlay is a few tens of kilobytes at quality 85.

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::error::ImageError;

/// Baseline JPEG with 4:2:0 chroma subsampling at `quality` (clamped to 1..=100).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)).encode_image(img).map_err(ImageError::Encode)?;
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
