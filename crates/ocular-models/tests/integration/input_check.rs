//! The input check on a labelled set: synthetic lesions on the six Fitzpatrick skin types
//! (positives) and every everyday photo that ships in scikit-image / scikit-learn (negatives).
//! Prints the confusion table that the README quotes; fails on any misclassification.

use ocular_image::image::{Rgb, RgbImage};
use ocular_models::analysis::check_input;

use crate::real;

/// Representative sRGB skin colours, Fitzpatrick I–VI.
const SKIN: [(&str, [u8; 3]); 6] = [
    ("I", [244, 208, 177]),
    ("II", [231, 180, 143]),
    ("III", [210, 158, 124]),
    ("IV", [187, 120, 85]),
    ("V", [141, 85, 54]),
    ("VI", [84, 50, 36]),
];

/// Lesion colours relative to the skin: pigmented (darker brown), vascular (red), dark nevus.
const LESIONS: [(&str, [f32; 3]); 3] =
    [("brown", [0.45, 0.35, 0.25]), ("red", [0.85, 0.35, 0.35]), ("dark", [0.25, 0.2, 0.2])];

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

/// A close-up photo of a lesion: textured skin, an irregular ellipse with a soft border, and a
/// vignette as dermatoscopes and phone close-ups produce.
fn synthetic_lesion(skin: [u8; 3], lesion: [f32; 3], w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let (cx, cy) = (w as f32 * (0.4 + 0.2 * rng.next()), h as f32 * (0.4 + 0.2 * rng.next()));
    let (rx, ry) = (w as f32 * (0.12 + 0.1 * rng.next()), h as f32 * (0.1 + 0.1 * rng.next()));
    let wobble = [rng.next() * 0.3, rng.next() * 0.3, rng.next() * std::f32::consts::TAU];
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
        let angle = dy.atan2(dx);
        let edge = 1.0 + wobble[0] * (3.0 * angle + wobble[2]).sin() + wobble[1] * (5.0 * angle).cos();
        let d = (dx * dx + dy * dy).sqrt() / edge;
        let inside = (1.2 - d).clamp(0.0, 0.4) / 0.4; // soft border
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

const NEGATIVES: [&str; 22] = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "china.jpg",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "color.png",
    "flower.jpg",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "logo.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
];

#[test]
fn labelled_set_precision_and_recall() {
    let objects = real::imagenet();
    let (mut tp, mut fn_, mut tn, mut fp) = (0, 0, 0, 0);
    let mut report = String::new();
    let mut seed = 1;
    for (tone, skin) in SKIN {
        for (kind, lesion) in LESIONS {
            for (w, h) in [(640, 480), (254, 254)] {
                seed += 1;
                let img = synthetic_lesion(skin, lesion, w, h, seed * 7919);
                let check = check_input(&img, Some(&objects)).expect("check");
                if check.is_skin {
                    tp += 1
                } else {
                    fn_ += 1
                }
                let top = objects.run(&[&img]).expect("run");
                let (label, p) = objects.top(&top[0].probabilities, 1)[0];
                report += &format!(
                    "lesion {kind:<5} type {tone:<3} {w}x{h} skin={} score={:.2} top1={} {p:.2}\n",
                    check.is_skin, check.score, label.name
                );
            }
        }
    }
    for name in NEGATIVES {
        let img =
            ocular_image::decode(&real::photo(name), &ocular_image::Limits::default(), None).expect("decode").image;
        let check = check_input(&img, Some(&objects)).expect("check");
        if check.is_skin {
            fp += 1
        } else {
            tn += 1
        }
        report += &format!("{:<24} skin={:<5} score={:.2} {}\n", name, check.is_skin, check.score, check.reason);
    }
    let precision = tp as f32 / (tp + fp).max(1) as f32;
    let recall = tp as f32 / (tp + fn_).max(1) as f32;
    println!(
        "{report}positives {} (TP {tp}, FN {fn_}), negatives {} (TN {tn}, FP {fp}); precision {precision:.3}, recall {recall:.3}",
        tp + fn_,
        tn + fp
    );
    assert_eq!(fn_, 0, "lesions refused:\n{report}");
    assert_eq!(fp, 0, "non-skin photos accepted:\n{report}");
}
