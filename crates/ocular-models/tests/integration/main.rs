//! Integration tests of ocular-models: the registry lifecycle on a real ONNX model and the
//! real ONNX Runtime library.

mod clip;
mod common;
mod embeddings;
mod input_check;
mod int8;
mod lanes;
mod real;
mod registry;
mod skin;
