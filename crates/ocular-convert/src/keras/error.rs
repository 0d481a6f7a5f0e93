//! Errors of the Keras converter.
//!
//! Most variants are the user's fault (a file that is not a Keras model, or a model using a
//! layer the converter does not know); they name the layer and its class so the message says
//! what to change. A model is never converted "approximately": an unknown option is an error.

use std::path::PathBuf;

/// Why a Keras model could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum KerasError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither a Keras 3 archive (.keras) nor a Keras HDF5 file (.h5)")]
    UnknownFormat { path: PathBuf },
    #[error("cannot read the .keras archive")]
    Zip(#[from] zip::result::ZipError),
    #[error("the .keras archive has no `{0}` entry")]
    MissingEntry(&'static str),
    #[error("cannot read the HDF5 weights file")]
    Hdf5(#[source] hdf5_reader::error::Error),
    #[error("the HDF5 file has no `{0}`: it is a weights-only file or not a Keras model")]
    MissingHdf5(&'static str),
    #[error("the model config is not valid JSON")]
    ConfigJson(#[from] serde_json::Error),
    /// The config is JSON but not the shape Keras writes (a bug in the file or in us).
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("layer `{layer}` of class {class} is not supported by the converter")]
    UnsupportedLayer { layer: String, class: String },
    #[error("layer `{layer}` ({class}): {option} is not supported by the converter")]
    UnsupportedOption { layer: String, class: String, option: String },
    #[error("weights of layer `{layer}`: {problem}")]
    Weights { layer: String, problem: String },
    #[error("cannot read weight `{path}`")]
    WeightRead {
        path: String,
        #[source]
        source: hdf5_reader::error::Error,
    },
    #[error("layer `{layer}`: {problem}")]
    Shape { layer: String, problem: String },
    #[error("the classifier head is not valid")]
    Head(#[from] ocular_core::head::HeadError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl KerasError {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        KerasError::Config(msg.into())
    }

    pub(crate) fn option(layer: &str, class: &str, option: impl Into<String>) -> Self {
        KerasError::UnsupportedOption { layer: layer.to_string(), class: class.to_string(), option: option.into() }
    }
}
