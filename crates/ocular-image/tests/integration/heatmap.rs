//! Heatmap overlay against a reference built from TF bilinear upsampling, matplotlib's turbo
//! and Pillow's bicubic thumbnail.

use ocular_image::image::Rgb;
use ocular_image::{colorize, encode_jpeg, overlay};

use crate::common::{f64s, image_diff, json, png};

fn grid() -> (Vec<f32>, u32, u32, f32) {
    let r = json("overlay.json");
    let grid = f64s(&r["grid"]).into_iter().map(|v| v as f32).collect();
    let w = r["grid_w"].as_u64().expect("grid_w") as u32;
    let h = r["grid_h"].as_u64().expect("grid_h") as u32;
    (grid, w, h, r["alpha"].as_f64().expect("alpha") as f32)
}

#[test]
fn turbo_matches_matplotlib() {
    let r = json("overlay.json");
    for (index, rgb) in r["turbo_samples"].as_object().expect("samples") {
        let i: f32 = index.parse().expect("index");
        let want: Vec<u8> = f64s(rgb).into_iter().map(|v| v as u8).collect();
        // The centre of entry i's interval [i/256, (i+1)/256).
        let got = colorize((i + 0.5) / 256.0);
        assert_eq!(got, Rgb([want[0], want[1], want[2]]), "entry {index}");
    }
}

#[test]
fn overlay_matches_reference_at_full_size() {
    let (grid, w, h, alpha) = grid();
    let photo = png("bicubic_coffee_160x107.png");
    let out = overlay(&photo, &grid, w, h, alpha, 1000).expect("overlay");
    let (max, mean) = image_diff(&out, &png("overlay_coffee_160x107.png"));
    // Float rounding may flip a blended value at exactly .5: at most one level.
    assert!(max <= 1, "max diff {max}, mean {mean}");
}

#[test]
fn overlay_matches_reference_through_thumbnail() {
    let (grid, w, h, alpha) = grid();
    let out = overlay(&png("chelsea.png"), &grid, w, h, alpha, 200).expect("overlay");
    assert_eq!(out.dimensions(), (200, 133));
    let (max, mean) = image_diff(&out, &png("overlay_chelsea_200.png"));
    assert!(max <= 1, "max diff {max}, mean {mean}");
    let jpeg = encode_jpeg(&out, 85).expect("encode");
    assert!(jpeg.len() < 40_000, "overlay JPEG is {} bytes", jpeg.len());
}
