//! Metadata removed from photos before they are stored (issue 16, finding #9).
//!
//! A phone photo carries EXIF with the GPS position where it was taken, the camera's serial
//! number and the time; XMP and IPTC blocks and text chunks can carry names and addresses. A
//! product photo is served to anyone, so none of that may be stored. Stripping works on the
//! container, not the pixels: the compressed image data is copied byte for byte (no quality
//! loss, no decoder in the path), and everything that is not needed to show the image the same
//! way goes. What stays: JPEG's JFIF (APP0), ICC profile (APP2 `ICC_PROFILE`) and Adobe (APP14,
//! it decides the colour transform) segments; PNG's non-text chunks; WebP's image, alpha,
//! animation and ICC chunks. EXIF orientation is the one EXIF field that changes how the image
//! looks, so a non-default orientation is written back as a 26-byte EXIF block with that tag
//! alone.
//!
//! Bytes after the end of the image (JPEG data after EOI, PNG data after IEND, anything past
//! the RIFF size) are dropped too: phones append secondary images (MPF) there, with their own
//! EXIF.

use image::metadata::Orientation;

use crate::error::{DecodeError, ImageError};
use crate::format::{Format, Sniffed, sniff};

/// `bytes` without location, camera or text metadata (see the module docs). Fails on a
/// container it cannot walk: storing the original would keep what it must not.
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    match sniff(bytes) {
        Sniffed::Supported(Format::Jpeg) => jpeg(bytes),
        Sniffed::Supported(Format::Png) => png(bytes),
        Sniffed::Supported(Format::Webp) => webp(bytes),
        Sniffed::Unsupported(name) => Err(ImageError::UnsupportedFormat(name.to_string())),
        Sniffed::Unknown => Err(ImageError::Unreadable(DecodeError::NotAnImage)),
    }
}

fn malformed(format: Format, reason: &'static str) -> ImageError {
    ImageError::Unreadable(DecodeError::Header { format, reason })
}

/// A TIFF block (as in EXIF) holding only the orientation tag (0x0112), big-endian.
fn orientation_tiff(o: Orientation) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    t.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, o.to_exif(), 0, 0]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t
}

/// The orientation of an EXIF TIFF block when it is not the default.
fn turned(tiff: &[u8]) -> Option<Orientation> {
    Orientation::from_exif_chunk(tiff).filter(|o| *o != Orientation::NoTransforms)
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

/// JPEG: a walk over the markers. Before each scan, segments are kept or dropped; scan data is
/// copied up to the next marker that is not a restart or a stuffed 0xFF.
fn jpeg(b: &[u8]) -> Result<Vec<u8>, ImageError> {
    let bad = |reason| malformed(Format::Jpeg, reason);
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut orientation = None;
    let mut i = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(0xFF), Some(&marker)) = (b.get(i), b.get(i + 1)) else { return Err(bad("marker expected")) };
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                break;
            }
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            _ => {}
        }
        let len = be16(b, i + 2).ok_or_else(|| bad("truncated segment"))?;
        let end = i + 2 + len;
        if len < 2 || end > b.len() {
            return Err(bad("segment runs past the end"));
        }
        let body = &b[i + 4..end];
        let keep = match marker {
            0xE1 if body.starts_with(b"Exif\0\0") => {
                orientation = orientation.or_else(|| turned(&body[6..]));
                false
            }
            0xE0 | 0xEE => true,
            0xE2 => body.starts_with(b"ICC_PROFILE\0"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if marker == 0xDA {
            // Entropy-coded data: ends at a marker other than RSTn or a stuffed zero.
            let start = i;
            while i + 1 < b.len() && !ends_scan(b[i], b[i + 1]) {
                i += 1;
            }
            if i + 1 >= b.len() {
                return Err(bad("scan data has no end"));
            }
            out.extend_from_slice(&b[start..i]);
        }
    }
    if let Some(o) = orientation {
        let tiff = orientation_tiff(o);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).unwrap_or(u16::MAX).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        out.splice(2..2, app1);
    }
    Ok(out)
}

/// Whether bytes `a b` inside scan data are a marker that ends the scan: 0xFF followed by
/// anything but a stuffed zero, a restart marker or another fill byte.
fn ends_scan(a: u8, b: u8) -> bool {
    a == 0xFF && !matches!(b, 0x00 | 0xD0..=0xD7 | 0xFF)
}

/// CRC-32 (ISO-HDLC, as PNG uses) of `parts` in sequence.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// PNG: chunks copied except the EXIF and text ones, up to IEND.
fn png(b: &[u8]) -> Result<Vec<u8>, ImageError> {
    let bad = |reason| malformed(Format::Png, reason);
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..8]);
    let mut orientation = None;
    let mut i = 8;
    let mut after_ihdr = None;
    loop {
        let head = b.get(i..i + 8).ok_or_else(|| bad("truncated chunk"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let end = i.checked_add(12 + len).filter(|e| *e <= b.len()).ok_or_else(|| bad("chunk runs past the end"))?;
        match kind {
            b"eXIf" => orientation = orientation.or_else(|| turned(&b[i + 8..i + 8 + len])),
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => {}
            _ => out.extend_from_slice(&b[i..end]),
        }
        if kind == b"IHDR" {
            after_ihdr = Some(out.len());
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    if let Some(o) = orientation {
        let at = after_ihdr.ok_or_else(|| bad("no IHDR chunk"))?;
        let tiff = orientation_tiff(o);
        let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(b"eXIf");
        chunk.extend_from_slice(&tiff);
        chunk.extend_from_slice(&crc32(&[b"eXIf", &tiff]).to_be_bytes());
        out.splice(at..at, chunk);
    }
    Ok(out)
}

/// WebP: RIFF chunks copied except EXIF and XMP, with VP8X's flags and the RIFF size fixed.
fn webp(b: &[u8]) -> Result<Vec<u8>, ImageError> {
    let bad = |reason| malformed(Format::Webp, reason);
    let riff = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let total = riff.checked_add(8).filter(|t| *t <= b.len()).ok_or_else(|| bad("RIFF size past the end"))?;
    let mut out = b[..12].to_vec();
    let mut orientation = None;
    let mut vp8x = None;
    let mut i = 12;
    let riff = &b[..total];
    while i < total {
        let head = riff.get(i..i + 8).ok_or_else(|| bad("truncated chunk"))?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // A chunk must end inside the RIFF size; its pad byte (odd lengths) may be the one
        // missing at the very end, and is written back as the format wants.
        let data_end = i.checked_add(8 + len).filter(|e| *e <= total).ok_or_else(|| bad("chunk runs past the end"))?;
        let data = &riff[i + 8..data_end];
        match &head[..4] {
            b"EXIF" => {
                // Some writers keep JPEG's "Exif\0\0" prefix in the chunk.
                let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
                orientation = orientation.or_else(|| turned(tiff));
            }
            b"XMP " => {}
            kind => {
                if kind == b"VP8X" {
                    vp8x = Some(out.len());
                }
                out.extend_from_slice(&riff[i..data_end]);
                if len % 2 == 1 {
                    out.push(0);
                }
            }
        }
        i = data_end + len % 2;
    }
    if let Some(at) = vp8x {
        // Flags: 0x08 EXIF, 0x04 XMP.
        let flags = out.get_mut(at + 8).ok_or_else(|| bad("VP8X chunk too short"))?;
        *flags &= !0x0C;
        if let Some(o) = orientation {
            *flags |= 0x08;
            let tiff = orientation_tiff(o);
            out.extend_from_slice(b"EXIF");
            out.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
            out.extend_from_slice(&tiff);
        }
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| bad("too large"))?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}
