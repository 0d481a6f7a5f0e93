//! In-process HTTP tests (`Router` + `oneshot`) with the real fixture model and ONNX Runtime.

mod analyze;
mod catalog_app;
mod common;
mod config;
mod health;
mod overload;
mod products;
mod search;
