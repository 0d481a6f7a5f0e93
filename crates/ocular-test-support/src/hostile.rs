//! Hostile image headers, built byte by byte: small files that *declare* huge images, for the
//! decoder's tests (ocular-image), the server's hostile upload corpus (ocular-server) and the
//! load generator's attack payloads (ocular-bench). One generator, so all three attack with the
//! same, valid-looking bytes (real CRCs: a decoder must not get to refuse them for a checksum).

/// CRC-32 (ISO-HDLC), as PNG chunks and ZIP entries use.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A stored (uncompressed) zlib stream of nothing: a valid IDAT that holds no pixels.
pub const EMPTY_ZLIB: &[u8] = &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01];

/// PNG signature, IHDR declaring `w x h` 8-bit RGB, one IDAT holding `idat` (none when
/// empty), IEND; real CRCs. What a decoder would allocate is decided by the header alone.
pub fn png_header(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    if !idat.is_empty() {
        chunk(&mut out, b"IDAT", idat);
    }
    chunk(&mut out, b"IEND", &[]);
    out
}

/// SOI, SOF0 `w x h` with one component, EOI: structurally complete, absurdly large.
pub fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
    let [h1, h0] = h.to_be_bytes();
    let [w1, w0] = w.to_be_bytes();
    vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, h1, h0, w1, w0, 1, 1, 0x11, 0, 0xFF, 0xD9]
}

/// RIFF/WEBP with a VP8X chunk whose 24-bit canvas fields are all ones (16777216 x 16777216).
pub fn webp_canvas() -> Vec<u8> {
    let mut webp = b"RIFF\x1e\0\0\0WEBPVP8X\x0A\0\0\0\x10\0\0\0".to_vec();
    webp.extend_from_slice(&[0xFF; 6]);
    webp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn headers_declare_what_they_claim() {
        let png = png_header(1_000_000, 2, EMPTY_ZLIB);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1_000_000);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 2);
        assert_eq!(crc32(&png[12..29]).to_be_bytes(), png[29..33], "IHDR's CRC covers type + data");
        assert_eq!(&png[37..41], b"IDAT");
        assert!(png.ends_with(b"IEND\xAE\x42\x60\x82"), "the standard IEND chunk");
        let bare = png_header(50_000, 50_000, &[]);
        assert!(bare.len() < 64 && !bare.windows(4).any(|w| w == b"IDAT"));

        let jpeg = jpeg_header(65_000, 64_000);
        assert_eq!((u16::from_be_bytes([jpeg[7], jpeg[8]]), u16::from_be_bytes([jpeg[9], jpeg[10]])), (64_000, 65_000));
        assert!(webp_canvas().starts_with(b"RIFF") && webp_canvas().ends_with(&[0xFF; 6]));
    }
}
