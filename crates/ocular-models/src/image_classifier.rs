//! The ImageNet classifier whose pooled feature is ocular's default image embedding
//! (EfficientNet-Lite0, converted from its torch checkpoint by `ocular-convert`).
//!
//! One forward pass gives both the 1280-d pooled feature (L2-normalised here: cosine
//! similarity becomes a dot product in the index) and the 1000 ImageNet probabilities, which
//! serve the skin input check ("is this an everyday object?"), ConSE text-space embeddings and
//! the labels returned by `/api/v1/embed/image`.

use ocular_core::{ImagePreprocess, Label};
use ocular_image::image::RgbImage;

use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{self, Input, OnnxSession};

const FEATURES: &str = "features";
const PROBABILITIES: &str = "probabilities";

/// What one image yields.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// L2-normalised pooled feature.
    pub embedding: Vec<f32>,
    pub probabilities: Vec<f32>,
}

pub struct ImageClassifier {
    session: OnnxSession,
    input: String,
    pub preprocess: ImagePreprocess,
    pub labels: Vec<Label>,
    pub name: String,
    pub version: String,
    pub dim: usize,
}

/// Scales a vector to unit length (unchanged when it is all zeros).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl ImageClassifier {
    /// Model id stored with every embedding it makes (`name@version`).
    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The model's session and its inference lane.
    pub fn session(&self) -> &OnnxSession {
        &self.session
    }

    /// Embeds and classifies a batch of decoded images.
    pub fn run(&self, images: &[&RgbImage]) -> Result<Vec<ImageFeatures>, ModelError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let per = (self.preprocess.width * self.preprocess.height * 3) as usize;
        let mut batch = Vec::with_capacity(per * images.len());
        for img in images {
            batch.extend(ocular_image::preprocess(img, &self.preprocess));
        }
        let shape = self.preprocess.input_shape(images.len() as i64);
        let mut out =
            self.session.run(&[Input::F32 { name: &self.input, shape, data: &batch }], &[FEATURES, PROBABILITIES])?;
        let invalid =
            |what: &str| ModelError::Invalid { model: self.name.clone(), reason: format!("missing output {what}") };
        let (_, feats) = out.remove(FEATURES).ok_or_else(|| invalid(FEATURES))?;
        let (_, probs) = out.remove(PROBABILITIES).ok_or_else(|| invalid(PROBABILITIES))?;
        let classes = self.labels.len().max(1);
        Ok(feats
            .chunks_exact(self.dim)
            .zip(probs.chunks_exact(classes))
            .map(|(f, p)| {
                let mut embedding = f.to_vec();
                l2_normalize(&mut embedding);
                ImageFeatures { embedding, probabilities: p.to_vec() }
            })
            .collect())
    }

    /// The `k` most probable classes, best first.
    pub fn top(&self, probabilities: &[f32], k: usize) -> Vec<(&Label, f32)> {
        let mut idx: Vec<usize> = (0..probabilities.len().min(self.labels.len())).collect();
        idx.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        idx.into_iter().take(k).map(|i| (&self.labels[i], probabilities[i])).collect()
    }
}

/// Bytes of the largest activation one image makes in the served image model, EfficientNet-Lite0:
/// its second block expands 16 channels to 96 at half the input's resolution, 96 × 112 × 112
/// f32 values (4.8 MB) at 224 px.
pub fn largest_activation_per_image(p: &ImagePreprocess) -> u64 {
    96 * u64::from(p.width.div_ceil(2)) * u64::from(p.height.div_ceil(2)) * 4
}

/// Rows a batch of this model may hold unless the operator sets `--inference-batch`: as many as
/// keep its largest activation on the allocator's reused heap ([`session::rows_within`]). For
/// EfficientNet-Lite0 at 224 px that is 1: two rows (9.6 MB) pass the 8 MiB heap block, and
/// every batched run mapped and faulted in its activations. Measured (docs/BENCHMARKS.md,
/// "Fourth round"): 10-client photo search at 10k products ran 23.6 req/s unbatched against
/// 16.6 with batches of up to 8 (1.42×), with 140 minor faults per request instead of 1,387 and
/// a peak RSS of 366 MB instead of 422. Imports still embed their batches as one run each.
pub fn default_batch(p: &ImagePreprocess) -> usize {
    session::rows_within(session::DEFAULT_MAX_BATCH, largest_activation_per_image(p), session::HEAP_BLOCK_BYTES)
}

impl Loadable for ImageClassifier {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m = ctx.manifest;
        let invalid = |reason: &str| ModelError::Invalid { model: m.name.clone(), reason: reason.into() };
        let preprocess = m.image.clone().ok_or_else(|| invalid("manifest has no image preprocessing"))?;
        let input = m.inputs.first().ok_or_else(|| invalid("no input"))?.name.clone();
        let dim = m.output(FEATURES).and_then(|o| o.shape.last().copied()).filter(|d| *d > 0);
        let dim = dim.ok_or_else(|| invalid("no `features` output with a fixed width"))? as usize;
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?
            .with_max_batch(default_batch(&preprocess));
        Ok(Self {
            session,
            input,
            preprocess,
            labels: m.labels.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            dim,
        })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        let img = RgbImage::from_pixel(
            self.preprocess.width,
            self.preprocess.height,
            ocular_image::image::Rgb([128, 128, 128]),
        );
        self.run(&[&img]).map(|_| ())
    }
}
