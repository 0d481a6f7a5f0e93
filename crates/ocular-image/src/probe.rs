//! What decoding an image will produce, known before decoding it.
//!
//! Admission control reserves a request's memory before the request runs (see
//! `ocular_models::budget`), so it needs the decoded size from the bytes alone: the format and
//! dimensions from the header (the same parsers `decode` trusts), whether a JPEG is progressive
//! (its decoder then buffers every DCT coefficient at full resolution, whatever the output
//! scale), and the size a reduced-scale JPEG decode will have. Nothing is allocated.

use crate::decode::choose_denominator;
use crate::format::{self, Format, Sniffed};
use crate::header;

/// An image's header facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    /// As stored (before any EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// A progressive (or other multi-scan) JPEG: its decoder keeps every DCT coefficient.
    pub progressive: bool,
    /// Bytes those coefficients take (2 per coefficient, per component at its sampling); 0
    /// for sequential JPEGs and other formats.
    pub coefficient_bytes: u64,
    /// The EXIF orientation (JPEG, PNG `eXIf`, WebP `EXIF`) swaps the axes: rotating makes a
    /// second, rotated copy of the decoded image.
    pub swaps_axes: bool,
    /// An animated WebP: its first frame is composed on a canvas (RGBA, the image's size) from
    /// a frame buffer (RGBA, up to the image's size), besides the output.
    pub animated: bool,
    /// Bytes per pixel of the codec's native output (before conversion to 8-bit RGB).
    pub native_bytes_per_pixel: u64,
}

/// Reads the header; `None` for anything `decode` would refuse before allocating.
pub fn probe(bytes: &[u8]) -> Option<Probe> {
    let Sniffed::Supported(format) = format::sniff(bytes) else { return None };
    let (width, height) = header::dimensions(format, bytes).ok()?;
    let mut p = Probe {
        format,
        width,
        height,
        progressive: false,
        coefficient_bytes: 0,
        swaps_axes: false,
        animated: false,
        native_bytes_per_pixel: 3,
    };
    match format {
        Format::Jpeg => {
            if let Some(frame) = jpeg_frame(bytes) {
                p.progressive = frame.progressive;
                if frame.progressive {
                    p.coefficient_bytes = frame.coefficients(width, height) * 2;
                }
            }
            p.swaps_axes = jpeg_swaps_axes(bytes);
        }
        Format::Png => {
            p.native_bytes_per_pixel = png_bytes_per_pixel(bytes);
            p.swaps_axes = codec_swaps_axes(bytes, format);
        }
        // image-webp decodes to RGBA whenever the file has alpha (or is lossless with it).
        Format::Webp => {
            p.native_bytes_per_pixel = 4;
            p.animated = webp_animated(bytes);
            p.swaps_axes = codec_swaps_axes(bytes, format);
        }
    }
    Some(p)
}

impl Probe {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Size of the decoded image when the consumer needs at least `target` (see `decode`):
    /// reduced in the DCT domain for JPEG, full size otherwise. The EXIF orientation is not
    /// known here, so the smaller reduction of the two orientations is assumed.
    pub fn decoded_size(&self, target: Option<(u32, u32)>) -> (u32, u32) {
        let full = (self.width, self.height);
        let Some(t) = target.filter(|_| self.format == Format::Jpeg) else { return full };
        let d = choose_denominator(full, t).min(choose_denominator(full, (t.1, t.0)));
        (full.0.div_ceil(d), full.1.div_ceil(d))
    }

    /// Peak bytes the decoder holds for this image (see `decode`): its native output, the
    /// 8-bit RGB copy when the native output is something else, a rotated copy when the EXIF
    /// orientation swaps axes, an animated WebP's canvas and frame, and a progressive JPEG's
    /// coefficients. Working buffers of a few rows are left out.
    pub fn decode_peak_bytes(&self, target: Option<(u32, u32)>) -> u64 {
        let (w, h) = self.decoded_size(target);
        let pixels = u64::from(w) * u64::from(h);
        let native = self.native_bytes_per_pixel;
        let convert = if native == 3 { 0 } else { 3 };
        let rotate = if self.swaps_axes { native } else { 0 };
        // The canvas and the frame are freed when the first frame is out, before conversion.
        let animation = if self.animated { 8 } else { 0 };
        pixels * (native + convert.max(rotate).max(animation)) + self.coefficient_bytes
    }
}

/// The frame header's facts that matter for memory.
struct Frame {
    progressive: bool,
    /// (horizontal, vertical) sampling factor of each component.
    sampling: Vec<(u32, u32)>,
}

impl Frame {
    /// DCT coefficients over all components (each at its own resolution, whole 8x8 blocks).
    fn coefficients(&self, width: u32, height: u32) -> u64 {
        let hmax = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1);
        let vmax = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1);
        self.sampling
            .iter()
            .map(|&(hs, vs)| {
                let cw = (u64::from(width) * u64::from(hs)).div_ceil(u64::from(hmax)).div_ceil(8) * 8;
                let ch = (u64::from(height) * u64::from(vs)).div_ceil(u64::from(vmax)).div_ceil(8) * 8;
                cw * ch
            })
            .sum()
    }
}

/// The frame header (SOFn), walking only the segments before the first scan, so an EXIF
/// thumbnail is never mistaken for it.
fn jpeg_frame(b: &[u8]) -> Option<Frame> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xDA {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // precision, height (2), width (2), component count, then 3 bytes per component.
            let seg = b.get(i + 4..i + 2 + len)?;
            let n = usize::from(*seg.get(5)?);
            let sampling = (0..n)
                .map(|c| seg.get(6 + c * 3 + 1).map(|&f| (u32::from(f >> 4), u32::from(f & 0x0F))))
                .collect::<Option<Vec<_>>>()?;
            // SOF0/SOF1 are sequential; every other frame type buffers coefficients.
            return Some(Frame { progressive: !matches!(marker, 0xC0 | 0xC1), sampling });
        }
        i += 2 + len;
    }
    None
}

/// Whether the EXIF orientation (read as `decode` reads it) swaps width and height.
fn jpeg_swaps_axes(bytes: &[u8]) -> bool {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    if decoder.read_info().is_err() {
        return false;
    }
    let orientation = decoder.exif_data().and_then(image::metadata::Orientation::from_exif_chunk);
    orientation.is_some_and(crate::decode::swaps_axes)
}

/// Whether a PNG's or WebP's EXIF orientation swaps the axes, read as `decode` reads it (the
/// `image` crate's decoder, which parses the chunks before the pixel data and allocates
/// nothing that grows with the image).
fn codec_swaps_axes(bytes: &[u8], format: Format) -> bool {
    use image::ImageDecoder;
    let reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format.to_image_format());
    let Ok(mut decoder) = reader.into_decoder() else { return false };
    decoder.orientation().is_ok_and(crate::decode::swaps_axes)
}

/// An extended WebP (`VP8X`) whose flags say "animation".
fn webp_animated(b: &[u8]) -> bool {
    b.get(12..16) == Some(b"VP8X") && b.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// Native bytes per pixel of a PNG from its IHDR (bit depth at 24, colour type at 25):
/// palette images expand to RGBA when they may have transparency, so count 4.
fn png_bytes_per_pixel(b: &[u8]) -> u64 {
    let depth = if b.get(24) == Some(&16) { 2 } else { 1 };
    let channels = match b.get(25) {
        Some(0) => 1,
        Some(2) => 3,
        Some(4) => 2,
        Some(3) | Some(6) => 4,
        _ => 4,
    };
    channels * depth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, progressive: bool) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img).expect("encode");
        if progressive {
            // Turn the SOF0 into SOF2: only the header walk is under test here.
            let at = out.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
            out[at + 1] = 0xC2;
        }
        out
    }

    #[test]
    fn jpeg_probe_and_reduced_size() {
        let p = probe(&jpeg(2000, 1000, false)).expect("probe");
        assert_eq!((p.format, p.width, p.height, p.progressive), (Format::Jpeg, 2000, 1000, false));
        // 1000 / 4 = 250 >= 224 in both orientations; / 8 would be 125.
        assert_eq!(p.decoded_size(Some((224, 224))), (500, 250));
        assert_eq!(p.decoded_size(None), (2000, 1000));
        // Sequential RGB decoded at 1/4: 3 bytes a pixel, nothing else held.
        assert_eq!(p.decode_peak_bytes(Some((224, 224))), 500 * 250 * 3);
        let prog = probe(&jpeg(64, 64, true)).expect("probe");
        assert!(prog.progressive);
        // Whatever the chroma sampling, luma alone is 64x64 coefficients of 2 bytes.
        assert!(prog.coefficient_bytes >= 64 * 64 * 2, "{}", prog.coefficient_bytes);
        assert_eq!(prog.decode_peak_bytes(None), 64 * 64 * 3 + prog.coefficient_bytes);
    }

    #[test]
    fn non_jpeg_is_never_reduced_and_garbage_is_none() {
        let img = image::RgbImage::new(900, 900);
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
        let p = probe(&png).expect("probe");
        assert_eq!(p.decoded_size(Some((224, 224))), (900, 900));
        assert_eq!(p.decode_peak_bytes(Some((224, 224))), 900 * 900 * 3, "RGB8 PNG: no conversion copy");
        let rgba = image::RgbaImage::new(10, 10);
        let mut png = Vec::new();
        rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
        assert_eq!(probe(&png).expect("probe").decode_peak_bytes(None), 100 * (4 + 3), "RGBA is composited to RGB");
        assert_eq!(probe(b"not an image"), None);
        assert_eq!(probe(&png[..20]), None);
    }
}
