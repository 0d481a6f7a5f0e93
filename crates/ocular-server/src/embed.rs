//! Raw embeddings for users who keep their own vector database:
//! `POST /api/v1/embed/image` (multipart `image`) → the image-space vector, its model and the
//! top-5 ImageNet labels; `POST /api/v1/embed/text` (`{"text": "..."}`) → the text-space vector
//! and its model. These are the same vectors the catalog stores, from the same embedders.
//!
//! Zero-shot labels (CLIP only): `POST /api/v1/embed/image` with a multipart text field
//! `labels` scores the photo against free-text labels instead of ImageNet's classes. The field
//! holds either a JSON array of strings (`["a red mug", "a blue teapot"]`) or one label per
//! line; one field, since a repeated field keeps only its last value. `labels` in the answer is
//! then every given label with its probability, best first: CLIP's softmax over
//! `logit_scale · cos(image, label)` (`ClipTextEncoder::score_labels`). At most
//! [`MAX_LABELS`] labels of at most [`MAX_LABEL_CHARS`] characters each: every label is one
//! text-tower inference. With the default models the field is refused (`400
//! labels_need_clip`: they only know ImageNet's classes); with an image-only CLIP install it
//! answers `404 model_not_configured` (no text tower).

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use ocular_models::clip::ClipError;
use ocular_search::Embedders;
use ocular_search::embed::{IMAGE, LabelScore, TEXT, model_of};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::form::read_form;
use crate::json::ApiJson;
use crate::search::{api_error, require_catalog};
use crate::search_models::SearchModels;
use crate::state::AppState;

/// Longest text accepted (MiniLM reads 256 tokens; more text only costs tokenisation).
const MAX_TEXT_CHARS: usize = 10_000;
/// Most zero-shot labels per request: each is a text-tower inference (one batch).
pub const MAX_LABELS: usize = 64;
/// Longest label, in characters (CLIP reads 77 tokens; more text is truncated anyway).
pub const MAX_LABEL_CHARS: usize = 300;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/embed/image", post(image)).route("/api/v1/embed/text", post(text))
}

/// `POST /api/v1/embed/image`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImageEmbedding {
    /// The photo's vector in the `image` space, L2-normalised.
    embedding: Vec<f32>,
    /// The vector's length.
    dim: usize,
    /// The id of the model that made it; `null` when no installed model fills the space.
    model: Option<String>,
    /// With `labels`: each label's zero-shot probability (CLIP). Without: the ImageNet classes
    /// the default image model recognised (empty under CLIP).
    labels: Vec<LabelScore>,
}

/// `POST /api/v1/embed/text`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TextEmbedding {
    /// The text's vector in the `text` space, L2-normalised.
    embedding: Vec<f32>,
    /// The vector's length.
    dim: usize,
    /// The id of the model that made it; `null` when no installed model fills the space.
    model: Option<String>,
}

async fn image(State(state): State<AppState>, req: Request) -> Result<Json<ImageEmbedding>, ApiError> {
    let catalog = require_catalog(&state)?;
    state.admission.check_room()?;
    let mut form = read_form(req, &state, "image").await?;
    let labels = form.fields.get("labels").map(|f| parse_labels(f)).transpose()?;
    if labels.is_some() && state.config.search_models != SearchModels::Clip {
        return Err(ApiError::bad_request(
            Code::LabelsNeedClip,
            "free-text labels need the CLIP search models (--search-models clip); the default models only know \
             ImageNet's classes, which this endpoint returns without `labels`",
        ));
    }
    let bytes = form.require_file("image")?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let model = model_of(embedders.spaces(), IMAGE).map(|m| m.model.clone());
    // The photo, plus one text batch when labels are scored.
    let cost = ocular_models::estimate::embed_image(&bytes, &state.image_limits(), embedders.image_input(), true);
    let (vectors, scored) = state
        .infer_reserving(cost, move || {
            let decoded = catalog.decode(embedders.as_ref(), &bytes).map_err(api_error)?;
            let mut out = embedders.embed_images(&[&decoded.image]).map_err(ApiError::from)?;
            let vectors = out
                .pop()
                .ok_or_else(|| ApiError::internal(std::io::Error::other("the image model returned nothing")))?;
            let scored = match &labels {
                Some(labels) => Some(zero_shot(embedders.as_ref(), &vectors.image, labels)?),
                None => None,
            };
            Ok((vectors, scored))
        })
        .await?;
    Ok(Json(ImageEmbedding {
        dim: vectors.image.len(),
        embedding: vectors.image,
        model,
        labels: scored.unwrap_or(vectors.labels),
    }))
}

/// Scores `labels` with the loaded embedders (CLIP's text tower).
fn zero_shot(embedders: &dyn Embedders, image: &[f32], labels: &[String]) -> Result<Vec<LabelScore>, ApiError> {
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    match embedders.score_labels(image, &refs) {
        None => Err(ApiError::bad_request(
            Code::LabelsNeedClip,
            "the configured search models cannot score free-text labels",
        )),
        Some(Ok(scored)) => Ok(scored),
        Some(Err(ClipError::Model(e))) => Err(e.into()),
        // Labels are validated above and the towers' widths at start-up: a bug if reached.
        Some(Err(e)) => Err(ApiError::internal(e)),
    }
}

/// The `labels` field: a JSON array of strings, or one label per line (see the module docs).
/// Labels are trimmed, and blank lines dropped; duplicates are refused (they would split
/// their probability and say nothing).
pub fn parse_labels(field: &str) -> Result<Vec<String>, ApiError> {
    let invalid = |m: String| ApiError::bad_request(Code::InvalidLabels, m);
    let field = field.trim();
    let raw: Vec<String> = if field.starts_with('[') {
        serde_json::from_str(field)
            .map_err(|e| invalid(format!("`labels` starts with `[` but is not a JSON array of strings: {e}")))?
    } else {
        field.lines().map(str::to_string).collect()
    };
    let labels: Vec<String> = raw.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        return Err(invalid("`labels` holds no label".into()));
    }
    if labels.len() > MAX_LABELS {
        return Err(invalid(format!("`labels` holds {} labels; at most {MAX_LABELS} are allowed", labels.len())));
    }
    if let Some(long) = labels.iter().find(|l| l.chars().count() > MAX_LABEL_CHARS) {
        let start: String = long.chars().take(40).collect();
        return Err(invalid(format!("the label starting {start:?} is longer than {MAX_LABEL_CHARS} characters")));
    }
    for (i, l) in labels.iter().enumerate() {
        if labels[..i].contains(l) {
            return Err(invalid(format!("the label {l:?} is given twice")));
        }
    }
    Ok(labels)
}

/// `POST /api/v1/embed/text`: the text to embed (1 to 10,000 characters).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TextEmbedRequest)]
pub(crate) struct TextBody {
    text: String,
}

async fn text(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Json<TextEmbedding>, ApiError> {
    let text = body.text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("text must be 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    let catalog = require_catalog(&state)?;
    let embedders = catalog.embedders().await.map_err(api_error)?;
    let model = model_of(embedders.spaces(), TEXT).map(|m| m.model.clone());
    let embedding = state
        .infer(move || {
            let mut out = embedders.embed_texts(&[&text]).map_err(ApiError::from)?;
            out.pop().ok_or_else(|| ApiError::internal(std::io::Error::other("the text model returned nothing")))
        })
        .await?;
    Ok(Json(TextEmbedding { dim: embedding.len(), embedding, model }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: ApiError) -> &'static str {
        e.status_code().1
    }

    #[test]
    fn labels_come_as_a_json_array_or_lines() {
        assert_eq!(parse_labels(r#"["a cat", " a dog "]"#).expect("json"), ["a cat", "a dog"]);
        assert_eq!(parse_labels("a cat\n\n a rocket, red \r\n").expect("lines"), ["a cat", "a rocket, red"]);
        assert_eq!(code(parse_labels("[1, 2]").expect_err("numbers")), "invalid_labels");
        assert_eq!(code(parse_labels(" \n ").expect_err("blank")), "invalid_labels");
        assert_eq!(code(parse_labels("a\na").expect_err("twice")), "invalid_labels");
    }

    #[test]
    fn labels_are_bounded() {
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("label {i}")).collect();
        assert!(parse_labels(&many[..MAX_LABELS].join("\n")).is_ok());
        assert_eq!(code(parse_labels(&many.join("\n")).expect_err("too many")), "invalid_labels");
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        assert_eq!(code(parse_labels(&long).expect_err("too long")), "invalid_labels");
        assert!(parse_labels(&"é".repeat(MAX_LABEL_CHARS)).is_ok(), "characters, not bytes");
    }
}
