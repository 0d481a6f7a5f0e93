//! The input check on a labelled set: synthetic lesions on the six Fitzpatrick skin types
//! (positives) and every everyday photo that ships in scikit-image / scikit-learn (negatives).
//! Prints the confusion table that the README quotes; fails on any misclassification.

// The same generator that calibrates the int8 graphs (a different seed range there).
use ocular_convert::quantize::data::synthetic_lesion;
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
