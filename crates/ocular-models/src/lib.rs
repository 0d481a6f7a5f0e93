//! ONNX Runtime sessions, the model registry and its lifecycle, and the concrete models.
//!
//! The registry is the only way to reach a model, and a model is only ever constructed inside
//! a [`registry::Slot`]'s single-flight cell: loading twice, or loading from a command that
//! never asks for a model (`ocular migrate`), is impossible by construction rather than
//! prevented by flags and locks as in the services ocular replaces.

// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admission;
pub mod analysis;
pub mod budget;
pub mod classifier;
pub mod clip;
pub mod contract;
pub mod digest;
pub mod error;
pub mod estimate;
pub mod fixture;
pub mod image_classifier;
pub mod lanes;
pub mod load_gate;
pub mod registry;
pub mod reload;
pub mod report;
pub mod runtime;
pub mod self_check;
pub mod session;
pub mod skin;
pub mod skin_check;
pub mod text_encoder;

pub use admission::{Admission, AdmissionError, Permit};
pub use budget::{BudgetError, LimitSource, MemoryBudget};
pub use error::ModelError;
pub use registry::{ModelState, ModelStatus, PrecisionFallback, Precisions, Registry, RegistryOptions, Slot};
pub use runtime::{OrtRuntime, RuntimeError};
pub use session::{Input, OnnxSession, Outputs};
