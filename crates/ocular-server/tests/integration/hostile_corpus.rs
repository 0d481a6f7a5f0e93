//! The hostile upload corpus, generated rather than committed: each generator says what the
//! file is and why it is hostile. Real photos come from `ocular models fetch photos` and the
//! image crate's test data.

use std::io::Write;

use ocular_test_support::hostile::{crc32, jpeg_header, png_header, webp_canvas};

use crate::common::{photo, workspace_root};

/// One hostile file as a client would upload it.
pub struct Upload {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub filename: &'static str,
    pub content_type: &'static str,
}

/// What the server must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A client error with this status and stable code.
    Error(u16, &'static str),
    /// Not an attack on the decoder at all: handled like any photo (2xx, or the skin model's
    /// own `422 not_a_skin_photo` verdict).
    Accepted,
}

fn upload(name: &'static str, bytes: Vec<u8>, expect: Expect) -> (Upload, Expect) {
    (Upload { name, bytes, filename: "photo.jpg", content_type: "image/jpeg" }, expect)
}

/// Every hostile file and the answer every image endpoint must give.
pub fn uploads() -> Vec<(Upload, Expect)> {
    use Expect::{Accepted, Error};
    let too_many = Error(413, "image_too_many_pixels");
    let unreadable = Error(400, "image_unreadable");
    let jpeg = photo("china.jpg");
    let png = photo("coffee.png");
    let webp = std::fs::read(workspace_root().join("crates/ocular-image/tests/data/chelsea.webp")).expect("webp");
    let mut cases = vec![
        upload("PNG declaring 50000x50000 in 57 bytes", png_header(50_000, 50_000, &[]), too_many),
        upload("JPEG SOF declaring 65535x65535", jpeg_header(65_535, 65_535), too_many),
        upload("WebP VP8X canvas of 16777216x16777216", webp_canvas(), too_many),
        // 8000x8000 RGB (192 MB decoded) whose real IDAT stream is a few hundred KB of deflate.
        upload("deflate bomb over the pixel cap", png_header(8_000, 8_000, &deflate_zeros(8_000 * 24_001)), too_many),
        // Within the cap (64x64), but the IDAT inflates to 64 MB: the decoder must stop reading
        // at the 12 KB the header declares instead of inflating everything.
        upload("deflate bomb in a small canvas", png_header(64, 64, &deflate_zeros(64 << 20)), Accepted),
        // 2 megapixels, far under the pixel cap, but 500,000:1: CLIP's shortest-side resize of
        // it was 112 million pixels wide (29 s, 6.7 GB, issue 16). Refused from the header.
        upload(
            "PNG strip of 1000000x2 pixels",
            png_header(1_000_000, 2, &deflate_zeros(2 * 3_000_001)),
            Error(422, "image_aspect_ratio"),
        ),
        upload("JPEG strip of 2x60000 pixels", jpeg_header(2, 60_000), Error(422, "image_aspect_ratio")),
        upload("truncated JPEG", jpeg[..jpeg.len() / 2].to_vec(), unreadable),
        upload("truncated PNG", png[..png.len() / 2].to_vec(), unreadable),
        upload("truncated WebP", webp[..webp.len() / 2].to_vec(), unreadable),
        upload("zero-byte file", Vec::new(), Error(400, "missing_image")),
        upload("GIF/HTML polyglot", gif_html(), Error(415, "unsupported_format")),
        upload("SVG with a script", SVG.to_vec(), unreadable),
        upload("HTML page named .jpg", b"<!doctype html><script>alert(1)</script>".to_vec(), unreadable),
        // A complete JPEG followed by a ZIP archive: the JPEG is what is decoded; the archive
        // is inert trailing data (phones append data after EOI too, so refusing it is wrong).
        upload("JPEG+ZIP polyglot", [jpeg.clone(), zip_archive()].concat(), Accepted),
    ];
    // Sniffed from content: a PNG sent as `photo.jpg` with `image/jpeg` is a PNG.
    cases.push(upload("PNG named .jpg, sent as image/jpeg", png, Accepted));
    cases
}

/// A zlib stream of `n` zero bytes (PNG scanlines of filter 0 and black pixels): ~1000:1.
fn deflate_zeros(n: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len());
        z.write_all(&block[..k]).expect("in memory");
        left -= k;
    }
    z.finish().expect("in memory")
}

/// A valid 1x1 GIF whose comment extension carries an HTML page: a browser sniffing it as
/// HTML would run the script. GIF is refused by name.
fn gif_html() -> Vec<u8> {
    let mut gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff".to_vec();
    let html = b"<html><script>alert(document.cookie)</script></html>";
    gif.extend_from_slice(&[0x21, 0xFE, html.len() as u8]);
    gif.extend_from_slice(html);
    gif.extend_from_slice(b"\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;");
    gif
}

const SVG: &[u8] = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>"#;

/// A stored (uncompressed) one-file ZIP archive: local header, data, central directory, end.
fn zip_archive() -> Vec<u8> {
    let data = b"#!/bin/sh\necho owned\n";
    let crc = crc32(data).to_le_bytes();
    let len = (data.len() as u32).to_le_bytes();
    let name = b"x.sh";
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x0a\0\0\0\0\0\0\0\0\0");
    z.extend_from_slice(&crc);
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(&[name.len() as u8, 0, 0, 0]);
    z.extend_from_slice(name);
    z.extend_from_slice(data);
    let central = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\0\x0a\0\0\0\0\0\0\0\0\0");
    z.extend_from_slice(&crc);
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(&[name.len() as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(name);
    let central_len = z.len() as u32 - central;
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

#[test]
fn generators_build_what_they_claim() {
    assert!(png_header(50_000, 50_000, &[]).len() < 64);
    let bomb = deflate_zeros(64 << 20);
    assert!(bomb.len() < 100_000, "a 64 MB bomb in {} bytes", bomb.len());
    let mut inflated = Vec::new();
    let mut reader = flate2::read::ZlibDecoder::new(&bomb[..]);
    std::io::Read::read_to_end(&mut reader, &mut inflated).expect("valid zlib");
    assert_eq!(inflated.len(), 64 << 20);
    assert!(zip_archive().starts_with(b"PK\x03\x04") && zip_archive().ends_with(&[0, 0]));
}
