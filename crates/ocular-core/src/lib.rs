//! Types shared by the converter (which writes them) and the runtime (which reads them):
//! the model manifest, the description of a classifier head used for exact Grad-CAM, and the one
//! cosine similarity ([`similarity::cosine`]).
//!
//! This crate has no heavy dependencies on purpose: admin commands and the storage layer can
//! use it without linking ONNX Runtime or any model code.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod head;
pub mod manifest;
pub mod similarity;

pub use manifest::{
    FileEntry, GradcamSpec, ImagePreprocess, Label, Layout, Manifest, ManifestError, ModelKind, ResizeMode, Source,
    TensorSpec, TextPreprocess,
};
