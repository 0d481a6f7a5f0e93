//! The gates an int8 graph must pass to be worth serving, measured on inputs that calibration
//! never saw, and recorded in the manifest (`extra.variants[].gate`).
//!
//! - The skin model is medical: its int8 graph must give the float graph's top class on at
//!   least [`SKIN_MIN_TOP1`] of held-out lesions and photos, and move no probability by more
//!   than [`SKIN_MAX_DP`]. (The float graph equals Keras to 6.6e-7, so this is the gate
//!   against the Keras reference; `tests/integration/quantize.rs` also checks Grad-CAM.)
//! - The image model embeds catalog photos: a search with int8 vectors must return the float
//!   search's top 10 ([`IMAGE_MIN_RECALL`] recall@10) over a catalog of real photos and their
//!   everyday variants (mirrored, cropped, shrunk), and name the same top-5 labels on every
//!   photo.
//!
//! A gate that fails leaves that model fp32 by default (`ocular serve --*-precision`), and the
//! manifest says why with the numbers.

use ocular_image::image::{RgbImage, imageops};
use serde::Serialize;

use super::eval::{Runner, argmax, cosine, top_k};
use super::{QuantizeError, Sample};

pub const SKIN_MIN_TOP1: f32 = 0.99;
pub const SKIN_MAX_DP: f32 = 0.02;
pub const IMAGE_MIN_RECALL: f32 = 0.95;
const K: usize = 10;

/// A gate's verdict and what it measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gate {
    pub passed: bool,
    pub criteria: String,
    pub measured: serde_json::Value,
}

/// The skin gate over `sets` (each a held-out set of samples).
pub fn skin(
    fp32: &mut Runner,
    int8: &mut Runner,
    sets: &[&[Sample]],
    probabilities: &str,
) -> Result<Gate, QuantizeError> {
    let (mut same, mut total, mut max_dp) = (0usize, 0usize, 0.0f32);
    for set in sets {
        for s in *set {
            let a = &fp32.run(s, &[probabilities])?[0];
            let b = &int8.run(s, &[probabilities])?[0];
            same += usize::from(argmax(a) == argmax(b));
            total += 1;
            max_dp = a.iter().zip(b).fold(max_dp, |m, (x, y)| m.max((x - y).abs()));
        }
    }
    let top1 = same as f32 / total.max(1) as f32;
    Ok(Gate {
        passed: top1 >= SKIN_MIN_TOP1 && max_dp <= SKIN_MAX_DP,
        criteria: format!("same top class on >= {SKIN_MIN_TOP1} of held-out images, max |dp| <= {SKIN_MAX_DP}"),
        measured: serde_json::json!({ "samples": total, "top1_agreement": top1, "max_abs_dp": max_dp }),
    })
}

/// Everyday variants of a photo as a shop catalog has them: itself, mirrored, a centre crop
/// and a half-size copy.
pub fn variants(img: &RgbImage) -> Vec<RgbImage> {
    let (w, h) = img.dimensions();
    let crop = imageops::crop_imm(img, w / 6, h / 6, w * 2 / 3, h * 2 / 3).to_image();
    let half = ocular_image::resize_bicubic(img, (w / 2).max(1), (h / 2).max(1));
    vec![img.clone(), imageops::flip_horizontal(img), crop, half]
}

/// Mean recall@k of the int8 neighbours against the float ones, every item querying all others.
pub fn recall_at_k(fp32: &[Vec<f32>], int8: &[Vec<f32>], k: usize) -> f32 {
    let n = fp32.len();
    let neighbours = |vs: &[Vec<f32>], q: usize| {
        let scores: Vec<f32> = (0..n).map(|j| if j == q { f32::MIN } else { cosine(&vs[q], &vs[j]) }).collect();
        top_k(&scores, k.min(n.saturating_sub(1)))
    };
    let mut sum = 0.0;
    for q in 0..n {
        let (a, b) = (neighbours(fp32, q), neighbours(int8, q));
        sum += a.iter().filter(|i| b.contains(i)).count() as f32 / a.len().max(1) as f32;
    }
    sum / n.max(1) as f32
}

/// The image gate: recall@10 over `catalog` (samples of photos and their variants) and the
/// same top-5 label set on every one of `photos`.
pub fn image(
    fp32: &mut Runner,
    int8: &mut Runner,
    catalog: &[Sample],
    photos: &[Sample],
    probabilities: &str,
    features: &str,
) -> Result<Gate, QuantizeError> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for s in catalog {
        a.push(fp32.run(s, &[features])?.remove(0));
        b.push(int8.run(s, &[features])?.remove(0));
    }
    let recall = recall_at_k(&a, &b, K);
    let mut same_top5 = 0;
    for s in photos {
        let (mut x, mut y) =
            (top_k(&fp32.run(s, &[probabilities])?[0], 5), top_k(&int8.run(s, &[probabilities])?[0], 5));
        x.sort_unstable();
        y.sort_unstable();
        same_top5 += usize::from(x == y);
    }
    Ok(Gate {
        passed: recall >= IMAGE_MIN_RECALL && same_top5 == photos.len(),
        criteria: format!(
            "recall@{K} >= {IMAGE_MIN_RECALL} against fp32 vectors over photos and their variants; same top-5 labels on every photo"
        ),
        measured: serde_json::json!({
            "catalog": catalog.len(), "recall_at_10": recall, "photos": photos.len(), "same_top5_labels": same_top5,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_shared_neighbours() {
        let a = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0], vec![0.1, 0.9]];
        assert_eq!(recall_at_k(&a, &a, 1), 1.0);
        // Swapping which vectors are close halves nothing for pairs that stay pairs.
        let b = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.9, 0.1], vec![0.1, 0.9]];
        assert!(recall_at_k(&a, &b, 1) < 1.0);
    }

    #[test]
    fn variants_are_four_real_changes() {
        let img = RgbImage::from_fn(60, 40, |x, y| ocular_image::image::Rgb([x as u8, y as u8, 0]));
        let v = variants(&img);
        assert_eq!(v.len(), 4);
        assert_eq!(v[2].dimensions(), (40, 26));
        assert_eq!(v[3].dimensions(), (30, 20));
        assert_ne!(v[1], v[0]);
    }
}
