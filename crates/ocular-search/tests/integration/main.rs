//! One integration-test binary for the crate: the real EfficientNet-Lite0 and MiniLM models
//! from `./models` (CI runs `ocular models fetch` first) and the real skimage photos.

mod common;
mod demo;
mod import;
mod reindex;
mod space;
