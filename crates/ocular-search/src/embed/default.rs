//! The default embedders, built from models that ship in registry packages:
//! EfficientNet-Lite0's pooled 1280-d feature for `image`, all-MiniLM-L6-v2 (384-d) for `text`,
//! and ConSE over both ([`super::conse`]) for `image_text`.

use std::path::PathBuf;
use std::sync::Arc;

use ocular_core::Manifest;
use ocular_image::image::RgbImage;
use ocular_models::image_classifier::ImageClassifier;
use ocular_models::text_encoder::TextEncoder;
use ocular_models::{ModelError, Registry, Slot};

use super::conse::{self, PromptMatrix};
use super::{
    EmbedderProvider, Embedders, IMAGE, IMAGE_TEXT, ImageVectors, LabelScore, LoadFuture, QueryVectors, SpaceModel,
    TEXT,
};

/// Labels returned per image.
const LABELS: usize = 5;

fn model_id(m: &Manifest) -> String {
    format!("{}@{}", m.name, m.version)
}

/// The last dimension of a named output in a manifest.
fn output_dim(m: &Manifest, output: &str) -> Option<usize> {
    m.output(output).and_then(|o| o.shape.last().copied()).and_then(|d| usize::try_from(d).ok()).filter(|d| *d > 0)
}

/// The spaces of an image classifier + text encoder pair, from their manifests.
pub fn spaces_of(image: &Manifest, text: &Manifest) -> Vec<SpaceModel> {
    let image_id = model_id(image);
    let text_id = model_id(text);
    let text_dim = output_dim(text, "sentence_embedding").unwrap_or(0);
    vec![
        SpaceModel { space: IMAGE, model: image_id.clone(), dim: output_dim(image, "features").unwrap_or(0) },
        SpaceModel { space: TEXT, model: text_id.clone(), dim: text_dim },
        SpaceModel { space: IMAGE_TEXT, model: conse_model_id(&image_id, &text_id), dim: text_dim },
    ]
}

/// The model id of ConSE vectors: they depend on both models (and on T), so a change of
/// either must trigger a reindex.
pub fn conse_model_id(image_id: &str, text_id: &str) -> String {
    format!("conse{}:{image_id}+{text_id}", conse::TOP_T)
}

/// Provides [`DefaultEmbedders`] from the registry's `image` and `text` slots.
pub struct DefaultProvider {
    image: Arc<Slot<ImageClassifier>>,
    text: Arc<Slot<TextEncoder>>,
    spaces: Vec<SpaceModel>,
}

impl DefaultProvider {
    /// `None` unless the registry has both an image classifier and a text encoder.
    pub fn from_registry(registry: &Registry) -> Option<Self> {
        let (image, text) = (registry.image.clone()?, registry.text.clone()?);
        let spaces = spaces_of(&image.manifest(), &text.manifest());
        Some(Self { image, text, spaces })
    }
}

impl EmbedderProvider for DefaultProvider {
    fn spaces(&self) -> Vec<SpaceModel> {
        self.spaces.clone()
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            // Both models load in parallel on first use.
            let (image, text) = tokio::join!(self.image.get(), self.text.get());
            let embedders: Arc<dyn Embedders> = Arc::new(DefaultEmbedders {
                image: image?,
                text: text?,
                spaces: self.spaces.clone(),
                prompts_dir: Some(self.text.dir().to_path_buf()),
            });
            Ok(embedders)
        })
    }
}

/// EfficientNet-Lite0 + MiniLM + ConSE.
pub struct DefaultEmbedders {
    image: Arc<ImageClassifier>,
    text: Arc<TextEncoder>,
    spaces: Vec<SpaceModel>,
    /// Where the ConSE prompt matrix is kept between processes (the text model's folder).
    prompts_dir: Option<PathBuf>,
}

impl DefaultEmbedders {
    pub fn new(image: Arc<ImageClassifier>, text: Arc<TextEncoder>) -> Self {
        let spaces = vec![
            SpaceModel { space: IMAGE, model: image.model_id(), dim: image.dim },
            SpaceModel { space: TEXT, model: text.model_id(), dim: text.dim },
            SpaceModel { space: IMAGE_TEXT, model: conse_model_id(&image.model_id(), &text.model_id()), dim: text.dim },
        ];
        Self { image, text, spaces, prompts_dir: None }
    }

    /// Keeps the ConSE prompt matrix in `dir` between processes (see [`PromptMatrix::load_or_build`]).
    pub fn with_prompts_dir(mut self, dir: PathBuf) -> Self {
        self.prompts_dir = Some(dir);
        self
    }

    /// The class prompt embeddings: on first use in the process, read from disk or built.
    fn prompts(&self) -> Result<Arc<PromptMatrix>, ModelError> {
        let key = &self.spaces[2].model;
        conse::shared(key, || {
            let prompts: Vec<String> = self.image.labels.iter().map(|l| conse::prompt(&l.name)).collect();
            PromptMatrix::load_or_build(&self.text, &prompts, key, self.prompts_dir.as_deref())
        })
    }
}

impl Embedders for DefaultEmbedders {
    fn spaces(&self) -> &[SpaceModel] {
        &self.spaces
    }

    fn image_input(&self) -> (u32, u32) {
        (self.image.preprocess.width, self.image.preprocess.height)
    }

    fn embed_images(&self, images: &[&RgbImage]) -> Result<Vec<ImageVectors>, ModelError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let prompts = self.prompts()?;
        let features = self.image.run(images)?;
        Ok(features
            .into_iter()
            .map(|f| ImageVectors {
                image_text: prompts.combine(&f.probabilities),
                labels: self
                    .image
                    .top(&f.probabilities, LABELS)
                    .into_iter()
                    .map(|(l, p)| LabelScore { name: l.name.clone(), probability: p })
                    .collect(),
                image: f.embedding,
            })
            .collect())
    }

    fn embed_image_query(&self, image: &RgbImage) -> Result<Vec<f32>, ModelError> {
        let mut out = self.image.run(&[image])?;
        out.pop().map(|f| f.embedding).ok_or_else(|| ModelError::Invalid {
            model: self.image.name.clone(),
            reason: "no embedding returned".into(),
        })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        self.prompts().map(|_| ())
    }

    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.text.embed(texts)
    }

    fn embed_query(&self, query: &str) -> Result<QueryVectors, ModelError> {
        // One MiniLM space serves both: ConSE vectors live in the query's own space.
        let v = self.text.embed(&[query])?.into_iter().next().ok_or_else(|| ModelError::Invalid {
            model: self.text.name.clone(),
            reason: "no embedding returned".into(),
        })?;
        Ok(QueryVectors { image_text: v.clone(), text: v })
    }
}
