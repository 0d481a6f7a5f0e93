//! Sentence embeddings (all-MiniLM-L6-v2, converted from safetensors by `ocular-convert`).
//!
//! Tokenisation uses the model's own `tokenizer.json` through the `tokenizers` crate; the ONNX
//! graph does mean pooling over the attention mask and L2 normalisation itself, so its
//! `sentence_embedding` output is ready for cosine search.

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};

const OUTPUT: &str = "sentence_embedding";

pub struct TextEncoder {
    session: OnnxSession,
    tokenizer: Tokenizer,
    pub name: String,
    pub version: String,
    pub dim: usize,
}

impl TextEncoder {
    /// The model's session and its inference lane.
    pub fn session(&self) -> &OnnxSession {
        &self.session
    }

    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Embeds a batch of texts (padded to the longest, truncated to the model's limit).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let invalid = |reason: String| ModelError::Invalid { model: self.name.clone(), reason };
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| invalid(format!("tokenizer: {e}")))?;
        let t = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let n = encodings.len();
        let (mut ids, mut mask, mut types) = (vec![0i64; n * t], vec![0i64; n * t], vec![0i64; n * t]);
        for (row, e) in encodings.iter().enumerate() {
            for (j, ((&id, &m), &ty)) in
                e.get_ids().iter().zip(e.get_attention_mask()).zip(e.get_type_ids()).enumerate()
            {
                ids[row * t + j] = i64::from(id);
                mask[row * t + j] = i64::from(m);
                types[row * t + j] = i64::from(ty);
            }
        }
        let shape = vec![n as i64, t as i64];
        let inputs = [
            Input::I64 { name: "input_ids", shape: shape.clone(), data: &ids },
            Input::I64 { name: "attention_mask", shape: shape.clone(), data: &mask },
            Input::I64 { name: "token_type_ids", shape, data: &types },
        ];
        let mut out = self.session.run(&inputs, &[OUTPUT])?;
        let (_, flat) = out.remove(OUTPUT).ok_or_else(|| invalid("no sentence_embedding output".into()))?;
        Ok(flat.chunks_exact(self.dim).map(<[f32]>::to_vec).collect())
    }
}

impl Loadable for TextEncoder {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m = ctx.manifest;
        let invalid = |reason: String| ModelError::Invalid { model: m.name.clone(), reason };
        let text = m.text.clone().ok_or_else(|| invalid("manifest has no text preprocessing".into()))?;
        let dim = m.output(OUTPUT).and_then(|o| o.shape.last().copied()).filter(|d| *d > 0);
        let dim = dim.ok_or_else(|| invalid("no sentence_embedding output with a fixed width".into()))? as usize;
        let mut tokenizer = Tokenizer::from_file(ctx.dir.join(&text.tokenizer))
            .map_err(|e| invalid(format!("tokenizer {}: {e}", text.tokenizer)))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: text.max_tokens, ..Default::default() }))
            .map_err(|e| invalid(format!("truncation: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?;
        Ok(Self { session, tokenizer, name: m.name.clone(), version: m.version.clone(), dim })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        self.embed(&["warm up"]).map(|_| ())
    }
}
