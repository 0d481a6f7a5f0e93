//! Properties of decoding untrusted bytes: it never panics, on noise or on real images with
//! bytes flipped and cut; and what it allocates is bounded by the pixels the header declares,
//! so a header over the cap costs nothing however large it claims to be.

use ocular_image::{ImageError, Limits, decode};
use proptest::prelude::*;

use crate::alloc::largest_allocation;
use crate::common::bytes;

/// PNG signature, IHDR (`w x h`, 8-bit RGB, real CRC) and IEND: a header with no pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    out.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
    out
}

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

/// SOI, SOF0 `w x h` (one component), EOI.
fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
    let [h1, h0] = h.to_be_bytes();
    let [w1, w0] = w.to_be_bytes();
    vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, h1, h0, w1, w0, 1, 1, 0x11, 0, 0xFF, 0xD9]
}

/// A real file of each accepted format, with up to 8 bytes overwritten and maybe truncated.
fn mutated_image() -> impl Strategy<Value = Vec<u8>> {
    let files = ["china.jpg", "china_draft.png", "chelsea.webp", "animated.webp", "rgba.png"];
    (
        0..files.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(move |(f, flips, cut)| {
            let mut data = bytes(files[f]);
            for (at, byte) in flips {
                let i = at.index(data.len());
                data[i] = byte;
            }
            if let Some(cut) = cut {
                data.truncate(cut.index(data.len()));
            }
            data
        })
}

/// Decoding at full size and at the DCT-scaled size used for search.
fn both_ways(data: &[u8], limits: &Limits) {
    for target in [None, Some((80, 53))] {
        if let Ok(d) = decode(data, limits, target) {
            assert!(u64::from(d.original_width) * u64::from(d.original_height) <= limits.max_pixels);
            assert_eq!(d.image.as_raw().len(), d.image.width() as usize * d.image.height() as usize * 3);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn noise_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        both_ways(&data, &Limits::default());
    }

    #[test]
    fn noise_behind_a_real_magic_never_panics(
        magic in prop::sample::select(vec![&b"\xFF\xD8\xFF"[..], b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBPVP8 ", b"RIFF\0\0\0\0WEBPVP8X"]),
        rest in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        both_ways(&[magic, &rest].concat(), &Limits::default());
    }

    #[test]
    fn damaged_real_images_never_panic(data in mutated_image()) {
        both_ways(&data, &Limits { max_bytes: 1 << 20, max_pixels: 1 << 20 });
    }

    /// Over the cap: refused from the header, allocating nothing that grows with the claim.
    /// Under it: nothing larger than the declared image's worst-case buffer (16-bit RGBA).
    #[test]
    fn allocation_is_bounded_by_the_declared_pixels(w in 1u32..70_000, h in 1u32..70_000, jpeg in any::<bool>()) {
        let (w, h) = if jpeg { (w.min(65_535), h.min(65_535)) } else { (w, h) };
        let data = if jpeg { jpeg_header(w as u16, h as u16) } else { png_header(w, h) };
        let limits = Limits { max_bytes: 1 << 20, max_pixels: 4_000_000 };
        let (result, largest) = largest_allocation(|| decode(&data, &limits, None));
        let declared = u64::from(w) * u64::from(h);
        if declared > limits.max_pixels {
            prop_assert!(matches!(result, Err(ImageError::TooManyPixels { .. })), "{w}x{h}: {result:?}");
            prop_assert!(largest < 4096, "{w}x{h} refused after allocating {largest} bytes");
        } else {
            prop_assert!(result.is_err(), "a header without pixel data decoded");
            prop_assert!(largest as u64 <= declared * 8 + (1 << 20), "{w}x{h}: allocated {largest} bytes");
        }
    }
}
