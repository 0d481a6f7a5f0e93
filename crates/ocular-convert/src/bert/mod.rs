//! Sentence-transformers BERT models (all-MiniLM-L6-v2) from `model.safetensors` to one ONNX
//! graph: token ids in, a pooled, L2-normalised sentence embedding out.
//!
//! Reference implementations: Hugging Face `transformers` `BertModel`
//! (`models/bert/modeling_bert.py`: embeddings, self-attention with an additive mask, exact-erf
//! GELU, post-LayerNorm residuals) and sentence-transformers' `Pooling` (mean over the attention
//! mask, count clamped to 1e-9) and `Normalize` modules. `scripts/minilm_reference.py` runs them
//! to produce the embeddings the tests compare against.
//!
//! Pooling and normalisation live *inside* the graph so the runtime feeds token ids and reads a
//! ready vector: no per-token hidden states cross the FFI boundary, and no Rust re-implementation
//! of pooling can drift from the reference. Tokenization stays outside (the `tokenizers` crate
//! with `tokenizer.json`); note that this package's `tokenizer.json` pads and truncates to 128,
//! while sentence-transformers truncates to `max_seq_length` (256) without fixed padding, so the
//! runtime must override both.
//!
//! Graph contract (`N` batch, `T` sequence, both dynamic; `T` ≤ 512):
//! - inputs `input_ids`, `attention_mask`, `token_type_ids`: int64 `N×T`;
//! - output `sentence_embedding`: float32 `N×384`, unit length.

mod config;
mod graph;

use std::path::{Path, PathBuf};

use ocular_core::{TensorSpec, TextPreprocess};

pub use crate::torch::Converted;
pub use config::{BertConfig, PoolingConfig};
pub use graph::bert_sentence_encoder;

#[derive(Debug, thiserror::Error)]
pub enum BertError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid configuration file")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("model.safetensors is unreadable")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("model.safetensors has no tensor `{name}`; is it a BERT model?")]
    MissingTensor { name: String },
    #[error("tensor `{name}` is {found}, expected float32 {expected:?}")]
    Tensor { name: String, expected: Vec<usize>, found: String },
}

/// Converts a sentence-transformers model folder (`config.json`, `model.safetensors`,
/// optional `sentence_bert_config.json` and `1_Pooling/config.json`).
pub fn convert_minilm(dir: &Path) -> Result<Converted, BertError> {
    let config = BertConfig::load(&dir.join("config.json"))?;
    let pooling = PoolingConfig::load(dir)?;
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).map_err(|source| BertError::Io { path, source })?;
    let weights = safetensors::SafeTensors::deserialize(&bytes)?;
    let (onnx, params) = bert_sentence_encoder(&config, &weights)?;

    let ids = |name: &str| TensorSpec { name: name.into(), dtype: "int64".into(), shape: vec![-1, -1] };
    Ok(Converted {
        onnx,
        inputs: vec![ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        outputs: vec![TensorSpec {
            name: "sentence_embedding".into(),
            dtype: "float32".into(),
            shape: vec![-1, config.hidden_size as i64],
        }],
        labels: Vec::new(),
        image: None,
        text: Some(TextPreprocess { tokenizer: "tokenizer.json".into(), max_tokens: pooling.max_seq_length }),
        gradcam: None,
        head: None,
        params,
        extra: serde_json::json!({
            "embedding_dim": config.hidden_size,
            "pooling": "mean",
            "normalized": true,
            "max_position_embeddings": config.max_position_embeddings,
        }),
    })
}
