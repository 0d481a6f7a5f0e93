//! `GET /api/v1/models/skin`: the skin model's card (what it is, how good it is, what it is not),
//! read from its manifest; nothing is loaded to answer it.
//!
//! The card's facts are JSON the converter copied into the manifest's `extra` from the card
//! shipped with it (`crates/ocular-convert/data/sklesion_card.json`); no Rust type reads them, so
//! the structs below only describe them for the OpenAPI document. The serving test checks a
//! real card against that description key by key (an undeclared key fails it), so the two
//! cannot drift apart unnoticed. An imported skin model (`ocular models import --skin`) has no
//! test report, training data or intended use: those are `null`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::models::{ClassLabel, ModelSource};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/models/skin", get(card))
}

// Fields in alphabetical order and nested parts as JSON values: the body's bytes stay those of
// the `json!` map (sorted keys) this route answered before it was typed.

/// The skin model's card.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkinCard {
    #[schema(value_type = Vec<ClassLabel>)]
    classes: Value,
    input: SkinCardInput,
    #[schema(value_type = Option<String>)]
    intended_use: Value,
    /// How age, sex and body site become the model's metadata input.
    #[schema(value_type = Option<MetadataEncoding>)]
    metadata: Value,
    name: String,
    not_a_diagnosis: &'static str,
    #[schema(value_type = Option<ModelSource>)]
    source: Value,
    /// The published evaluation on the training data's test split.
    #[schema(value_type = Option<TestReport>)]
    test_report: Value,
    #[schema(value_type = Option<String>)]
    training_data: Value,
    /// Whether the model reads `age`, `sex` and `location` (false for an image-only skin model:
    /// the analysis page then hides those fields).
    uses_metadata: bool,
    version: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkinCardInput {
    /// The layer Grad-CAM explains.
    gradcam_layer: Option<String>,
    #[schema(value_type = Option<PixelRecipe>)]
    image: Value,
}

/// The schema of the card's `metadata`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MetadataEncoding {
    /// Ages are divided by this.
    age_max: f64,
    /// A missing age is filled with this.
    age_mean: f64,
    /// The accepted body sites, in one-hot order.
    location: Vec<String>,
    /// The accepted sexes, in one-hot order.
    sex: Vec<String>,
    /// How the values are laid out in the input vector.
    vector: String,
}

/// The schema of the card's `test_report` (scikit-learn's classification report of the test
/// split, with its balanced accuracy).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TestReport {
    accuracy: f64,
    balanced_accuracy: f64,
    /// Images in the test split.
    images: u64,
    macro_f1: f64,
    macro_precision: f64,
    /// By class code.
    per_class: std::collections::BTreeMap<String, ClassReport>,
}

/// One class of the test report.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ClassReport {
    #[schema(rename = "f1-score")]
    f1_score: f64,
    precision: f64,
    recall: f64,
    /// Test images of this class.
    support: u64,
}

/// The schema of [`ocular_core::ImagePreprocess`]: the model sees
/// `(pixel * scale - mean[c]) / std[c]` for 0..255 pixels after resizing.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PixelRecipe {
    width: u32,
    height: u32,
    resize: ResizeRecipe,
    layout: LayoutRecipe,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
}

/// The schema of [`ocular_core::ResizeMode`].
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResizeRecipe {
    BilinearTf,
    ShortestBicubicCenterCrop,
}

/// The schema of [`ocular_core::Layout`].
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LayoutRecipe {
    Nhwc,
    Nchw,
}

async fn card(State(state): State<AppState>) -> Result<Json<SkinCard>, ApiError> {
    let slot = state
        .registry
        .skin
        .clone()
        .ok_or_else(|| ApiError::ModelUnavailable(ocular_models::ModelError::NotConfigured("sklesion".into())))?;
    let m = slot.manifest();
    Ok(Json(SkinCard {
        classes: json(&m.labels),
        input: SkinCardInput { gradcam_layer: m.gradcam.as_ref().map(|g| g.layer.clone()), image: json(&m.image) },
        intended_use: m.extra["intended_use"].clone(),
        metadata: m.extra["metadata"].clone(),
        name: m.name.clone(),
        not_a_diagnosis: ocular_models::analysis::DISCLAIMER,
        source: json(&m.source),
        test_report: m.extra["test_report"].clone(),
        training_data: m.extra["training_data"].clone(),
        uses_metadata: m.inputs.iter().any(|i| i.shape.len() == 2),
        version: m.version.clone(),
    }))
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}
