//! Fixture loading and comparison helpers.

use std::path::PathBuf;

use ocular_image::image::{self, RgbImage};
use serde_json::Value;

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn json(name: &str) -> Value {
    serde_json::from_slice(&bytes(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A reference PNG, read with the `image` crate directly rather than through the code under
/// test.
pub fn png(name: &str) -> RgbImage {
    image::load_from_memory_with_format(&bytes(name), image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
        .to_rgb8()
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// Compares `actual` with a sampled reference written by `sampled()` in the script: values at
/// the seeded indices, plus the plain and position-weighted sums of the whole array.
/// Returns the largest difference at the samples.
pub fn check_sampled(actual: &[f32], reference: &Value, tolerance: f64, what: &str) -> f64 {
    assert_eq!(actual.len() as u64, reference["len"].as_u64().expect("len"), "{what}: length");
    let indices = f64s(&reference["indices"]);
    let values = f64s(&reference["values"]);
    let mut worst = 0.0f64;
    for (&i, &want) in indices.iter().zip(&values) {
        let got = f64::from(actual[i as usize]);
        worst = worst.max((got - want).abs());
    }
    assert!(worst <= tolerance, "{what}: max abs diff {worst} > {tolerance}");

    let sum: f64 = actual.iter().map(|&v| f64::from(v)).sum();
    let weighted: f64 = actual.iter().enumerate().map(|(i, &v)| f64::from(v) * ((i % 251) + 1) as f64).sum();
    let n = actual.len() as f64;
    let want_sum = reference["sum"].as_f64().expect("sum");
    let want_weighted = reference["weighted_sum"].as_f64().expect("weighted_sum");
    // Mean difference within the tolerance, over every element, not just the samples.
    assert!((sum - want_sum).abs() <= tolerance * n, "{what}: sum {sum} vs {want_sum}");
    assert!(
        (weighted - want_weighted).abs() <= tolerance * n * 126.0,
        "{what}: weighted sum {weighted} vs {want_weighted}"
    );
    worst
}

/// Largest and mean absolute difference between two same-sized images.
pub fn image_diff(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
    assert_eq!(a.dimensions(), b.dimensions(), "image sizes differ");
    let mut max = 0u8;
    let mut total = 0u64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        total += u64::from(d);
    }
    (max, total as f64 / a.as_raw().len() as f64)
}

/// `image::imageops::crop_imm` of chelsea.png with the script's crop rectangle.
pub fn chelsea_crop(crop: &Value) -> RgbImage {
    let c: Vec<u32> = f64s(crop).into_iter().map(|v| v as u32).collect();
    image::imageops::crop_imm(&png("chelsea.png"), c[0], c[1], c[2], c[3]).to_image()
}
