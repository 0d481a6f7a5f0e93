//! Errors of model loading and inference.

use std::path::PathBuf;

use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("ONNX Runtime is not available")]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Manifest(#[from] ocular_core::ManifestError),
    #[error("model file {path} is missing or unreadable")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path} does not match its manifest digest (expected {expected}, found {found})")]
    Digest { path: PathBuf, expected: String, found: String },
    #[error("ONNX Runtime failed: {context}")]
    Ort {
        context: String,
        #[source]
        source: ort::Error,
    },
    #[error("model {model} is not usable: {reason}")]
    Invalid { model: String, reason: String },
    #[error("model {model} failed to load (next retry in {retry_in_ms} ms): {message}")]
    LoadFailed { model: String, message: String, retry_in_ms: u64 },
    #[error("model {0} is not configured")]
    NotConfigured(String),
    #[error("inference task panicked or was cancelled")]
    Join(#[source] tokio::task::JoinError),
    /// Loading the model needs memory the budget does not have now (see `load_gate`).
    #[error("model {model} cannot load now")]
    Memory {
        model: String,
        #[source]
        source: crate::budget::BudgetError,
    },
}

impl ModelError {
    pub(crate) fn ort(context: impl Into<String>) -> impl FnOnce(ort::Error) -> ModelError {
        let context = context.into();
        move |source| ModelError::Ort { context, source }
    }
}
