//! The CLIP text tower: queries and labels to L2-normalised embeddings in the shared space,
//! and zero-shot label scoring against an image embedding.
//!
//! Reference: Hugging Face `CLIPModel.get_text_features` (causal transformer, the hidden state
//! at the first `<|endoftext|>`, `text_projection`), which is what `text_embeds` of the
//! standard text exports computes. Because attention is causal and pooling happens at the end
//! token, padding after it cannot change the result: batches are padded to their longest row
//! (or to the graph's fixed length), and a padded batch equals one-by-one embedding.

use ocular_core::{Manifest, ModelKind};

use super::tokenizer::{CONTEXT_LENGTH, ClipTokenizer};
use super::{ClipError, extra, logit_scale, normalized_rows, pick, zero_shot};
use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};

const ID_INPUTS: &[&str] = &["input_ids", "text", "input", "tokens"];
const MASK_INPUT: &str = "attention_mask";
pub(super) const OUTPUTS: &[&str] = &["text_embeds", "text_embeddings", "embeddings", "text_features", "output"];

pub struct ClipTextEncoder {
    session: OnnxSession,
    tokenizer: &'static ClipTokenizer,
    ids_input: String,
    mask_input: Option<String>,
    output: String,
    /// Token ids per text, start and end included (77).
    context: usize,
    /// Set when the graph was exported with a fixed sequence length.
    pad_to: Option<usize>,
    pub name: String,
    pub version: String,
    pub dim: usize,
    /// `exp(logit_scale)`: the temperature of zero-shot scoring (100 for OpenAI CLIP).
    pub logit_scale: f32,
}

impl ClipTextEncoder {
    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    pub fn tokenizer(&self) -> &ClipTokenizer {
        self.tokenizer
    }

    /// Embeds a batch of texts (one forward pass).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenizer.encode_batch(texts, self.context, self.pad_to);
        let shape = vec![batch.rows as i64, batch.cols as i64];
        let mut inputs = vec![Input::I64 { name: &self.ids_input, shape: shape.clone(), data: &batch.ids }];
        if let Some(mask) = &self.mask_input {
            inputs.push(Input::I64 { name: mask, shape, data: &batch.mask });
        }
        let mut out = self.session.run(&inputs, &[&self.output])?;
        let (shape, flat) = out.remove(&self.output).ok_or_else(|| ModelError::Invalid {
            model: self.name.clone(),
            reason: format!("graph returned no {}", self.output),
        })?;
        normalized_rows(&self.name, &shape, flat, texts.len())
    }

    /// Zero-shot classification: the probability of each label for an image embedding made by
    /// the matching image tower, best first. Labels are used as given (a prompt such as
    /// "a photo of a {label}" usually helps; that is the caller's choice).
    pub fn score_labels(&self, image_embedding: &[f32], labels: &[&str]) -> Result<Vec<(String, f32)>, ClipError> {
        if labels.is_empty() {
            return Err(ClipError::NoLabels);
        }
        if image_embedding.len() != self.dim {
            return Err(ClipError::DimensionMismatch { expected: self.dim, found: image_embedding.len() });
        }
        let embeddings = self.embed(labels)?;
        let probabilities = zero_shot(image_embedding, &embeddings, self.logit_scale);
        let mut scored: Vec<(String, f32)> = labels.iter().map(|l| l.to_string()).zip(probabilities).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored)
    }
}

impl Loadable for ClipTextEncoder {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m: &Manifest = ctx.manifest;
        let invalid = |reason: String| ModelError::Invalid { model: m.name.clone(), reason };
        if m.kind != ModelKind::ClipText {
            return Err(invalid(format!("kind is {}", m.kind.as_str())));
        }
        // A downloaded graph: refused if it changed since install (see `crate::digest`).
        crate::digest::verify_graph(ctx.dir, m)?;
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?;
        let ids_input = pick(m, extra::INPUT, session.input_names(), ID_INPUTS, "token id input")?;
        let mask_input = session.input_names().iter().find(|n| *n == MASK_INPUT).cloned();
        if let Some(other) = session.input_names().iter().find(|n| **n != ids_input && Some(*n) != mask_input.as_ref())
        {
            return Err(invalid(format!("graph input {other:?} is not one a CLIP text tower takes")));
        }
        let spec = m.inputs.iter().find(|i| i.name == ids_input);
        if let Some(s) = spec.filter(|s| s.dtype != "int64") {
            return Err(invalid(format!("token ids are {}; only int64 exports are supported", s.dtype)));
        }
        let pad_to = spec.and_then(|s| s.shape.get(1).copied()).filter(|l| *l > 0).map(|l| l as usize);
        let max_tokens = m.text.as_ref().map_or(CONTEXT_LENGTH, |t| t.max_tokens);
        let context = pad_to.map_or(max_tokens, |l| l.min(max_tokens));
        let output = pick(m, extra::OUTPUT, session.output_names(), OUTPUTS, "text embedding output")?;
        let mut model = Self {
            session,
            tokenizer: ClipTokenizer::shared(),
            ids_input,
            mask_input,
            output,
            context,
            pad_to,
            name: m.name.clone(),
            version: m.version.clone(),
            dim: 0,
            logit_scale: logit_scale(m),
        };
        model.dim = model.embed(&["a photo"])?.pop().map_or(0, |v| v.len());
        Ok(model)
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        self.embed(&["a photo of a cat"]).map(|_| ())
    }
}
