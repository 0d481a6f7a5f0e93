//! Calibration and evaluation inputs: real photos and deterministic synthetic lesions,
//! preprocessed exactly as the runtime preprocesses them (`ocular_image::preprocess` with the
//! manifest's recipe), so calibration sees the value ranges inference will see.
//!
//! No dermatology images ship in any package. The lesions are close-ups drawn like the
//! labelled set of the skin input check (`ocular-models/tests/integration/input_check.rs`):
//! textured skin of the six Fitzpatrick types, an irregular pigmented, vascular or dark
//! lesion with a soft border, and a vignette. `seed_base` keeps calibration and evaluation
//! sets disjoint.

use std::path::Path;

use ocular_core::Manifest;
use ocular_image::image::{Rgb, RgbImage};

use super::{Feed, QuantizeError, Sample};

/// Representative sRGB skin colours, Fitzpatrick I–VI.
pub const SKIN: [[u8; 3]; 6] =
    [[244, 208, 177], [231, 180, 143], [210, 158, 124], [187, 120, 85], [141, 85, 54], [84, 50, 36]];

/// Lesion colours relative to the skin: pigmented (brown), vascular (red), dark nevus.
pub const LESIONS: [[f32; 3]; 3] = [[0.45, 0.35, 0.25], [0.85, 0.35, 0.35], [0.25, 0.2, 0.2]];

/// A deterministic xorshift, so the texture is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f32 / 10_000.0
    }
}

/// One synthetic lesion close-up.
pub fn synthetic_lesion(skin: [u8; 3], lesion: [f32; 3], w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed.max(1));
    let (cx, cy) = (w as f32 * (0.4 + 0.2 * rng.next()), h as f32 * (0.4 + 0.2 * rng.next()));
    let (rx, ry) = (w as f32 * (0.12 + 0.1 * rng.next()), h as f32 * (0.1 + 0.1 * rng.next()));
    let wobble = [rng.next() * 0.3, rng.next() * 0.3, rng.next() * std::f32::consts::TAU];
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
        let angle = dy.atan2(dx);
        let edge = 1.0 + wobble[0] * (3.0 * angle + wobble[2]).sin() + wobble[1] * (5.0 * angle).cos();
        let d = (dx * dx + dy * dy).sqrt() / edge;
        let inside = (1.2 - d).clamp(0.0, 0.4) / 0.4;
        let (vx, vy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
        let vignette = 1.0 - 0.35 * (vx * vx + vy * vy);
        let noise = 0.94 + 0.12 * rng.next();
        let px = |c: usize| {
            let base = skin[c] as f32;
            let v = base * (1.0 - inside) + base * lesion[c] * inside;
            (v * vignette * noise).clamp(0.0, 255.0) as u8
        };
        Rgb([px(0), px(1), px(2)])
    })
}

/// `per_pair` lesions for every skin type × lesion colour (18 × `per_pair` images).
pub fn lesions(per_pair: usize, seed_base: u64) -> Vec<RgbImage> {
    let mut out = Vec::new();
    let mut seed = seed_base;
    for skin in SKIN {
        for lesion in LESIONS {
            for k in 0..per_pair {
                seed += 1;
                let (w, h) = if k % 2 == 0 { (254, 254) } else { (320, 240) };
                out.push(synthetic_lesion(skin, lesion, w, h, seed * 7919 + 104_729));
            }
        }
    }
    out
}

/// Every PNG/JPEG in `dir`, decoded, by file name (sorted).
pub fn photos(dir: &Path) -> Result<Vec<(String, RgbImage)>, QuantizeError> {
    let img_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: Box<dyn std::error::Error + Send + Sync>| QuantizeError::Image { path, source: e }
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| img_err(dir)(Box::new(e)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "png" | "jpg" | "jpeg")))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| img_err(&p)(Box::new(e)))?;
        let img = ocular_image::decode(&bytes, &ocular_image::Limits::default(), None)
            .map_err(|e| img_err(&p)(Box::new(e)))?
            .image;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.push((name, img));
    }
    Ok(out)
}

/// The skin model's metadata vector for "nothing known" (sex and site unknown, age missing),
/// from the manifest's `extra.metadata`.
pub fn unknown_metadata(m: &Manifest) -> [f32; 10] {
    let meta = &m.extra["metadata"];
    let age_mean = meta["age_mean"].as_f64().unwrap_or(51.9018) as f32;
    let age_max = meta["age_max"].as_f64().unwrap_or(90.0) as f32;
    let mut v = [0.0; 10];
    v[2] = 1.0;
    v[7] = 1.0;
    v[8] = age_mean / age_max;
    v[9] = 1.0;
    v
}

/// One sample per image for the model of `m`: the image input preprocessed by the manifest's
/// recipe, and `meta` for a 2-D input when the model has one.
pub fn samples(m: &Manifest, images: &[&RgbImage], meta: Option<[f32; 10]>) -> Vec<Sample> {
    let Some(pre) = &m.image else { return Vec::new() };
    let shape = pre.input_shape(1);
    images
        .iter()
        .map(|img| {
            let mut feeds = Vec::new();
            for input in &m.inputs {
                match (input.shape.len(), meta) {
                    (4, _) => feeds.push(Feed {
                        name: input.name.clone(),
                        shape: shape.clone(),
                        data: ocular_image::preprocess(img, pre),
                    }),
                    (2, Some(v)) => feeds.push(Feed { name: input.name.clone(), shape: vec![1, 10], data: v.to_vec() }),
                    _ => {}
                }
            }
            feeds
        })
        .collect()
}
