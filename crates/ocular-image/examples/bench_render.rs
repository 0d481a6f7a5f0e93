//! The render stage of an analysis, part by part: overlay and JPEG encoding of a 640×480 photo,
//! with `image`'s own encoder beside the one `encode_jpeg` uses (medians, never assertions).
//!
//! `cargo run --release -p ocular-image --example bench_render` (from the workspace root).

use std::time::Instant;

fn median_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..3 {
        std::hint::black_box(f());
    }
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let png = std::fs::read("models/photos/chelsea.png")?;
    let img = ocular_image::decode(&png, &Default::default(), None)?.image;
    let img = image::imageops::resize(&img, 640, 480, image::imageops::FilterType::Triangle);
    let grid: Vec<f32> = (0..64).map(|i| i as f32 / 63.0).collect();
    let runs = 40;
    let overlay = median_ms(runs, || ocular_image::overlay(&img, &grid, 8, 8, 0.45, 640));
    let old = median_ms(runs, || {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).map(|()| out)
    });
    let new = median_ms(runs, || ocular_image::encode_jpeg(&img, 85));
    println!(
        "640x480, quality 85, medians of {runs}: overlay {overlay:.2} ms; JPEG: image crate {old:.2} ms, \
         encode_jpeg {new:.2} ms ({} bytes)",
        ocular_image::encode_jpeg(&img, 85)?.len()
    );
    Ok(())
}
