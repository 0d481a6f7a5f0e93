//! One integration-test binary for the crate: the real EfficientNet-Lite0 and MiniLM models
//! from `./models` (CI runs `ocular models fetch` first) and the real skimage photos.

mod clip;
mod common;
mod conse_disk;
mod demo;
mod import;
mod import_photos;
mod import_props;
mod pg;
mod photos;
mod reindex;
mod relevance;
mod saved;
mod space;
