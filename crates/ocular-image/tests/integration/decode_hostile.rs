//! Hostile and broken inputs: each must get the right error code, quickly and cheaply.

use ocular_image::{ImageError, Limits, decode};

use crate::alloc::largest_allocation;
use crate::common::bytes;

fn code(input: &[u8]) -> &'static str {
    code_with(input, &Limits::default())
}

fn code_with(input: &[u8], limits: &Limits) -> &'static str {
    match decode(input, limits, None) {
        Ok(d) => panic!("decoded {}x{} from hostile input", d.image.width(), d.image.height()),
        Err(e) => e.code(),
    }
}

/// PNG signature + IHDR (+ IEND), with correct CRCs, declaring `w x h` RGB pixels and no data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn huge_png_header_is_refused_without_allocating() {
    let png = png_header_only(50_000, 50_000);
    assert!(png.len() < 64);
    let (result, largest) = largest_allocation(|| decode(&png, &Limits::default(), None));
    match result {
        Err(ImageError::TooManyPixels { width, height, max }) => {
            assert_eq!((width, height, max), (50_000, 50_000, 40_000_000));
        }
        other => panic!("expected TooManyPixels, got {other:?}"),
    }
    // 7.5 GB would have been needed; nothing near even a kilobyte was allocated.
    assert!(largest < 1024, "largest allocation {largest} bytes");
}

#[test]
fn huge_webp_and_jpeg_headers_are_refused() {
    let mut webp = b"RIFF\x1e\0\0\0WEBPVP8X\x0A\0\0\0\x10\0\0\0".to_vec();
    webp.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); // 16777216 x 16777216
    assert_eq!(code(&webp), "image_too_many_pixels");

    // SOI, SOF0 65000x65000, EOI: structurally complete, absurdly large.
    let jpeg = [0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xFD, 0xE8, 0xFD, 0xE8, 1, 1, 0x11, 0, 0xFF, 0xD9];
    assert_eq!(code(&jpeg), "image_too_many_pixels");
}

#[test]
fn real_photo_over_the_pixel_cap() {
    let limits = Limits { max_pixels: 600 * 400 - 1, ..Limits::default() };
    assert_eq!(code_with(&bytes("coffee.png"), &limits), "image_too_many_pixels");
    assert_eq!(code_with(&bytes("china.jpg"), &limits), "image_too_many_pixels");
}

#[test]
fn byte_cap_is_checked_first() {
    let limits = Limits { max_bytes: 1000, ..Limits::default() };
    let err = decode(&bytes("china.jpg"), &limits, None).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { bytes: 196_653, max: 1000 }));
    // Even garbage is refused for its size before anything else looks at it.
    assert_eq!(code_with(&[0u8; 1001], &limits), "image_too_large");
}

#[test]
fn empty_and_random_bytes_are_unreadable() {
    assert_eq!(code(&[]), "image_unreadable");
    // Deterministic pseudo-random bytes (64-bit LCG, Knuth's MMIX constants).
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    assert_eq!(code(&noise), "image_unreadable");
}

#[test]
fn unsupported_formats_are_named() {
    let gif =
        b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    match decode(gif, &Limits::default(), None) {
        Err(ImageError::UnsupportedFormat(name)) => assert_eq!(name, "gif"),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    assert_eq!(code(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), "unsupported_format");
}

#[test]
fn truncated_files_are_unreadable() {
    let jpeg = bytes("china.jpg");
    for cut in [3, 20, 200, 2_000, jpeg.len() / 2, jpeg.len() - 2] {
        assert_eq!(code(&jpeg[..cut]), "image_unreadable", "JPEG cut at {cut}");
        // The reduced-scale path must refuse it too.
        let scaled = decode(&jpeg[..cut], &Limits::default(), Some((80, 53)));
        assert!(scaled.is_err(), "scaled JPEG cut at {cut}");
    }
    let png = bytes("coffee.png");
    for cut in [10, 30, 100, png.len() / 2, png.len() - 13] {
        assert_eq!(code(&png[..cut]), "image_unreadable", "PNG cut at {cut}");
    }
    let webp = bytes("chelsea.webp");
    for cut in [13, 25, webp.len() / 2] {
        assert_eq!(code(&webp[..cut]), "image_unreadable", "WebP cut at {cut}");
    }
}

#[test]
fn jpeg_magic_followed_by_garbage_is_unreadable() {
    let mut polyglot = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    polyglot.extend_from_slice(b"JFIF\0<script>alert(1)</script>PK\x03\x04");
    assert_eq!(code(&polyglot), "image_unreadable");

    // A real JPEG header with its entropy-coded data overwritten by an HTML page.
    let mut jpeg = bytes("china.jpg");
    let body = jpeg.len() / 3;
    for (i, b) in jpeg[body..].iter_mut().enumerate() {
        *b = b"<html><body>not a picture</body></html>"[i % 39];
    }
    assert_eq!(code(&jpeg), "image_unreadable");
}
