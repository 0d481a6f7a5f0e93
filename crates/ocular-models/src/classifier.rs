//! Any classifier imported with `ocular models import`: one photo (plus the numeric vectors the
//! model declares) in, class scores and — where the head allows it — exact Grad-CAM out.
//!
//! Everything model-specific comes from the manifest the import wrote and checked
//! (`ocular_convert::import`): the image input and its pixel recipe, the extra inputs and their
//! widths, the class-score output, the labels, and the Grad-CAM feature map with its head. The
//! path from bytes to answer is the skin analysis's ([`crate::analysis`]): full-resolution
//! decode within the limits, TF-exact bilinear resize, one inference, Grad-CAM from the feature
//! map and the analytic head gradient ([`ocular_core::head`]), the overlay drawn by
//! [`crate::analysis::render`]. `POST /api/v1/models/{name}/predict` and `ocular predict` both
//! call [`predict`].

use std::collections::HashMap;
use std::time::Instant;

use ocular_core::head::HeadSpec;
use ocular_core::{ImagePreprocess, Label, Manifest};
use ocular_image::Limits;

use crate::analysis::{Timings, render};
use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};
use crate::skin::{GradcamGrid, argmax};

/// Most values one extra input may take (a form field is at most 16 KiB anyway).
pub const MAX_EXTRA_VALUES: usize = 4096;

/// An extra numeric input the model declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ExtraInput {
    pub name: String,
    /// Values it takes.
    pub size: usize,
}

pub struct Classifier {
    session: OnnxSession,
    image_input: String,
    extras: Vec<ExtraInput>,
    output: String,
    /// Feature-map output and the head, when exact Grad-CAM is available. The map's height
    /// and width are read from each run's output: a model imported with `--size` has none fixed.
    gradcam: Option<(String, HeadSpec)>,
    pub preprocess: ImagePreprocess,
    pub labels: Vec<Label>,
    pub name: String,
    pub version: String,
    /// The import's sum of layer outputs in bytes (`activation_bytes` in the manifest), for
    /// [`crate::estimate::predict`]; `None` for an import that could not know it.
    pub activation_bytes: Option<u64>,
}

/// Why a prediction was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Image(#[from] ocular_image::ImageError),
    /// An extra input is missing or malformed: the client's to fix.
    #[error("input `{name}`: {reason}")]
    Input { name: String, reason: String },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What one photo yields.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The model's class scores, in label order.
    pub scores: Vec<f32>,
    pub gradcam: Option<GradcamGrid>,
    /// Input photo at ≤ [`crate::analysis::PHOTO_MAX_SIDE`], JPEG.
    pub photo_jpeg: Vec<u8>,
    /// Grad-CAM overlay on that photo, JPEG.
    pub heatmap_jpeg: Option<Vec<u8>>,
    pub timings: Timings,
    pub width: u32,
    pub height: u32,
}

impl Classifier {
    /// The numeric inputs besides the photo, in the model's order.
    pub fn extra_inputs(&self) -> &[ExtraInput] {
        &self.extras
    }

    /// Whether exact Grad-CAM is available.
    pub fn has_gradcam(&self) -> bool {
        self.gradcam.is_some()
    }

    /// Parses the text of an extra input: its values separated by commas or white space.
    pub fn parse_extra(&self, name: &str, text: Option<&str>) -> Result<Vec<f32>, PredictError> {
        let input = |reason: String| PredictError::Input { name: name.into(), reason };
        let spec = self.extras.iter().find(|e| e.name == name).ok_or_else(|| input("no such input".into()))?;
        let text = text.ok_or_else(|| input(format!("missing; the model needs {} numbers here", spec.size)))?;
        let values = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .take(MAX_EXTRA_VALUES + 1)
            .map(|p| {
                p.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| input(format!("{p:?} is not a finite number")))
            })
            .collect::<Result<Vec<f32>, _>>()?;
        if values.len() != spec.size {
            return Err(input(format!("{} values given, the model takes {}", values.len(), spec.size)));
        }
        Ok(values)
    }

    /// Scores one preprocessed image tensor with its extra inputs; with `gradcam`, explains the
    /// top class. Returns (scores, grid, inference ms, Grad-CAM ms).
    pub fn run(
        &self,
        pixels: &[f32],
        extras: &HashMap<String, Vec<f32>>,
        gradcam: bool,
    ) -> Result<(Vec<f32>, Option<GradcamGrid>, f64, f64), PredictError> {
        let shape = self.preprocess.input_shape(1);
        let mut inputs = vec![Input::F32 { name: &self.image_input, shape, data: pixels }];
        for e in &self.extras {
            let data = extras.get(&e.name).filter(|v| v.len() == e.size).ok_or_else(|| PredictError::Input {
                name: e.name.clone(),
                reason: format!("missing; the model needs {} numbers here", e.size),
            })?;
            inputs.push(Input::F32 { name: &e.name, shape: vec![1, e.size as i64], data });
        }
        let want_map = gradcam && self.gradcam.is_some();
        let mut wanted = vec![self.output.as_str()];
        if let (true, Some((name, _))) = (want_map, &self.gradcam) {
            wanted.push(name);
        }
        let started = Instant::now();
        let mut out = self.session.run(&inputs, &wanted)?;
        let inference_ms = started.elapsed().as_secs_f64() * 1e3;
        let scores = out.remove(&self.output).map(|(_, v)| v).unwrap_or_default();
        if scores.len() != self.labels.len() {
            return Err(self.invalid(format!("{} scores for {} labels", scores.len(), self.labels.len())).into());
        }
        let started = Instant::now();
        let grid = match (&self.gradcam, want_map) {
            (Some((name, head)), true) => {
                let (shape, map) = out.remove(name).ok_or_else(|| self.invalid("no feature map output".into()))?;
                let dims = match shape[..] {
                    [1, h, w, c] if h > 0 && w > 0 && c > 0 => (h as usize, w as usize, c as usize),
                    _ => return Err(self.invalid(format!("feature map of shape {shape:?}")).into()),
                };
                let class = argmax(&scores);
                let values = head.gradcam(&map, dims, extras, class).map_err(|e| self.invalid(e.to_string()))?;
                Some(GradcamGrid { width: dims.1, height: dims.0, values, class })
            }
            _ => None,
        };
        Ok((scores, grid, inference_ms, started.elapsed().as_secs_f64() * 1e3))
    }

    /// The `k` highest-scoring classes, best first, as (label index, score).
    pub fn top(&self, scores: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut idx: Vec<usize> = (0..scores.len().min(self.labels.len())).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        idx.into_iter().take(k).map(|i| (i, scores[i])).collect()
    }

    fn invalid(&self, reason: String) -> ModelError {
        ModelError::Invalid { model: self.name.clone(), reason }
    }
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The whole prediction from image bytes: decode, resize, infer, Grad-CAM, render.
pub fn predict(
    model: &Classifier,
    bytes: &[u8],
    limits: &Limits,
    extras: &HashMap<String, Vec<f32>>,
    gradcam: bool,
) -> Result<Prediction, PredictError> {
    let total = Instant::now();
    let mut t = Timings::default();
    let started = Instant::now();
    // Full resolution, as the skin analysis: the model sees the photo as Keras' resize would.
    let img = ocular_image::decode(bytes, limits, None)?.image;
    t.decode = ms(started);
    let started = Instant::now();
    let pixels = ocular_image::preprocess(&img, &model.preprocess);
    t.preprocess = ms(started);
    let (scores, grid, inference, gradcam_ms) = model.run(&pixels, extras, gradcam)?;
    drop(pixels);
    t.inference = (inference * 1e3).round() / 1e3;
    t.gradcam = (gradcam_ms * 1e3).round() / 1e3;
    let started = Instant::now();
    let (width, height) = img.dimensions();
    let (photo_jpeg, heatmap_jpeg) = render(img, grid.as_ref())?;
    t.render = ms(started);
    t.total = ms(total);
    Ok(Prediction { scores, gradcam: grid, photo_jpeg, heatmap_jpeg, timings: t, width, height })
}

/// The photo input's name: as the import recorded it (`extra.classifier.image_input`), else
/// the only N×H×W×C input.
fn image_input_of(m: &Manifest) -> Option<String> {
    match m.extra["classifier"]["image_input"].as_str() {
        Some(n) => Some(n.to_string()),
        None => m.inputs.iter().find(|i| i.shape.len() == 4).map(|i| i.name.clone()),
    }
}

/// The numeric inputs besides the photo (every N×K input), read from the manifest alone.
pub fn extra_inputs_of(m: &Manifest) -> Vec<ExtraInput> {
    let image = image_input_of(m);
    m.inputs
        .iter()
        .filter(|i| Some(&i.name) != image.as_ref())
        .filter_map(|i| match i.shape[..] {
            [_, k] if k > 0 => Some(ExtraInput { name: i.name.clone(), size: k as usize }),
            _ => None,
        })
        .collect()
}

impl Loadable for Classifier {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m = ctx.manifest;
        let invalid = |reason: &str| ModelError::Invalid { model: m.name.clone(), reason: reason.into() };
        let preprocess = m.image.clone().ok_or_else(|| invalid("manifest has no image preprocessing"))?;
        let recorded = &m.extra["classifier"];
        let image_input = image_input_of(m).ok_or_else(|| invalid("no image input"))?;
        let extras = extra_inputs_of(m);
        if extras.len() + 1 != m.inputs.len() {
            return Err(invalid("inputs other than one image and N×K vectors (import it again)"));
        }
        let feature = m.gradcam.as_ref().map(|g| g.feature_output.clone());
        let output = match recorded["output"].as_str() {
            Some(n) => n.to_string(),
            None => m
                .outputs
                .iter()
                .filter(|o| Some(&o.name) != feature.as_ref())
                .find(|o| o.shape.len() == 2)
                .ok_or_else(|| invalid("no class-score output"))?
                .name
                .clone(),
        };
        let gradcam = match &m.gradcam {
            Some(g) => {
                let spec = m.output(&g.feature_output).ok_or_else(|| invalid("gradcam output not among outputs"))?;
                if spec.shape.len() != 4 || spec.shape[3] <= 0 {
                    return Err(invalid("gradcam feature map must be N×H×W×C with a fixed C"));
                }
                let head = HeadSpec::load(ctx.dir).map_err(|e| invalid(&format!("head: {e}")))?;
                Some((g.feature_output.clone(), head))
            }
            None => None,
        };
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?;
        Ok(Self {
            session,
            image_input,
            extras,
            output,
            gradcam,
            preprocess,
            labels: m.labels.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            activation_bytes: m.extra["activation_bytes"].as_u64(),
        })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        let n = (self.preprocess.width * self.preprocess.height * 3) as usize;
        let extras = self.extras.iter().map(|e| (e.name.clone(), vec![0.0; e.size])).collect();
        match self.run(&vec![0.0; n], &extras, true) {
            Ok(_) => Ok(()),
            Err(PredictError::Model(e)) => Err(e),
            Err(e) => Err(self.invalid(e.to_string())),
        }
    }
}
