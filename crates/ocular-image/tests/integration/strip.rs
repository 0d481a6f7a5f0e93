//! Stored photos lose their location (issue 16, finding #9): a real photo (china.jpg, which
//! also carries an XMP block) given the EXIF a phone writes — camera make, GPS position,
//! orientation 6 — comes out with the pixels and the orientation and nothing else.

use ocular_image::image::{self, ImageDecoder};
use ocular_image::{Limits, decode, strip_metadata};

use crate::common::bytes;

/// Latitude 48° 51' 29.6" N, longitude 2° 17' 40.2" E as EXIF rationals: bytes that must not
/// survive.
const LAT: [u32; 6] = [48, 1, 51, 1, 296, 10];
const LON: [u32; 6] = [2, 1, 17, 1, 402, 10];

/// A big-endian EXIF TIFF block: IFD0 {Make, Orientation, GPSInfo}, GPS IFD {N, lat, E, lon}.
fn phone_exif(orientation: u16) -> Vec<u8> {
    fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    }
    let ifd0 = 8u32;
    let make = ifd0 + 2 + 3 * 12 + 4; // after IFD0
    let gps = make + 10; // "OcularCam\0"
    let lat = gps + 2 + 4 * 12 + 4;
    let lon = lat + 24;
    let mut t = b"MM\0\x2a".to_vec();
    t.extend_from_slice(&ifd0.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x010F, 2, 10, make.to_be_bytes()); // Make, ASCII
    let o = orientation.to_be_bytes();
    entry(&mut t, 0x0112, 3, 1, [o[0], o[1], 0, 0]); // Orientation, SHORT
    entry(&mut t, 0x8825, 4, 1, gps.to_be_bytes()); // GPSInfo, LONG offset
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(b"OcularCam\0");
    t.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef
    entry(&mut t, 0x0002, 5, 3, lat.to_be_bytes()); // GPSLatitude, RATIONAL x3
    entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0"); // GPSLongitudeRef
    entry(&mut t, 0x0004, 5, 3, lon.to_be_bytes()); // GPSLongitude
    t.extend_from_slice(&0u32.to_be_bytes());
    for v in LAT.iter().chain(&LON) {
        t.extend_from_slice(&v.to_be_bytes());
    }
    t
}

fn rationals(values: &[u32; 6]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// china.jpg with the phone's EXIF as APP1 right after its JFIF segment.
fn phone_jpeg(orientation: u16) -> Vec<u8> {
    let photo = bytes("china.jpg");
    let jfif_end = 4 + usize::from(u16::from_be_bytes([photo[4], photo[5]]));
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&phone_exif(orientation));
    let mut out = photo[..jfif_end].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&photo[jfif_end..]);
    out.extend_from_slice(b"trailing MPF image with its own EXIF: OcularCam");
    out
}

/// The APPn/COM markers of a JPEG's header, in order.
fn app_markers(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 2;
    while jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if matches!(jpeg[i + 1], 0xE0..=0xEF | 0xFE) {
            out.push((jpeg[i + 1], jpeg[i + 4..i + 2 + len].to_vec()));
        }
        i += 2 + len;
    }
    out
}

fn orientation_of(jpeg: &[u8]) -> image::metadata::Orientation {
    let mut d = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(jpeg)).expect("jpeg");
    d.orientation().expect("orientation")
}

#[test]
fn a_phone_jpeg_keeps_its_pixels_and_orientation_and_loses_location_and_camera() {
    let input = phone_jpeg(6);
    assert!(contains(&input, &rationals(&LAT)) && contains(&input, b"OcularCam"), "the fixture carries GPS");
    assert_eq!(orientation_of(&input), image::metadata::Orientation::Rotate90, "its EXIF is well-formed");

    let out = strip_metadata(&input).expect("strip");
    for needle in [&rationals(&LAT)[..], &rationals(&LON)[..], b"OcularCam", b"ns.adobe.com", b"trailing"] {
        assert!(!contains(&out, needle), "{:?} survived", String::from_utf8_lossy(needle));
    }
    let kept: Vec<u8> = app_markers(&out).iter().map(|(m, _)| *m).collect();
    assert_eq!(kept, [0xE1, 0xE0, 0xE2], "a fresh orientation-only EXIF, JFIF and the ICC profile");
    let exif = &app_markers(&out)[0].1;
    assert_eq!(exif.len(), 6 + 26, "EXIF holds the orientation alone");
    assert_eq!(orientation_of(&out), image::metadata::Orientation::Rotate90);
    assert!(out.ends_with(&[0xFF, 0xD9]));

    let limits = Limits { max_bytes: 20 << 20, max_pixels: 40_000_000 };
    let (before, after) = (decode(&input, &limits, None).unwrap(), decode(&out, &limits, None).unwrap());
    assert_eq!((after.image.width(), after.image.height()), (427, 640), "still shown upright (rotated)");
    assert!(before.image == after.image, "the compressed image data is copied, not re-encoded");
    assert!(strip_metadata(&out).unwrap() == out, "stripping is idempotent");
}

#[test]
fn an_upright_photo_gets_no_exif_at_all() {
    let out = strip_metadata(&phone_jpeg(1)).unwrap();
    assert!(app_markers(&out).iter().all(|(m, _)| *m != 0xE1), "no APP1 left");
    assert_eq!(orientation_of(&out), image::metadata::Orientation::NoTransforms);
}

/// A PNG chunk with its CRC computed by the png crate's own reader check (a wrong CRC fails
/// the decode below).
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = 0xFFFF_FFFFu32;
    for b in kind.iter().chain(data) {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    c.extend_from_slice(&(!crc).to_be_bytes());
    c
}

#[test]
fn png_text_and_exif_chunks_go_and_the_orientation_stays() {
    let photo = bytes("coffee.png");
    let ihdr_end = 8 + 12 + 13;
    let mut input = photo[..ihdr_end].to_vec();
    input.extend(png_chunk(b"eXIf", &phone_exif(8)));
    input.extend(png_chunk(b"tEXt", b"Author\0Jane Doe, 12 Rue Example"));
    input.extend_from_slice(&photo[ihdr_end..]);
    let out = strip_metadata(&input).unwrap();
    assert!(!contains(&out, &rationals(&LAT)) && !contains(&out, b"Jane Doe") && !contains(&out, b"OcularCam"));
    let mut d = image::codecs::png::PngDecoder::new(std::io::Cursor::new(&out)).expect("valid PNG (CRCs)");
    assert_eq!(d.orientation().unwrap(), image::metadata::Orientation::Rotate270);
    let pixels = |b: &[u8]| image::load_from_memory(b).unwrap().to_rgb8();
    assert!(pixels(&out) == pixels(&photo));
    // coffee.png's own tIME (a timestamp) goes too; its pHYs (pixel size) stays.
    assert!(contains(&photo, b"tIME") && !contains(&out, b"tIME") && contains(&out, b"pHYs"));
    assert!(strip_metadata(&out).unwrap() == out, "stripping is idempotent");
}

#[test]
fn webp_exif_and_xmp_chunks_go_with_their_flags() {
    let photo = bytes("animated.webp");
    assert_eq!(&photo[12..16], b"VP8X", "the fixture is an extended WebP");
    let mut input = photo.clone();
    input[20] |= 0x0C; // EXIF and XMP present
    for (kind, data) in [(b"EXIF", phone_exif(1)), (b"XMP ", b"<x:xmpmeta>Jane Doe</x:xmpmeta>".to_vec())] {
        input.extend_from_slice(kind);
        input.extend_from_slice(&(data.len() as u32).to_le_bytes());
        input.extend_from_slice(&data);
        if data.len() % 2 == 1 {
            input.push(0);
        }
    }
    let riff = (input.len() - 8) as u32;
    input[4..8].copy_from_slice(&riff.to_le_bytes());
    let out = strip_metadata(&input).unwrap();
    assert!(out == photo, "back to the original file exactly");
}

#[test]
fn a_truncated_container_is_refused_rather_than_stored_as_is() {
    let input = phone_jpeg(6);
    let cut = &input[..input.len() / 3];
    assert!(strip_metadata(cut).is_err());
    assert!(strip_metadata(&bytes("coffee.png")[..100]).is_err());
}
