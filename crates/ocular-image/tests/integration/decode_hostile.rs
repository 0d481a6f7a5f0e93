//! Hostile and broken inputs: each must get the right error code, quickly and cheaply.

use ocular_image::{ImageError, Limits, decode};
use ocular_test_support::hostile::{jpeg_header, png_header, webp_canvas};

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

#[test]
fn huge_png_header_is_refused_without_allocating() {
    let png = png_header(50_000, 50_000, &[]);
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
    assert_eq!(code(&webp_canvas()), "image_too_many_pixels");
    assert_eq!(code(&jpeg_header(65_000, 65_000)), "image_too_many_pixels");
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
