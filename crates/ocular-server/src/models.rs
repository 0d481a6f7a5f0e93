//! Imported classifiers over HTTP: `GET /api/v1/models` (every served model with its card) and
//! `POST /api/v1/models/{name}/predict` (multipart `image` plus one text field per extra numeric
//! input the model declares).
//!
//! A prediction takes the analysis's road: the same early refusals (unknown model, full queue)
//! before the upload is read, the same bounded form reader, the same memory reservation and
//! admission ([`AppState::infer_reserving`] with [`ocular_models::estimate::predict`]: the
//! full-resolution decode and the thumbnail as an analysis, and the imported graph's own
//! activations instead of sklesion's), the same decode limits
//! and error envelope. Predictions are not stored: nothing about the photo outlives the request,
//! so the overlay travels inline as a `data:` URL instead of a link to a stored image.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use ocular_core::{Label, Manifest, ModelKind};
use ocular_models::ModelState;
use ocular_models::classifier::{self, ExtraInput, PredictError};
use ocular_models::report::PredictReport;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// Most classes one answer lists.
pub const MAX_TOP_K: usize = 1000;
const DEFAULT_TOP_K: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/models", get(list)).route("/api/v1/models/{name}/predict", post(predict))
}

/// `GET /api/v1/models`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelCard>,
}

/// What a served model is and how to call it, from its manifest (nothing is loaded to list it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    /// `classifier` (imported, served at `predict_url`) or `skin_classifier` (`/api/v1/analyze`).
    pub kind: &'static str,
    pub state: ModelState,
    pub predict_url: String,
    pub input: CardInput,
    #[schema(value_type = Vec<ClassLabel>)]
    pub classes: Vec<Label>,
    /// The layer Grad-CAM explains, when exact Grad-CAM is available.
    pub gradcam_layer: Option<String>,
    /// Why exact Grad-CAM is not available, when the import recorded it.
    pub gradcam_unavailable: Option<String>,
    #[schema(value_type = Option<ModelSource>)]
    pub source: Option<ocular_core::Source>,
}

/// The schema of [`ocular_core::Label`] (the core crate derives no schemas); the serving test
/// checks real cards against it, so the two cannot drift apart unnoticed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ClassLabel {
    pub code: String,
    pub name: String,
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// Skin models: whether the class is malignant.
    #[schema(nullable = false)]
    pub malignant: Option<bool>,
}

/// The schema of [`ocular_core::Source`]: where the model's weights came from.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ModelSource {
    /// `local file` for an import.
    pub package: String,
    pub version: String,
    pub license: String,
    /// The imported file's path, or the weights file inside the package.
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CardInput {
    pub width: u32,
    pub height: u32,
    /// The model sees `(pixel * scale - mean) / std` for pixels 0..255.
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Numeric inputs besides the photo: one form field each, `size` numbers separated by
    /// commas or spaces.
    pub extra: Vec<ExtraInput>,
    /// The skin model takes `age`, `sex` and `location` (false for image-only skin models and
    /// for classifiers).
    pub metadata: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct PredictQuery {
    /// Classes to return, best first (default 5, at most [`MAX_TOP_K`]).
    pub top_k: Option<usize>,
    /// Compute Grad-CAM (default: the server's `--enable-gradcam`).
    pub gradcam: Option<bool>,
}

impl From<PredictError> for ApiError {
    fn from(e: PredictError) -> Self {
        match e {
            PredictError::Image(e) => ApiError::Image(e),
            e @ PredictError::Input { .. } => ApiError::bad_request(Code::InvalidModelInput, e.to_string()),
            PredictError::Model(e) => e.into(),
        }
    }
}

fn card(m: &Manifest, state: ModelState) -> ModelCard {
    let skin = m.kind == ModelKind::SkinClassifier;
    let pre = m.image.clone().unwrap_or(ocular_core::ImagePreprocess {
        width: 0,
        height: 0,
        resize: ocular_core::ResizeMode::BilinearTf,
        layout: ocular_core::Layout::Nhwc,
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    });
    ModelCard {
        name: m.name.clone(),
        version: m.version.clone(),
        kind: if skin { "skin_classifier" } else { "classifier" },
        state,
        predict_url: if skin { "/api/v1/analyze".into() } else { format!("/api/v1/models/{}/predict", m.name) },
        input: CardInput {
            width: pre.width,
            height: pre.height,
            scale: pre.scale,
            mean: pre.mean,
            std: pre.std,
            extra: if skin { Vec::new() } else { classifier::extra_inputs_of(m) },
            metadata: skin && m.inputs.iter().any(|i| i.shape.len() == 2),
        },
        classes: m.labels.clone(),
        gradcam_layer: m.gradcam.as_ref().map(|g| g.layer.clone()),
        gradcam_unavailable: m.extra["gradcam_unavailable"].as_str().map(str::to_string),
        source: m.source.clone(),
    }
}

/// `GET /api/v1/models`: the skin model (when installed) and every imported classifier.
async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let states: HashMap<String, ModelState> =
        state.registry.statuses().into_iter().map(|s| (s.name, s.state)).collect();
    let state_of = |m: &Manifest| states.get(&m.name).copied().unwrap_or(ModelState::NotLoaded);
    let skin = state.registry.skin.iter().map(|s| s.manifest());
    let imported = state.registry.classifiers().into_iter().map(|s| s.manifest());
    Json(ModelList { models: skin.chain(imported).map(|m| card(&m, state_of(&m))).collect() })
}

/// Refusals that need no photo come before reading it, as for analyses: an unknown model, an
/// invalid query, a full queue.
async fn predict(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<PredictQuery>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let slot = state
        .registry
        .classifier(&name)
        .ok_or_else(|| ApiError::ModelUnavailable(ocular_models::ModelError::NotConfigured(name.clone())))?;
    let top_k = q.top_k.unwrap_or(DEFAULT_TOP_K);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(ApiError::bad_request(Code::InvalidQuery, format!("top_k must be 1 to {MAX_TOP_K}, got {top_k}")));
    }
    state.admission.check_room()?;
    let mut form = crate::form::read_form(req, &state, "image").await?;
    let model = slot.get().await?;
    if let Some(unknown) = form.fields.keys().find(|k| !model.extra_inputs().iter().any(|e| &e.name == *k)) {
        let inputs: Vec<&str> = model.extra_inputs().iter().map(|e| e.name.as_str()).collect();
        return Err(ApiError::bad_request(
            Code::InvalidModelInput,
            format!("field `{unknown}` is not an input of model {name}; its inputs besides `image`: {inputs:?}"),
        ));
    }
    let mut extras = HashMap::new();
    for e in model.extra_inputs() {
        extras.insert(e.name.clone(), model.parse_extra(&e.name, form.text(&e.name))?);
    }
    let bytes = form.require_file("image")?;
    let limits = state.image_limits();
    let gradcam = q.gradcam.unwrap_or(state.config.enable_gradcam);
    let cost = ocular_models::estimate::predict(&bytes, &limits, model.activation_bytes);
    let run = model.clone();
    let started = std::time::Instant::now();
    let p = state
        .infer_reserving(cost, move || {
            classifier::predict(&run, &bytes, &limits, &extras, gradcam).map_err(ApiError::from)
        })
        .await?;
    crate::metrics::record_inference(&model.name, started.elapsed().as_secs_f64());
    let mut body = PredictReport::new(&model, &p, top_k);
    // Predictions are not stored, so the overlay travels inline.
    if let (Some(g), Some(jpeg)) = (body.gradcam.as_mut(), &p.heatmap_jpeg) {
        g.overlay_url =
            Some(format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg)));
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}
