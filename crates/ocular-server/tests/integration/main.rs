//! In-process HTTP tests (`Router` + `oneshot`) with the real fixture model and ONNX Runtime.

mod analyze;
mod bulk;
mod catalog_app;
mod clip_search;
mod common;
mod config;
mod cors;
mod errors;
mod health;
mod hostile;
mod hostile_corpus;
mod hostile_urls;
mod imports;
mod keras_reference;
mod limits;
mod memory_budget;
mod openapi;
mod overload;
mod privacy;
mod products;
mod reload;
mod retention;
mod search;
mod serve_models;
mod slowloris;
