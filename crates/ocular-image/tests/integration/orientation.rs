//! EXIF orientation: a phone held upright stores a landscape JPEG plus "rotate 90° clockwise"
//! (orientation 6). The decoded image must come out the way the person saw it.

use ocular_image::image::{Rgb, RgbImage};
use ocular_image::{Limits, decode, encode_jpeg};

const RED: Rgb<u8> = Rgb([220, 20, 20]);
const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

/// 64x32 stored pixels: left half red, right half blue.
fn stored() -> RgbImage {
    RgbImage::from_fn(64, 32, |x, _| if x < 32 { RED } else { BLUE })
}

/// A minimal little-endian EXIF APP1 segment with one IFD0 entry: Orientation (0x0112).
fn app1_orientation(value: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 right after the header
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // tag: Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // type: SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&value.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding to 4 bytes
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

/// The encoder's JPEG with the EXIF segment inserted right after SOI.
fn jpeg_with_orientation(value: u16) -> Vec<u8> {
    let plain = encode_jpeg(&stored(), 95).expect("encode");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&app1_orientation(value));
    out.extend_from_slice(&plain[2..]);
    out
}

fn close(p: &Rgb<u8>, want: Rgb<u8>) -> bool {
    p.0.iter().zip(want.0).all(|(a, b)| a.abs_diff(b) <= 12)
}

/// Orientation 6 = rotate 90° clockwise: the stored left (red) half becomes the top.
fn assert_upright(img: &RgbImage) {
    let (w, h) = img.dimensions();
    assert!(h == 2 * w, "expected portrait, got {w}x{h}");
    assert!(close(img.get_pixel(w / 2, h / 8), RED), "top is {:?}", img.get_pixel(w / 2, h / 8));
    assert!(close(img.get_pixel(w / 2, h - 1 - h / 8), BLUE), "bottom is not blue");
}

#[test]
fn orientation_6_rotates_full_decode() {
    let d = decode(&jpeg_with_orientation(6), &Limits::default(), None).expect("decode");
    assert_eq!(d.image.dimensions(), (32, 64));
    assert_eq!((d.original_width, d.original_height), (32, 64));
    assert_upright(&d.image);
}

#[test]
fn orientation_6_rotates_scaled_decode() {
    // Display-oriented target 4x8 allows 1/8 scale of the 64x32 stored image.
    let d = decode(&jpeg_with_orientation(6), &Limits::default(), Some((4, 8))).expect("decode");
    assert_eq!(d.scale_denominator, 8);
    assert_eq!(d.image.dimensions(), (4, 8));
    assert_eq!((d.original_width, d.original_height), (32, 64));
    assert_upright(&d.image);
}

#[test]
fn without_the_tag_nothing_rotates() {
    let d = decode(&jpeg_with_orientation(1), &Limits::default(), None).expect("decode");
    assert_eq!(d.image.dimensions(), (64, 32));
    assert!(close(d.image.get_pixel(8, 16), RED) && close(d.image.get_pixel(56, 16), BLUE));
}
