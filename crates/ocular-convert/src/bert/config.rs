//! The configuration files of a sentence-transformers BERT folder, checked for what the graph
//! builder supports instead of silently building a different model.

use std::path::Path;

use serde::Deserialize;

use super::BertError;

/// The fields of Hugging Face `config.json` the encoder depends on.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub layer_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub vocab_size: usize,
    pub hidden_act: String,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, BertError> {
    let text = std::fs::read_to_string(path).map_err(|source| BertError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|source| BertError::Config { path: path.to_path_buf(), source })
}

impl BertConfig {
    pub fn load(path: &Path) -> Result<Self, BertError> {
        let c: Self = read_json(path)?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), BertError> {
        // HF's "gelu" is the exact erf form; the tanh approximation would be "gelu_new".
        if self.hidden_act != "gelu" {
            return Err(BertError::Unsupported(format!("activation `{}` (only exact `gelu`)", self.hidden_act)));
        }
        if self.position_embedding_type != "absolute" {
            return Err(BertError::Unsupported(format!("position embeddings `{}`", self.position_embedding_type)));
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(BertError::Unsupported("hidden size not divisible by the head count".into()));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// sentence-transformers' pooling settings (`1_Pooling/config.json`, `sentence_bert_config.json`).
#[derive(Debug, Clone)]
pub struct PoolingConfig {
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: usize,
}

/// sentence-transformers' default when `sentence_bert_config.json` is absent is the tokenizer's
/// limit; 256 is what all-MiniLM-L6-v2 was trained with.
const DEFAULT_MAX_SEQ: usize = 256;

impl PoolingConfig {
    /// Reads the folder's pooling files; absent files mean the all-MiniLM defaults, but a pooling
    /// mode other than plain mean is refused rather than ignored.
    pub fn load(dir: &Path) -> Result<Self, BertError> {
        let pooling = dir.join("1_Pooling/config.json");
        if pooling.exists() {
            let p: PoolingFile = read_json(&pooling)?;
            if !p.pooling_mode_mean_tokens
                || p.pooling_mode_cls_token
                || p.pooling_mode_max_tokens
                || p.pooling_mode_mean_sqrt_len_tokens
            {
                return Err(BertError::Unsupported("pooling other than mean over tokens".into()));
            }
        }
        let st = dir.join("sentence_bert_config.json");
        let max_seq_length =
            if st.exists() { read_json::<SentenceBertFile>(&st)?.max_seq_length } else { DEFAULT_MAX_SEQ };
        Ok(Self { max_seq_length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<BertConfig, BertError> {
        let c: BertConfig = serde_json::from_value(json).unwrap();
        c.validate().map(|_| c)
    }

    fn minilm() -> serde_json::Value {
        serde_json::json!({
            "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
            "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
            "type_vocab_size": 2, "vocab_size": 30522, "hidden_act": "gelu"
        })
    }

    #[test]
    fn accepts_minilm_and_refuses_other_variants() {
        assert_eq!(config(minilm()).unwrap().head_dim(), 32);
        let mut tanh = minilm();
        tanh["hidden_act"] = "gelu_new".into();
        assert!(matches!(config(tanh), Err(BertError::Unsupported(_))));
        let mut rel = minilm();
        rel["position_embedding_type"] = "relative_key".into();
        assert!(matches!(config(rel), Err(BertError::Unsupported(_))));
    }

    #[test]
    fn refuses_cls_pooling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        let cls = r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#;
        std::fs::write(dir.path().join("1_Pooling/config.json"), cls).unwrap();
        assert!(matches!(PoolingConfig::load(dir.path()), Err(BertError::Unsupported(_))));
        let mean = r#"{"pooling_mode_mean_tokens": true}"#;
        std::fs::write(dir.path().join("1_Pooling/config.json"), mean).unwrap();
        std::fs::write(dir.path().join("sentence_bert_config.json"), r#"{"max_seq_length": 128}"#).unwrap();
        assert_eq!(PoolingConfig::load(dir.path()).unwrap().max_seq_length, 128);
    }
}
