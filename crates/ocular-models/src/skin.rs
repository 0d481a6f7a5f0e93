//! The skin-lesion classifier (sklesion, HAM10000) with exact Grad-CAM.
//!
//! The ONNX graph (converted from the package's Keras file by `ocular-convert`) takes the raw
//! 254×254 RGB image (0..255, NHWC; its first layer normalises) and the 10-value metadata
//! vector, and returns the 7 class probabilities plus the last convolutional activation
//! `block14_sepconv2_act` (8×8×2048). Grad-CAM is computed from that activation and the head
//! description (`head.json`) with the analytic gradient in [`ocular_core::head`]: no second
//! model, no gradient through convolutions, and nothing at all when it is not requested.

use std::collections::HashMap;
use std::time::Instant;

use ocular_core::head::HeadSpec;
use ocular_core::{ImagePreprocess, Label};
use serde::Deserialize;

use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};

/// Rows one skin-model batch holds unless the operator sets `--inference-batch`: none. Measured
/// (docs/BENCHMARKS.md, "Serving engine"): batching four analyses gave no more throughput on 2
/// cores (4.1 / 3.6 against 4.3 / 4.2 analyses/s) while each extra row keeps ~40 MB more
/// activations on the heap: peak RSS of a 4-client burst +55–90 MB.
pub const DEFAULT_BATCH: usize = 1;

/// Patient sex as the model was trained with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sex {
    Female,
    Male,
    #[default]
    Unknown,
}

/// Body site as the model was trained with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodySite {
    Arm,
    HeadOrNeck,
    LegOrGenital,
    Trunk,
    #[default]
    Unknown,
}

/// Optional patient metadata.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct SkinMeta {
    pub age: Option<f32>,
    pub sex: Sex,
    pub location: BodySite,
}

/// How the metadata vector is encoded (from the package's `model_props.pkl`, kept in the
/// manifest's `extra.metadata`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct MetaEncoding {
    pub age_mean: f32,
    pub age_max: f32,
}

impl SkinMeta {
    /// sex one-hot (female, male, unknown) + site one-hot (arm, head-or-neck, leg-or-genital,
    /// trunk, unknown) + age / age_max + age_missing; a missing age takes the training mean.
    pub fn vector(&self, enc: MetaEncoding) -> [f32; 10] {
        let mut v = [0.0f32; 10];
        v[self.sex as usize] = 1.0;
        v[3 + self.location as usize] = 1.0;
        v[8] = self.age.unwrap_or(enc.age_mean) / enc.age_max;
        v[9] = if self.age.is_none() { 1.0 } else { 0.0 };
        v
    }
}

/// A Grad-CAM map at feature-map resolution, row-major, normalised to [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcamGrid {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
    /// The class index it explains.
    pub class: usize,
}

#[derive(Debug, Clone)]
pub struct SkinOutput {
    pub probabilities: Vec<f32>,
    pub gradcam: Option<GradcamGrid>,
    pub inference_ms: f64,
    pub gradcam_ms: f64,
}

pub struct SkinModel {
    session: OnnxSession,
    image_input: String,
    /// The metadata input; `None` for an image-only skin model (`ocular models import --skin`
    /// of a model without one): the metadata a request sends is then not used.
    meta_input: Option<String>,
    prob_output: String,
    /// Feature-map output, its (h, w, c) and the head, when Grad-CAM is available.
    gradcam: Option<(String, (usize, usize, usize), HeadSpec)>,
    pub labels: Vec<Label>,
    pub preprocess: ImagePreprocess,
    pub meta_encoding: MetaEncoding,
    /// The model card facts of the manifest (`extra`).
    pub card: serde_json::Value,
    pub name: String,
    pub version: String,
}

impl SkinModel {
    /// The model's session and its inference lane.
    pub fn session(&self) -> &OnnxSession {
        &self.session
    }

    /// Whether the model takes the patient metadata (age, sex, body site).
    pub fn uses_metadata(&self) -> bool {
        self.meta_input.is_some()
    }

    /// Whether exact Grad-CAM is available for this model.
    pub fn has_gradcam(&self) -> bool {
        self.gradcam.is_some()
    }

    /// Classifies one preprocessed image (`254×254×3` HWC floats 0..255) with its metadata
    /// vector; with `gradcam`, also explains the most probable class.
    pub fn predict(&self, pixels: &[f32], meta: &[f32; 10], gradcam: bool) -> Result<SkinOutput, ModelError> {
        let (w, h) = (self.preprocess.width as i64, self.preprocess.height as i64);
        if pixels.len() as i64 != w * h * 3 {
            return Err(self.invalid(format!("expected {w}×{h}×3 pixels, got {} values", pixels.len())));
        }
        let want_map = gradcam && self.gradcam.is_some();
        let mut wanted = vec![self.prob_output.as_str()];
        if let (true, Some((name, _, _))) = (want_map, &self.gradcam) {
            wanted.push(name);
        }
        let mut inputs = vec![Input::F32 { name: &self.image_input, shape: vec![1, h, w, 3], data: pixels }];
        if let Some(name) = &self.meta_input {
            inputs.push(Input::F32 { name, shape: vec![1, 10], data: meta });
        }
        let started = Instant::now();
        let mut out = self.session.run(&inputs, &wanted)?;
        let inference_ms = started.elapsed().as_secs_f64() * 1e3;
        let probabilities = out.remove(&self.prob_output).map(|(_, v)| v).unwrap_or_default();
        if probabilities.len() != self.labels.len() {
            return Err(self.invalid(format!("model returned {} probabilities", probabilities.len())));
        }
        let started = Instant::now();
        let grid = match (&self.gradcam, want_map) {
            (Some((name, dims, head)), true) => {
                let (_, map) = out.remove(name).ok_or_else(|| self.invalid("no feature map output".into()))?;
                let class = argmax(&probabilities);
                let other: HashMap<String, Vec<f32>> =
                    self.meta_input.iter().map(|n| (n.clone(), meta.to_vec())).collect();
                let values = head.gradcam(&map, *dims, &other, class).map_err(|e| self.invalid(e.to_string()))?;
                Some(GradcamGrid { width: dims.1, height: dims.0, values, class })
            }
            _ => None,
        };
        Ok(SkinOutput { probabilities, gradcam: grid, inference_ms, gradcam_ms: started.elapsed().as_secs_f64() * 1e3 })
    }

    fn invalid(&self, reason: String) -> ModelError {
        ModelError::Invalid { model: self.name.clone(), reason }
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

impl Loadable for SkinModel {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m = ctx.manifest;
        let invalid = |reason: &str| ModelError::Invalid { model: m.name.clone(), reason: reason.into() };
        let preprocess = m.image.clone().ok_or_else(|| invalid("manifest has no image preprocessing"))?;
        let image_input = m.inputs.iter().find(|i| i.shape.len() == 4).ok_or_else(|| invalid("no image input"))?;
        let meta_input = match m.inputs.iter().find(|i| i.name != image_input.name) {
            Some(i) if i.shape[..] == [i.shape[0], 10] => Some(i.name.clone()),
            Some(i) => return Err(invalid(&format!("input {} is not the 10-value metadata vector", i.name))),
            None => None,
        };
        let feature_output = m.gradcam.as_ref().map(|g| g.feature_output.clone());
        let prob_output = m
            .outputs
            .iter()
            .find(|o| Some(&o.name) != feature_output.as_ref())
            .ok_or_else(|| invalid("no probability output"))?;
        let meta_encoding: MetaEncoding = match &meta_input {
            Some(_) => serde_json::from_value(m.extra["metadata"].clone())
                .map_err(|e| invalid(&format!("manifest extra.metadata: {e}")))?,
            // Never applied: the model has no metadata input.
            None => MetaEncoding { age_mean: 0.0, age_max: 1.0 },
        };
        let gradcam = match &m.gradcam {
            Some(g) => {
                let spec = m.output(&g.feature_output).ok_or_else(|| invalid("gradcam output not among outputs"))?;
                let dims = match spec.shape.as_slice() {
                    [_, h, w, c] if *h > 0 && *w > 0 && *c > 0 => (*h as usize, *w as usize, *c as usize),
                    _ => return Err(invalid("gradcam feature map must be N×H×W×C with fixed H, W, C")),
                };
                let head = HeadSpec::load(ctx.dir).map_err(|e| invalid(&format!("head: {e}")))?;
                Some((g.feature_output.clone(), dims, head))
            }
            None => None,
        };
        let session =
            OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?.with_max_batch(DEFAULT_BATCH);
        Ok(Self {
            session,
            image_input: image_input.name.clone(),
            meta_input,
            prob_output: prob_output.name.clone(),
            gradcam,
            labels: m.labels.clone(),
            preprocess,
            meta_encoding,
            card: m.extra.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
        })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        let n = (self.preprocess.width * self.preprocess.height * 3) as usize;
        let meta = SkinMeta::default().vector(self.meta_encoding);
        self.predict(&vec![128.0; n], &meta, true).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENC: MetaEncoding = MetaEncoding { age_mean: 51.9018, age_max: 90.0 };

    #[test]
    fn metadata_vector_follows_the_training_encoding() {
        let v = SkinMeta { age: Some(45.0), sex: Sex::Male, location: BodySite::Trunk }.vector(ENC);
        assert_eq!(v, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0]);
        let missing = SkinMeta::default().vector(ENC);
        assert_eq!(&missing[..8], &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!((missing[8] - 51.9018 / 90.0).abs() < 1e-7 && missing[9] == 1.0);
    }

    #[test]
    fn argmax_takes_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
