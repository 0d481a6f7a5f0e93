//! What a model's answer looks like to clients: one type per kind of answer, shared by the HTTP
//! API, the CLI's `--json` and (for analyses) the stored record.
//!
//! [`SkinReport`] is the skin analysis. HTTP and the CLI used to build `serde_json::Value`s by
//! hand, in two shapes: HTTP said `heatmap` and gave `malignant_probability`, the CLI said
//! `gradcam` and had neither that nor the model and image facts. The fields here are the HTTP
//! API's names, unchanged (clients and stored analyses depend on them); the server adds the
//! analysis's id, URLs and timings around it.
//!
//! [`PredictReport`] is an imported classifier's prediction (`POST /api/v1/models/{name}/predict`
//! and `ocular predict --json`); it lives here rather than in the server so the CLI prints the
//! HTTP body without depending on the web crate. Only the server fills
//! [`PredictedGradcam::overlay_url`] (the CLI writes the overlay to a file instead).

use serde::Serialize;

use crate::analysis::{self, Analyzed, Timings};
use crate::classifier::{Classifier, Prediction};
use crate::skin::{self, SkinModel};
use crate::skin_check::InputCheck;

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClassScore {
    pub code: String,
    pub name: String,
    pub probability: f32,
    /// Whether the class is malignant (`false` when the model card does not say).
    pub malignant: bool,
}

/// The Grad-CAM grid of the predicted class: rows of values in 0..1.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Heatmap {
    pub grid: Vec<Vec<f32>>,
    /// The code of the class it explains.
    pub class: String,
}

/// Which model answered, and its published balanced accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelFacts {
    pub name: String,
    pub version: String,
    /// From the model card's test report; `null` when it has none.
    #[schema(value_type = Option<f64>)]
    pub balanced_accuracy: serde_json::Value,
    /// False for an image-only skin model (`ocular models import --skin`): the age, sex and
    /// body site sent were not used.
    pub uses_metadata: bool,
}

/// The photo's size as decoded (after EXIF rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// An analysis result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SkinReport {
    pub prediction: ClassScore,
    /// Every class, in the model's label order.
    pub probabilities: Vec<ClassScore>,
    /// The summed probability of the malignant classes.
    pub malignant_probability: f32,
    pub input_check: InputCheck,
    /// Analysed although the input check said it is not skin (`?force=true`).
    pub forced: bool,
    /// `null` when Grad-CAM did not run.
    pub heatmap: Option<Heatmap>,
    pub model: ModelFacts,
    pub image: ImageSize,
    #[schema(value_type = String)]
    pub disclaimer: &'static str,
}

impl SkinReport {
    pub fn new(skin: &SkinModel, a: &Analyzed) -> Self {
        let class = |i: usize| {
            let l = &skin.labels[i];
            ClassScore {
                code: l.code.clone(),
                name: l.name.clone(),
                probability: a.probabilities[i],
                malignant: l.malignant.unwrap_or(false),
            }
        };
        let malignant_probability =
            a.probabilities.iter().zip(&skin.labels).filter(|(_, l)| l.malignant == Some(true)).map(|(p, _)| p).sum();
        SkinReport {
            prediction: class(skin::argmax(&a.probabilities)),
            probabilities: (0..a.probabilities.len()).map(class).collect(),
            malignant_probability,
            input_check: a.input_check.clone(),
            forced: a.forced,
            heatmap: a.gradcam.as_ref().map(|g| Heatmap {
                grid: g.values.chunks(g.width).map(<[f32]>::to_vec).collect(),
                class: skin.labels[g.class].code.clone(),
            }),
            model: ModelFacts {
                name: skin.name.clone(),
                version: skin.version.clone(),
                balanced_accuracy: skin.card["test_report"]["balanced_accuracy"].clone(),
                uses_metadata: skin.uses_metadata(),
            },
            image: ImageSize { width: a.width, height: a.height },
            disclaimer: analysis::DISCLAIMER,
        }
    }
}

/// An imported classifier's answer for one photo.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PredictReport {
    pub model: ModelRef,
    /// The `top_k` best classes, best first, with the model's output value as `probability`.
    pub predictions: Vec<PredictedClass>,
    pub gradcam: Option<PredictedGradcam>,
    pub image: ImageSize,
    pub timings_ms: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

/// One class of a prediction (named apart from the analysis's `ClassScore`, which has no
/// `index`: OpenAPI components are keyed by name).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PredictedClass {
    pub index: usize,
    pub code: String,
    pub name: String,
    pub probability: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malignant: Option<bool>,
}

/// The Grad-CAM grid of a prediction's top class.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PredictedGradcam {
    /// Code of the class it explains (the top one).
    pub class: String,
    pub width: usize,
    pub height: usize,
    /// `height` rows of `width` values in [0, 1].
    pub grid: Vec<Vec<f32>>,
    /// The overlay on the photo (≤ 640 px), as a `data:image/jpeg;base64,` URL; absent from
    /// `ocular predict --json` (it writes `--heatmap FILE` instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay_url: Option<String>,
}

impl PredictReport {
    /// The report of `p` with its `top_k` best classes (at least one), without the overlay URL.
    pub fn new(model: &Classifier, p: &Prediction, top_k: usize) -> Self {
        let predictions = model
            .top(&p.scores, top_k.max(1))
            .into_iter()
            .map(|(i, score)| {
                let l = &model.labels[i];
                PredictedClass {
                    index: i,
                    code: l.code.clone(),
                    name: l.name.clone(),
                    probability: score,
                    malignant: l.malignant,
                }
            })
            .collect();
        let gradcam = p.gradcam.as_ref().map(|g| PredictedGradcam {
            class: model.labels.get(g.class).map_or_else(|| g.class.to_string(), |l| l.code.clone()),
            width: g.width,
            height: g.height,
            grid: g.values.chunks(g.width.max(1)).map(<[f32]>::to_vec).collect(),
            overlay_url: None,
        });
        PredictReport {
            model: ModelRef { name: model.name.clone(), version: model.version.clone() },
            predictions,
            gradcam,
            image: ImageSize { width: p.width, height: p.height },
            timings_ms: p.timings.clone(),
        }
    }
}
