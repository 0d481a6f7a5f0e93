//! CLIP (Radford et al. 2021, <https://arxiv.org/abs/2103.00020>): one embedding space for
//! photos and words, so a text query finds images directly and an image can be scored against
//! free-text labels (zero-shot classification).
//!
//! ocular runs the standard ONNX exports users download, one graph per tower, as published
//! for the transformers.js and fastembed ecosystems (Hugging Face `CLIPVisionModelWithProjection`
//! / `CLIPTextModelWithProjection`, <https://huggingface.co/docs/transformers/model_doc/clip>):
//!
//! - [`ClipImageEncoder`]: `pixel_values` (N×3×224×224) → `image_embeds`, with OpenAI's
//!   preprocessing (shortest side to 224 with Pillow-exact bicubic, centre crop, /255, CLIP
//!   mean and std; [`clip_preprocess`]);
//! - [`ClipTextEncoder`]: `input_ids` (+ `attention_mask`) → `text_embeds`, with OpenAI's
//!   tokenizer ([`ClipTokenizer`]), and [`ClipTextEncoder::score_labels`] for zero-shot labels.
//!
//! Each tower is its own [`crate::registry::Loadable`] with its own registry slot, so
//! image-only search never loads the text tower (about a third of the memory). Both accept
//! float32 or dynamically quantised int8 graphs; input and output names are taken from the
//! session (manifest `extra` may name them when an export uses unusual names). Embeddings are
//! L2-normalised, so cosine similarity is a dot product. The reference implementations this
//! module is checked against, on random weights, are in `scripts/clip_tiny_reference.py`.

mod clean;
mod image;
mod text;
mod tokenizer;

pub use clean::{clean, html_unescape};
pub use image::ClipImageEncoder;
pub use text::ClipTextEncoder;
pub use tokenizer::{CONTEXT_LENGTH, ClipTokenizer, END_OF_TEXT, START_OF_TEXT, TokenBatch};

use ocular_core::{ImagePreprocess, Layout, Manifest, ResizeMode};

use crate::error::ModelError;

/// OpenAI CLIP's pixel mean (RGB, 0..1 scale).
pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's pixel standard deviation.
// Written digit for digit as OpenAI publishes it, so it can be checked against the reference
// by eye; the nearest f32 is what the compiler stores either way.
#[allow(clippy::excessive_precision)]
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];
/// `exp(logit_scale)` of the released OpenAI models (the learned value hits its clamp at 100).
/// The `logit_scale_init_value` in Hugging Face configs (2.6592) is the untrained start, not this.
pub const DEFAULT_LOGIT_SCALE: f32 = 100.0;

/// Manifest `extra` keys this module reads.
pub mod extra {
    /// `exp(logit_scale)`, a number.
    pub const LOGIT_SCALE: &str = "logit_scale";
    /// Graph input to feed (pixels, or token ids), when the export's name is unusual.
    pub const INPUT: &str = "input";
    /// Graph output holding the projected embedding, when the export's name is unusual.
    pub const OUTPUT: &str = "output";
}

/// The preprocessing recipe of OpenAI CLIP at a square input `size` (224 for ViT-B/32).
pub fn clip_preprocess(size: u32) -> ImagePreprocess {
    ImagePreprocess {
        width: size,
        height: size,
        resize: ResizeMode::ShortestBicubicCenterCrop,
        layout: Layout::Nchw,
        scale: 1.0 / 255.0,
        mean: MEAN,
        std: STD,
    }
}

/// Errors of zero-shot scoring that are the caller's fault, kept apart from model failures.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("no labels to score")]
    NoLabels,
    #[error(
        "image embedding has {found} values but this CLIP text tower makes {expected}; embed with the matching image tower"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl ClipError {
    /// True when the request must change (HTTP 4xx), false for a model failure (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, ClipError::Model(_))
    }
}

/// Zero-shot probabilities: softmax over `logit_scale · cos(image, label)`, which is what
/// `CLIPModel.forward` returns as `logits_per_image.softmax(-1)`.
pub fn zero_shot(image: &[f32], labels: &[Vec<f32>], logit_scale: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let image_norm = norm(image);
    let logits: Vec<f32> = labels
        .iter()
        .map(|l| logit_scale * l.iter().zip(image).map(|(a, b)| a * b).sum::<f32>() / (norm(l) * image_norm))
        .collect();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The embedding width a tower's manifest declares (its projected output's last dimension),
/// for callers that size an index before loading the model.
pub fn embedding_dim(manifest: &Manifest) -> Option<usize> {
    let preferred = match manifest.kind {
        ocular_core::ModelKind::ClipImage => image::OUTPUTS,
        _ => text::OUTPUTS,
    };
    let named = manifest.extra.get(extra::OUTPUT).and_then(serde_json::Value::as_str);
    let output = match named {
        Some(n) => manifest.output(n),
        None => preferred.iter().find_map(|p| manifest.output(p)),
    };
    output.and_then(|o| o.shape.last().copied()).filter(|d| *d > 0).map(|d| d as usize)
}

/// `exp(logit_scale)` from the manifest, else OpenAI's 100.
fn logit_scale(manifest: &Manifest) -> f32 {
    manifest.extra.get(extra::LOGIT_SCALE).and_then(serde_json::Value::as_f64).map_or(DEFAULT_LOGIT_SCALE, |v| v as f32)
}

/// Picks a graph input or output: the manifest's choice, else the first preferred name the
/// graph has, else the graph's only candidate.
fn pick(
    manifest: &Manifest,
    key: &str,
    available: &[String],
    preferred: &[&str],
    what: &str,
) -> Result<String, ModelError> {
    let invalid = |reason: String| ModelError::Invalid { model: manifest.name.clone(), reason };
    if let Some(name) = manifest.extra.get(key).and_then(serde_json::Value::as_str) {
        return match available.iter().find(|a| *a == name) {
            Some(a) => Ok(a.clone()),
            None => Err(invalid(format!("manifest names {what} {name:?}, the graph has {available:?}"))),
        };
    }
    if let Some(found) = preferred.iter().find_map(|p| available.iter().find(|a| a == p)) {
        return Ok(found.clone());
    }
    match available {
        [only] => Ok(only.clone()),
        _ => Err(invalid(format!(
            "cannot tell which of {available:?} is the {what}; name it in the manifest's extra.{key}"
        ))),
    }
}

/// Splits a flat `[n, dim]` output into L2-normalised rows, checking its size.
fn normalized_rows(model: &str, shape: &[i64], flat: Vec<f32>, n: usize) -> Result<Vec<Vec<f32>>, ModelError> {
    let dim = match shape {
        [rows, dim] if *rows as usize == n && *dim > 0 => *dim as usize,
        _ => {
            return Err(ModelError::Invalid {
                model: model.to_string(),
                reason: format!("embedding output has shape {shape:?}, expected [{n}, dim]"),
            });
        }
    };
    Ok(flat
        .chunks_exact(dim)
        .map(|row| {
            let mut v = row.to_vec();
            crate::image_classifier::l2_normalize(&mut v);
            v
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shot_is_a_scaled_softmax_of_cosines() {
        let labels = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
        let p = zero_shot(&[3.0, 0.0], &labels, 100.0);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[1] < 1e-6);
        let p = zero_shot(&[1.0, 1.0], &labels, 100.0);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
        // cos 0.6 vs 0.8 at scale 10: softmax([6, 8]).
        let p = zero_shot(&[0.6, 0.8], &labels, 10.0);
        let expected = 1.0 / (1.0 + (-2.0f32).exp());
        assert!((p[1] - expected).abs() < 1e-6, "{p:?}");
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn preprocess_matches_models_md() {
        let p = clip_preprocess(224);
        assert_eq!(
            (p.width, p.height, p.layout, p.resize),
            (224, 224, Layout::Nchw, ResizeMode::ShortestBicubicCenterCrop)
        );
        assert_eq!(p.mean, [0.48145466, 0.4578275, 0.40821073]);
        assert_eq!(p.std, [0.26862954, 0.26130258, 0.27577711]);
    }
}
