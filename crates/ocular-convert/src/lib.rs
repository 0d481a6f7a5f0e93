//! Converts weights shipped in packages (Keras, torch, safetensors) to ONNX, and fetches them.

pub mod bert;
pub mod clip;
pub mod fetch;
pub mod install;
pub mod keras;
pub mod onnx;
pub mod quantize;
pub mod torch;
