//! The CLIP embedders (Radford et al. 2021, <https://arxiv.org/abs/2103.00020>): one space for
//! photos and words, so text-to-image search needs no ConSE.
//!
//! | space        | product vector                          | query vector            |
//! |--------------|-----------------------------------------|-------------------------|
//! | `image`      | the photo through the image tower       | a query photo's, same   |
//! | `image_text` | the *same* image-tower vector           | the text tower's        |
//! | `text`       | title + description through the text tower | the text tower's     |
//!
//! Why `image` and `image_text` hold the same vector: CLIP's image embedding already lives in
//! the space text queries are embedded in, so there is nothing to map (ConSE exists only
//! because EfficientNet's features do not). Both spaces are kept, rather than one, so that the
//! catalog, reindexing and the API stay the same whichever models are configured, and so a
//! product's photo vectors are already there when a text tower is installed later. The cost is
//! a second int8 copy in memory (512 B per product at ViT-B/32's 512 dimensions).
//!
//! Why the text tower also fills `text` (rather than keeping MiniLM for it): with CLIP
//! configured one model reads every text, so a text query costs one inference instead of two
//! and MiniLM need not be resident at all; the catalog text and the query are compared by the
//! same model either way. The price is CLIP's 77-token window (longer descriptions are
//! truncated) and a text tower trained on captions rather than sentence similarity; the BM25
//! ranking of hybrid search still sees the whole text, which covers exact words.
//!
//! Either tower loads alone. Without the text tower (image-only install: less memory) the
//! `text` space is not configured: photo search works, product texts are not embedded, and
//! text search, text embedding and zero-shot labels answer `model_not_configured`.
//!
//! Model ids come from the manifests (`name@version`, version = the graph's sha256 prefix),
//! so switching from the default models, or to other CLIP weights, makes every affected space
//! answer `reindex_required` until `ocular reindex` recomputes the stored vectors.

use std::sync::Arc;

use ocular_core::Manifest;
use ocular_image::image::RgbImage;
use ocular_models::clip::{ClipError, ClipImageEncoder, ClipTextEncoder, embedding_dim};
use ocular_models::{ModelError, Registry, Slot};

use super::{
    EmbedderProvider, Embedders, IMAGE, IMAGE_TEXT, ImageVectors, LabelScore, LoadFuture, QueryVectors, SpaceModel,
    TEXT,
};

/// Why a registry cannot provide CLIP embedders; start-up reports it and stops.
#[derive(Debug, thiserror::Error)]
pub enum ClipSetupError {
    #[error(
        "the CLIP search models are selected but no CLIP image tower is installed in the models directory; install \
         one with `ocular models import-clip DIR` (or `ocular models fetch clip` on a machine with a network)"
    )]
    NoImageTower,
    #[error("cannot tell the embedding width of CLIP tower {model} from its manifest (its output shape is dynamic)")]
    UnknownDim { model: String },
    #[error(
        "the CLIP towers do not match: image tower {image} makes {image_dim}-d embeddings, text tower {text} makes \
         {text_dim}-d; install both towers of one export"
    )]
    DimensionMismatch { image: String, image_dim: usize, text: String, text_dim: usize },
}

fn model_id(m: &Manifest) -> String {
    format!("{}@{}", m.name, m.version)
}

fn dim_of(m: &Manifest) -> Result<usize, ClipSetupError> {
    embedding_dim(m).ok_or_else(|| ClipSetupError::UnknownDim { model: model_id(m) })
}

/// The spaces of a CLIP install, from the towers' manifests (the text tower may be absent).
pub fn spaces_of(image: &Manifest, text: Option<&Manifest>) -> Result<Vec<SpaceModel>, ClipSetupError> {
    let image_id = model_id(image);
    let image_dim = dim_of(image)?;
    let mut spaces = vec![SpaceModel { space: IMAGE, model: image_id.clone(), dim: image_dim }];
    if let Some(text) = text {
        let text_dim = dim_of(text)?;
        if text_dim != image_dim {
            return Err(ClipSetupError::DimensionMismatch {
                image: image_id,
                image_dim,
                text: model_id(text),
                text_dim,
            });
        }
        if text.extra.get("pair") != image.extra.get("pair") {
            // Towers imported one at a time get different pair ids, so this is only a hint.
            tracing::warn!(
                image = %image_id, text = %model_id(text),
                "the CLIP towers were not installed together; make sure they come from one model"
            );
        }
        spaces.push(SpaceModel { space: TEXT, model: model_id(text), dim: text_dim });
    }
    // The stored `image_text` vector is the image tower's output, so its id is that tower's.
    spaces.push(SpaceModel { space: IMAGE_TEXT, model: image_id, dim: image_dim });
    Ok(spaces)
}

/// Provides [`ClipEmbedders`] from the registry's `clip_image` and (optional) `clip_text` slots.
pub struct ClipProvider {
    image: Arc<Slot<ClipImageEncoder>>,
    text: Option<Arc<Slot<ClipTextEncoder>>>,
    spaces: Vec<SpaceModel>,
}

impl ClipProvider {
    /// Reads only manifests; fails when no image tower is installed or the towers disagree.
    pub fn from_registry(registry: &Registry) -> Result<Self, ClipSetupError> {
        let image = registry.clip_image.clone().ok_or(ClipSetupError::NoImageTower)?;
        let text = registry.clip_text.clone();
        let text_manifest = text.as_ref().map(|t| t.manifest());
        let spaces = spaces_of(&image.manifest(), text_manifest.as_deref())?;
        Ok(Self { image, text, spaces })
    }
}

impl EmbedderProvider for ClipProvider {
    fn spaces(&self) -> Vec<SpaceModel> {
        self.spaces.clone()
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let text = async {
                match &self.text {
                    Some(slot) => slot.get().await.map(Some),
                    None => Ok(None),
                }
            };
            let (image, text) = tokio::join!(self.image.get(), text);
            let embedders: Arc<dyn Embedders> =
                Arc::new(ClipEmbedders { image: image?, text: text?, spaces: self.spaces.clone() });
            Ok(embedders)
        })
    }

    fn unconfigured(&self, space: &str) -> String {
        format!(
            "`clip_text` (the `{space}` search space needs the CLIP text tower; this CLIP install is image-only: \
             install the text tower with `ocular models import-clip`)"
        )
    }
}

/// The loaded CLIP towers.
pub struct ClipEmbedders {
    image: Arc<ClipImageEncoder>,
    text: Option<Arc<ClipTextEncoder>>,
    spaces: Vec<SpaceModel>,
}

impl ClipEmbedders {
    fn text(&self) -> Result<&ClipTextEncoder, ModelError> {
        self.text.as_deref().ok_or_else(|| {
            ModelError::NotConfigured(
                "`clip_text` (the CLIP text tower reads text and labels; this CLIP install is image-only: install \
                 the text tower with `ocular models import-clip`)"
                    .into(),
            )
        })
    }

    fn one(&self, mut rows: Vec<Vec<f32>>, model: &str) -> Result<Vec<f32>, ModelError> {
        rows.pop()
            .ok_or_else(|| ModelError::Invalid { model: model.to_string(), reason: "no embedding returned".into() })
    }
}

impl Embedders for ClipEmbedders {
    fn spaces(&self) -> &[SpaceModel] {
        &self.spaces
    }

    fn image_input(&self) -> (u32, u32) {
        (self.image.preprocess.width, self.image.preprocess.height)
    }

    fn embed_images(&self, images: &[&RgbImage]) -> Result<Vec<ImageVectors>, ModelError> {
        Ok(self
            .image
            .embed(images)?
            .into_iter()
            .map(|v| ImageVectors { image_text: v.clone(), image: v, labels: Vec::new() })
            .collect())
    }

    fn embed_image_query(&self, image: &RgbImage) -> Result<Vec<f32>, ModelError> {
        self.one(self.image.embed(&[image])?, &self.image.name)
    }

    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.text()?.embed(texts)
    }

    fn embed_query(&self, query: &str) -> Result<QueryVectors, ModelError> {
        let text = self.text()?;
        // One vector serves both spaces: CLIP's text and image embeddings share one space.
        let v = self.one(text.embed(&[query])?, &text.name)?;
        Ok(QueryVectors { image_text: v.clone(), text: v })
    }

    fn score_labels(&self, image: &[f32], labels: &[&str]) -> Option<Result<Vec<LabelScore>, ClipError>> {
        let text = match self.text() {
            Ok(t) => t,
            Err(e) => return Some(Err(e.into())),
        };
        let scored = text
            .score_labels(image, labels)
            .map(|scored| scored.into_iter().map(|(name, probability)| LabelScore { name, probability }).collect());
        Some(scored)
    }
}
