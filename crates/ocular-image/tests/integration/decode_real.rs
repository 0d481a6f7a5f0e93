//! Decoding real photos, compared with libjpeg-turbo and libwebp (through Pillow).

use ocular_image::image::{self, Rgb};
use ocular_image::{Format, Limits, decode};

use crate::common::{bytes, check_sampled, image_diff, json, png};

fn as_f32(img: &image::RgbImage) -> Vec<f32> {
    img.as_raw().iter().map(|&v| f32::from(v)).collect()
}

#[test]
fn png_decodes_losslessly() {
    let d = decode(&bytes("coffee.png"), &Limits::default(), None).expect("decode");
    assert_eq!(d.format, Format::Png);
    assert_eq!((d.original_width, d.original_height), (600, 400));
    assert_eq!(d.scale_denominator, 1);
    assert_eq!(image_diff(&d.image, &png("coffee.png")).0, 0);
}

/// zune-jpeg against libjpeg-turbo on a real photo: JPEG decoders may differ slightly in
/// chroma upsampling and IDCT rounding, never by much.
#[test]
fn jpeg_full_decode_is_close_to_libjpeg() {
    let d = decode(&bytes("china.jpg"), &Limits::default(), None).expect("decode");
    let r = &json("decode.json")["china_jpg"];
    assert_eq!(d.format, Format::Jpeg);
    assert_eq!(d.image.width() as u64, r["width"].as_u64().expect("width"));
    assert_eq!(d.image.height() as u64, r["height"].as_u64().expect("height"));
    let worst = check_sampled(&as_f32(&d.image), r, 3.0, "china.jpg vs libjpeg-turbo");
    eprintln!("china.jpg vs libjpeg-turbo: max sampled diff {worst}");
}

/// DCT-domain 1/4 decode against libjpeg's own scaled decode (Pillow's `draft`). The two use
/// different reduced IDCTs (libjpeg's 2x2 also weighs odd coefficients), so pixels differ a
/// little: measured mean 2.07, max 34 on this photo; a half-pixel shift would give a mean > 10.
#[test]
fn jpeg_scaled_decode_is_close_to_libjpeg_draft() {
    let d = decode(&bytes("china.jpg"), &Limits::default(), Some((160, 106))).expect("decode");
    assert_eq!(d.scale_denominator, 4);
    assert_eq!((d.original_width, d.original_height), (640, 427));
    let want = png("china_draft.png");
    assert_eq!(d.image.dimensions(), want.dimensions());
    let (max, mean) = image_diff(&d.image, &want);
    eprintln!("china.jpg 1/4 vs libjpeg draft: max {max}, mean {mean:.3}");
    assert!(mean < 3.0 && max <= 48, "max {max}, mean {mean}");
}

#[test]
fn scaling_never_goes_below_the_target() {
    let jpeg = bytes("china.jpg");
    for (target, denominator) in [((160, 107), 4), ((161, 107), 2), ((320, 214), 2), ((321, 214), 1)] {
        let d = decode(&jpeg, &Limits::default(), Some(target)).expect("decode");
        assert_eq!(d.scale_denominator, denominator, "target {target:?}");
        assert!(d.image.width() >= target.0 && d.image.height() >= target.1);
    }
}

#[test]
fn webp_lossy_is_close_to_libwebp() {
    let d = decode(&bytes("chelsea.webp"), &Limits::default(), Some((10, 10))).expect("decode");
    let r = &json("decode.json")["chelsea_webp"];
    assert_eq!(d.format, Format::Webp);
    assert_eq!(d.scale_denominator, 1, "only JPEG decodes at reduced scale");
    let worst = check_sampled(&as_f32(&d.image), r, 2.0, "chelsea.webp vs libwebp");
    eprintln!("chelsea.webp vs libwebp: max sampled diff {worst}");
}

#[test]
fn animated_webp_gives_its_first_frame() {
    let d = decode(&bytes("animated.webp"), &Limits::default(), None).expect("decode");
    assert_eq!(d.image.dimensions(), (24, 16));
    assert!(d.image.pixels().all(|p| *p == Rgb([200, 30, 30])));
}

#[test]
fn alpha_is_composited_onto_white_like_pillow() {
    let d = decode(&bytes("rgba.png"), &Limits::default(), None).expect("decode");
    let want: Vec<u8> = json("decode.json")["rgba_on_white"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_u64().expect("u8") as u8)
        .collect();
    let worst = d.image.as_raw().iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
    // Pillow's alpha_composite rounds with its own fixed-point shortcut: off by one at most.
    assert!(worst <= Some(1), "max diff {worst:?}");
}
