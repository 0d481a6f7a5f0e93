//! Writes the load-time self-check of an int8 graph (`ocular_core::manifest::SelfCheck`): a
//! few input images stored beside the model, the float graph's outputs for them, and a
//! tolerance derived from what the int8 graph measured here.
//!
//! The runtime (`ocular_models::self_check`) reruns these inputs through the int8 graph on the
//! CPU that serves it and falls back to the float graph when the answers leave the tolerance:
//! the guard against integer kernels that compute differently on another instruction set
//! (docs/QUANTIZATION.md).
//!
//! Cases are chosen to be unambiguous: the float graph's top class leads the runner-up by at
//! least [`MIN_MARGIN`] and the int8 graph agrees with it here, so a top-class change at load
//! means the arithmetic changed, not that a coin-flip image flipped.

use std::path::Path;

use ocular_core::manifest::{SelfCheck, SelfCheckCase};
use ocular_core::{FileEntry, Manifest, ModelKind};
use ocular_image::image::{ImageFormat, RgbImage};
use sha2::{Digest, Sha256};

use super::eval::{Runner, argmax, cosine};
use super::{QuantizeError, data};

/// Cases stored per model.
pub const CASES: usize = 3;
/// Smallest lead of the float top class over the runner-up for an image to be a case.
pub const MIN_MARGIN: f32 = 0.2;
/// Folder of the case images inside the model folder.
pub const DIR: &str = "self-check";

fn margin(p: &[f32]) -> f32 {
    let best = argmax(p);
    let second = p.iter().enumerate().filter(|(i, _)| *i != best).fold(f32::MIN, |m, (_, v)| m.max(*v));
    p[best] - second
}

/// Picks [`CASES`] of `candidates`, writes them as PNGs at the model's input size under
/// `dir/self-check/`, and returns the check with the manifest entries of those files.
#[allow(clippy::too_many_arguments)]
pub fn build(
    m: &Manifest,
    fp32: &mut Runner,
    int8: &mut Runner,
    candidates: &[&RgbImage],
    meta: Option<[f32; 10]>,
    probabilities: &str,
    features: &str,
    dir: &Path,
) -> Result<(SelfCheck, Vec<FileEntry>), QuantizeError> {
    let pre = m.image.as_ref().ok_or(QuantizeError::NoGraph)?;
    // The skin model's feature output is its 8x8x2048 Grad-CAM map: too large to store, and
    // its probabilities already depend on every value of it.
    let cosine_output = (m.kind != ModelKind::SkinClassifier).then(|| features.to_string());
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: Box<dyn std::error::Error + Send + Sync>| QuantizeError::Image { path, source: e }
    };
    let folder = dir.join(DIR);
    std::fs::create_dir_all(&folder).map_err(|e| io_err(&folder)(Box::new(e)))?;
    let (mut cases, mut files, mut worst_dp, mut worst_cos) = (Vec::new(), Vec::new(), 0.0f32, 1.0f32);
    for img in candidates {
        if cases.len() == CASES {
            break;
        }
        // Stored at the input size, losslessly: what the runtime decodes is what ran here.
        let small = ocular_image::resize_bicubic(img, pre.width, pre.height);
        let mut png = Vec::new();
        small
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .map_err(|e| io_err(&folder)(Box::new(e)))?;
        let decoded = ocular_image::decode(&png, &ocular_image::Limits::default(), None)
            .map_err(|e| io_err(&folder)(Box::new(e)))?
            .image;
        let sample = &data::samples(m, &[&decoded], meta)[0];
        let mut names = vec![probabilities];
        names.extend(cosine_output.as_deref());
        let a = fp32.run(sample, &names)?;
        let b = int8.run(sample, &names)?;
        if margin(&a[0]) < MIN_MARGIN || argmax(&a[0]) != argmax(&b[0]) {
            continue;
        }
        worst_dp = a[0].iter().zip(&b[0]).fold(worst_dp, |w, (x, y)| w.max((x - y).abs()));
        if cosine_output.is_some() {
            worst_cos = worst_cos.min(cosine(&a[1], &b[1]));
        }
        let name = format!("{DIR}/{}.png", cases.len());
        let path = dir.join(&name);
        std::fs::write(&path, &png).map_err(|e| io_err(&path)(Box::new(e)))?;
        files.push(FileEntry {
            path: name.clone(),
            sha256: hex::encode(Sha256::digest(&png)),
            bytes: png.len() as u64,
        });
        let mut outputs = std::collections::BTreeMap::new();
        for (n, v) in names.iter().zip(a) {
            outputs.insert(n.to_string(), v);
        }
        cases.push(SelfCheckCase { image: name, meta: meta.map(|v| v.to_vec()), outputs });
    }
    if cases.is_empty() {
        return Err(QuantizeError::NoSamples);
    }
    // Twice what was measured here, with a floor: kernels that compute the same integers
    // (every CPU, for ocular's weight format) differ only in float rounding, far inside it,
    // while saturating ones moved probabilities by up to 0.95 and cosines down to 0.73.
    let check = SelfCheck {
        cases,
        cosine_output,
        min_cosine: 1.0 - (2.0 * (1.0 - worst_cos)).max(0.01),
        probability_output: probabilities.to_string(),
        max_abs_diff: (2.0 * worst_dp).max(0.02),
    };
    Ok((check, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_the_lead_over_the_runner_up() {
        assert!((margin(&[0.1, 0.6, 0.3]) - 0.3).abs() < 1e-6);
        assert_eq!(margin(&[0.5, 0.5]), 0.0);
    }
}
