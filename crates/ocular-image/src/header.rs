//! Image dimensions read from the header, before any decoder runs.
//!
//! The pixel cap must be enforced before a decoder allocates its output: a 60-byte PNG can
//! declare 50000x50000 pixels (7.5 GB of RGB). These parsers read only the fixed header
//! fields, allocate nothing and reject what does not parse. The decoder's own view of the
//! dimensions is checked again afterwards (see `decode`), so a disagreement between this parser
//! and a codec cannot sneak a large image through.
//!
//! For JPEG the whole marker structure is walked, up to the end-of-image marker: zune-jpeg (the
//! decoder in `image`) silently grey-fills a truncated file, and a half-received photo must not
//! be classified as if it were whole.
//!
//! References: PNG (ISO 15948) IHDR; JPEG (ITU T.81) B.1.1 markers, B.2.2 frame header;
//! WebP container (RFC 9649) sections 2.5 (VP8 key frame), 2.6 (VP8L), 2.7 (VP8X).

use crate::format::Format;

/// Why a header is malformed (a fixed phrase, for the error message).
pub(crate) type Malformed = &'static str;

/// Width and height of the image as stored (before any EXIF orientation).
pub(crate) fn dimensions(format: Format, bytes: &[u8]) -> Result<(u32, u32), Malformed> {
    let (w, h) = match format {
        Format::Png => png(bytes)?,
        Format::Jpeg => jpeg(bytes)?,
        Format::Webp => webp(bytes)?,
    };
    if w == 0 || h == 0 {
        return Err("zero width or height");
    }
    Ok((w, h))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// PNG: the IHDR chunk must come first, right after the 8-byte signature.
fn png(b: &[u8]) -> Result<(u32, u32), Malformed> {
    if b.get(12..16) != Some(b"IHDR") {
        return Err("first chunk is not IHDR");
    }
    let w = be32(b, 16).ok_or("truncated IHDR")?;
    let h = be32(b, 20).ok_or("truncated IHDR")?;
    // The PNG spec caps both at 2^31 - 1; larger values are corrupt, not just big.
    if w > i32::MAX as u32 || h > i32::MAX as u32 {
        return Err("dimension over 2^31 - 1");
    }
    Ok((w, h))
}

/// Most scans a JPEG may have. Real progressive files use about 10; a crafted one with
/// thousands of tiny scans makes every decoder redo its coefficient pass per scan (a known
/// CPU exhaustion trick, which libjpeg-turbo's `djpeg -maxscans` exists to stop).
const MAX_SCANS: usize = 256;

fn is_sof(marker: u8) -> bool {
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) which share the range.
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// JPEG: walks every marker segment and every scan up to EOI.
fn jpeg(b: &[u8]) -> Result<(u32, u32), Malformed> {
    let mut frame = None;
    let mut scans = 0;
    let mut i = 2; // past SOI
    loop {
        if b.get(i) != Some(&0xFF) {
            return Err(if i >= b.len() { "truncated (no end-of-image marker)" } else { "expected a marker" });
        }
        // Any number of 0xFF fill bytes may precede a marker code.
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *b.get(i).ok_or("truncated (no end-of-image marker)")?;
        i += 1;
        match marker {
            0xD9 => return frame.ok_or("no frame header"),
            0xD8 => return Err("second start-of-image marker"),
            0x00 => return Err("stray 0xFF00 outside scan data"),
            // Restart markers and TEM carry no length.
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = be16(b, i).ok_or("truncated segment")? as usize;
        if len < 2 || i + len > b.len() {
            return Err("truncated segment");
        }
        let segment = &b[i + 2..i + len];
        i += len;
        if is_sof(marker) {
            if frame.is_some() {
                return Err("more than one frame header");
            }
            // precision (1), height (2), width (2), components (1)
            let h = be16(segment, 1).ok_or("short frame header")?;
            let w = be16(segment, 3).ok_or("short frame header")?;
            frame = Some((w, h));
        } else if marker == 0xDA {
            if frame.is_none() {
                return Err("scan before frame header");
            }
            scans += 1;
            if scans > MAX_SCANS {
                return Err("too many scans");
            }
            i = skip_entropy_coded(b, i).ok_or("truncated scan data (no end-of-image marker)")?;
        }
    }
}

/// Index of the marker that ends the entropy-coded data starting at `i`. Inside it, 0xFF is
/// either stuffed (`FF 00`) or a restart marker (`FF D0..D7`); anything else is a real marker.
fn skip_entropy_coded(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += b.get(i..)?.iter().position(|&x| x == 0xFF)?;
        match *b.get(i + 1)? {
            0x00 | 0xD0..=0xD7 => i += 2,
            // Fill byte: the marker starts at the last 0xFF of the run.
            0xFF => i += 1,
            _ => return Some(i),
        }
    }
}

/// WebP: the first chunk after `RIFF....WEBP` decides the layout.
fn webp(b: &[u8]) -> Result<(u32, u32), Malformed> {
    const DATA: usize = 20; // RIFF header (12) + chunk fourcc (4) + chunk size (4)
    match b.get(12..16) {
        Some(b"VP8 ") => {
            // 3-byte frame tag (bit 0 clear on key frames), start code, 14-bit dimensions.
            let tag = *b.get(DATA).ok_or("truncated VP8 header")?;
            if tag & 1 != 0 {
                return Err("first VP8 frame is not a key frame");
            }
            if b.get(DATA + 3..DATA + 6) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err("bad VP8 start code");
            }
            // The top two bits of each are an upscaling hint, not part of the size.
            let w = le16(b, DATA + 6).ok_or("truncated VP8 header")?;
            let h = le16(b, DATA + 8).ok_or("truncated VP8 header")?;
            Ok((w & 0x3FFF, h & 0x3FFF))
        }
        Some(b"VP8L") => {
            if b.get(DATA) != Some(&0x2F) {
                return Err("bad VP8L signature");
            }
            let bits = b.get(DATA + 1..DATA + 5).ok_or("truncated VP8L header")?;
            let bits = u32::from_le_bytes([bits[0], bits[1], bits[2], bits[3]]);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        Some(b"VP8X") => {
            // flags (1) + reserved (3), then canvas width - 1 and height - 1 as 24-bit LE.
            let w = le24(b, DATA + 4).ok_or("truncated VP8X header")? + 1;
            let h = le24(b, DATA + 7).ok_or("truncated VP8X header")? + 1;
            Ok((w, h))
        }
        _ => Err("unknown first chunk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0DIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn png_dimensions_from_ihdr() {
        assert_eq!(dimensions(Format::Png, &png_header(50_000, 40_000)), Ok((50_000, 40_000)));
        assert!(dimensions(Format::Png, &png_header(0, 10)).is_err());
        assert!(dimensions(Format::Png, &png_header(1 << 31, 10)).is_err());
        assert!(dimensions(Format::Png, &png_header(5, 5)[..20]).is_err());
    }

    #[test]
    fn jpeg_walk_finds_frame_and_requires_eoi() {
        // SOI, SOF0 (8-bit, 3x2, 1 component), SOS with stuffed and restart bytes, EOI.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 2, 0, 3, 1, 1, 0x11, 0];
        b.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        b.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF]);
        b.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(dimensions(Format::Jpeg, &b), Ok((3, 2)));
        // Every proper prefix is truncated somewhere and must be refused.
        for cut in 3..b.len() - 1 {
            assert!(dimensions(Format::Jpeg, &b[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn jpeg_scan_count_is_capped() {
        let sof = [0xFF, 0xC2, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0];
        let sos = [0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 0x00];
        let build = |n: usize| {
            let mut b = vec![0xFF, 0xD8];
            b.extend_from_slice(&sof);
            for _ in 0..n {
                b.extend_from_slice(&sos);
            }
            b.extend_from_slice(&[0xFF, 0xD9]);
            b
        };
        assert_eq!(dimensions(Format::Jpeg, &build(MAX_SCANS)), Ok((8, 8)));
        assert_eq!(dimensions(Format::Jpeg, &build(MAX_SCANS + 1)), Err("too many scans"));
    }

    #[test]
    fn webp_chunk_layouts() {
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0A\0\0\0\x10\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0x1F, 0x4E, 0x00, 0x0F, 0x27, 0x00]); // 20000 x 10000
        assert_eq!(dimensions(Format::Webp, &vp8x), Ok((20_000, 10_000)));

        let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2F".to_vec();
        let bits: u32 = 99 | (49 << 14); // 100 x 50
        vp8l.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(dimensions(Format::Webp, &vp8l), Ok((100, 50)));

        let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0".to_vec();
        vp8.extend_from_slice(&[0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00]);
        assert_eq!(dimensions(Format::Webp, &vp8), Ok((320, 240)));
        assert!(dimensions(Format::Webp, &vp8[..27]).is_err());
    }
}
