//! The embedder interface: what turns product photos, product texts and queries into vectors.
//!
//! A catalog has three *spaces*, each holding vectors comparable with one another:
//!
//! | space        | product vector                       | query vector          |
//! |--------------|--------------------------------------|-----------------------|
//! | `image`      | the photo's image embedding          | a query photo's       |
//! | `text`       | title + description, text embedding  | a text query's        |
//! | `image_text` | the photo mapped into the text space | a text query's        |
//!
//! `image_text` is what lets a text query find a product by what its photo shows. The default
//! models ([`default::DefaultProvider`]: EfficientNet-Lite0 + all-MiniLM-L6-v2) fill it with
//! ConSE ([`conse`]), a zero-shot fallback limited to ImageNet concepts; the CLIP provider
//! ([`clip::ClipProvider`]) fills it with CLIP's image tower and embeds queries with CLIP's text
//! tower. Callers never know which: they hold an `Arc<dyn Embedders>` and an
//! `Arc<dyn EmbedderProvider>`. A provider may leave a space unfilled (CLIP without its text
//! tower has no `text` space); the catalog then answers `model_not_configured` for it.
//!
//! Every stored vector carries the `model` id of its space ([`SpaceModel::model`]), so a
//! change of model is detected at start-up instead of silently mixing incomparable vectors.

pub mod clip;
pub mod conse;
mod conse_file;
pub mod default;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ocular_image::image::RgbImage;
use ocular_models::ModelError;
use ocular_models::clip::ClipError;
use serde::Serialize;

/// The image space: photo against photo.
pub const IMAGE: &str = "image";
/// The text space: product title + description against text queries.
pub const TEXT: &str = "text";
/// Photos mapped into the space of text queries.
pub const IMAGE_TEXT: &str = "image_text";
/// Every space, in the order the catalog keeps them.
pub const SPACES: [&str; 3] = [IMAGE, TEXT, IMAGE_TEXT];

/// Which model fills a space, known from manifests before any model loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceModel {
    pub space: &'static str,
    /// Stored with every vector (`name@version`, or a composite for derived spaces).
    pub model: String,
    pub dim: usize,
}

/// A class the image model recognised, or a zero-shot label's score, for `/api/v1/embed/image`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LabelScore {
    pub name: String,
    pub probability: f32,
}

/// Everything one photo yields.
#[derive(Debug, Clone)]
pub struct ImageVectors {
    /// `image` space, L2-normalised.
    pub image: Vec<f32>,
    /// `image_text` space, L2-normalised.
    pub image_text: Vec<f32>,
    /// The most probable labels, best first (empty for models without labels).
    pub labels: Vec<LabelScore>,
}

/// A text query in every space a text query searches.
#[derive(Debug, Clone)]
pub struct QueryVectors {
    pub text: Vec<f32>,
    pub image_text: Vec<f32>,
}

/// Loaded models, ready to embed. Methods block (they run inference): call them from a
/// blocking thread after admission.
pub trait Embedders: Send + Sync {
    /// The model of each space, in [`SPACES`] order.
    fn spaces(&self) -> &[SpaceModel];

    /// The smallest decoded size (width, height) the image model needs, which lets large
    /// JPEGs be decoded at reduced scale.
    fn image_input(&self) -> (u32, u32);

    /// Embeds a batch of photos.
    fn embed_images(&self, images: &[&RgbImage]) -> Result<Vec<ImageVectors>, ModelError>;

    /// Embeds a query photo into the `image` space only (no `image_text` work).
    fn embed_image_query(&self, image: &RgbImage) -> Result<Vec<f32>, ModelError>;

    /// Prepares what the first real call would otherwise pay for (ConSE's class prompts).
    fn warm_up(&self) -> Result<(), ModelError> {
        Ok(())
    }

    /// Embeds product texts (see [`product_text`]) into the `text` space.
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError>;

    /// Embeds a text query for the `text` and `image_text` spaces.
    fn embed_query(&self, query: &str) -> Result<QueryVectors, ModelError>;

    /// Zero-shot classification of an image embedding (from [`Self::embed_images`]) against
    /// free-text labels, best first; `None` when these models cannot read free text as labels
    /// (the default models know only ImageNet's classes).
    fn score_labels(&self, _image: &[f32], _labels: &[&str]) -> Option<Result<Vec<LabelScore>, ClipError>> {
        None
    }
}

/// A future that loads the embedders.
pub type LoadFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<dyn Embedders>, ModelError>> + Send + 'a>>;

/// Where [`Embedders`] come from: knows its spaces' models without loading anything, and
/// loads the models once (the registry's single-flight slots) when asked.
pub trait EmbedderProvider: Send + Sync {
    /// The model of each space, in [`SPACES`] order, from manifests only.
    fn spaces(&self) -> Vec<SpaceModel>;

    /// The loaded embedders (loading the models on first use).
    fn load(&self) -> LoadFuture<'_>;

    /// Why a space this provider leaves out of [`Self::spaces`] cannot be searched, for the
    /// error a request for it gets.
    fn unconfigured(&self, space: &str) -> String {
        format!("for the `{space}` search space")
    }
}

/// The text of a product that the `text` space embeds: title and description, which say what
/// the product is; category and attributes are filters, not meaning.
pub fn product_text(title: &str, description: &str) -> String {
    let (title, description) = (title.trim(), description.trim());
    if description.is_empty() { title.to_string() } else { format!("{title}. {description}") }
}

/// Whether `embedders` fill `space` (CLIP without its text tower leaves `text` out).
pub fn fills(embedders: &dyn Embedders, space: &str) -> bool {
    model_of(embedders.spaces(), space).is_some()
}

/// The model of `space` in a list of [`SpaceModel`]s.
pub fn model_of<'a>(spaces: &'a [SpaceModel], space: &str) -> Option<&'a SpaceModel> {
    spaces.iter().find(|s| s.space == space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_texts() {
        assert_eq!(product_text(" Mug ", ""), "Mug");
        assert_eq!(product_text("Mug", " White stoneware. "), "Mug. White stoneware.");
    }
}
