//! The model contract: what a served model declares, and what it must prove when it loads.
//!
//! A model is a folder with a `manifest.json` ([`ocular_core::Manifest`]) beside its ONNX
//! graph. The manifest is the declaration: the model's kind (skin, imported classifier, image
//! or text embedder, CLIP tower), its input tensors and their pixel recipe (size, resize mode,
//! layout, scale/mean/std), its labels (with malignant flags for skin models), its Grad-CAM
//! feature map and head, its precisions and the file digests. Nothing about a model is hard-coded
//! elsewhere: the registry picks the slot by kind, the server builds the model card and the
//! OpenAPI-described answers from the manifest.
//!
//! [`Loadable`] is the other half: every concrete model type (`SkinModel`, `Classifier`,
//! `ImageClassifier`, `TextEncoder`, the CLIP towers, the test fixture) opens its graph from a
//! [`LoadContext`] after checking that the declaration holds what it needs — an image input of
//! rank 4 with its recipe, the extra inputs it can fill, a class-score output, a Grad-CAM feature
//! map `N×H×W×C` with its head — so a model that does not fit its role fails at load with
//! [`ModelError::Invalid`] and a reason, never at a request. (That
//! the graph matches its declaration — labels against outputs, ranks, layers — was checked
//! when the manifest was written: `ocular models fetch`/`import` in `ocular-convert`; the file
//! digests recorded then are checked again where a graph can change after install.) It then
//! runs once on dummy input ([`Loadable::warm_up`]) so the first request does not pay for ONNX
//! Runtime's lazy allocations. The registry ([`crate::registry`]) constructs models only through
//! this trait, inside a slot's single flight: that is what makes "loaded exactly once" hold by
//! construction.

use std::path::Path;

use ocular_core::Manifest;

use crate::error::ModelError;
use crate::runtime::OrtRuntime;
use crate::session::SessionOptions;

/// Everything a model needs to load itself.
pub struct LoadContext<'a> {
    /// The model's folder (its graph and any side files).
    pub dir: &'a Path,
    /// The declaration the loaded graph is checked against.
    pub manifest: &'a Manifest,
    pub runtime: &'static OrtRuntime,
    pub session: SessionOptions,
}

/// A model type the registry can load: opens its graph and checks it against the manifest.
pub trait Loadable: Send + Sync + Sized + 'static {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError>;
    /// One inference on dummy input, so the first real request does not pay for lazy
    /// allocations inside ONNX Runtime.
    fn warm_up(&self) -> Result<(), ModelError>;
}
