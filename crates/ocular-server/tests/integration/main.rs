//! In-process HTTP tests (`Router` + `oneshot`) with the real fixture model and ONNX Runtime.

mod analyze;
mod common;
mod config;
mod health;
mod overload;
