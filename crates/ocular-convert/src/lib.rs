//! Converts weights shipped in packages (Keras, torch, safetensors) to ONNX, and fetches them.

// Only a test mutates the environment (`fetch.rs`), and says why that is sound.
#![deny(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bert;
pub mod clip;
pub mod fetch;
pub mod import;
pub mod install;
pub mod keras;
pub mod onnx;
pub mod quantize;
pub mod torch;
