//! The CLIP image tower: decoded photos to L2-normalised embeddings in the shared space.
//!
//! Reference: Hugging Face `CLIPModel.get_image_features` (vision transformer, pooled class
//! token, `visual_projection`), which is what `image_embeds` of the standard vision exports
//! computes; preprocessing is OpenAI's (`clip.load(...)[1]`, equal to transformers'
//! `CLIPImageProcessor` with Pillow).

use ocular_core::{Manifest, ModelKind};
use ocular_image::image::{Rgb, RgbImage};

use super::{clip_preprocess, extra, logit_scale, normalized_rows, pick};
use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};

/// Input names of the exports in the wild: transformers.js / fastembed / optimum first.
const INPUTS: &[&str] = &["pixel_values", "image", "input", "images"];
/// Projected-embedding output names; `pooler_output` alone would be unprojected, so it is
/// deliberately absent.
pub(super) const OUTPUTS: &[&str] = &["image_embeds", "image_embeddings", "embeddings", "image_features", "output"];

pub struct ClipImageEncoder {
    session: OnnxSession,
    input: String,
    output: String,
    pub preprocess: ocular_core::ImagePreprocess,
    pub name: String,
    pub version: String,
    /// Embedding width (512 for ViT-B/32), read from the graph at load.
    pub dim: usize,
    /// `exp(logit_scale)` of the pair this tower belongs to.
    pub logit_scale: f32,
}

impl ClipImageEncoder {
    /// Id stored with every embedding this tower makes (`name@version`): a different model
    /// means a different id, and the index must be rebuilt (`ocular reindex`).
    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Embeds a batch of decoded images (one forward pass).
    pub fn embed(&self, images: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let p = &self.preprocess;
        let mut batch = Vec::with_capacity((p.width * p.height * 3) as usize * images.len());
        for img in images {
            batch.extend(ocular_image::preprocess(img, p));
        }
        let shape = p.input_shape(images.len() as i64);
        let mut out = self.session.run(&[Input::F32 { name: &self.input, shape, data: &batch }], &[&self.output])?;
        let (shape, flat) = out.remove(&self.output).ok_or_else(|| ModelError::Invalid {
            model: self.name.clone(),
            reason: format!("graph returned no {}", self.output),
        })?;
        normalized_rows(&self.name, &shape, flat, images.len())
    }
}

impl Loadable for ClipImageEncoder {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m: &Manifest = ctx.manifest;
        if m.kind != ModelKind::ClipImage {
            return Err(ModelError::Invalid { model: m.name.clone(), reason: format!("kind is {}", m.kind.as_str()) });
        }
        let preprocess = m.image.clone().unwrap_or_else(|| clip_preprocess(224));
        // A downloaded graph: refused if it changed since install (see `crate::digest`).
        crate::digest::verify_graph(ctx.dir, m)?;
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?;
        let input = pick(m, extra::INPUT, session.input_names(), INPUTS, "pixel input")?;
        let output = pick(m, extra::OUTPUT, session.output_names(), OUTPUTS, "image embedding output")?;
        let mut model = Self {
            session,
            input,
            output,
            preprocess,
            name: m.name.clone(),
            version: m.version.clone(),
            dim: 0,
            logit_scale: logit_scale(m),
        };
        // The width comes from the graph itself, so a manifest cannot disagree with it.
        model.dim = model.probe()?.len();
        Ok(model)
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        self.probe().map(|_| ())
    }
}

impl ClipImageEncoder {
    fn probe(&self) -> Result<Vec<f32>, ModelError> {
        let grey = RgbImage::from_pixel(self.preprocess.width, self.preprocess.height, Rgb([128, 128, 128]));
        let mut rows = self.embed(&[&grey])?;
        rows.pop().ok_or_else(|| ModelError::Invalid { model: self.name.clone(), reason: "empty output".into() })
    }
}
