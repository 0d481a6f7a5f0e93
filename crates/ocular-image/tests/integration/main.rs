//! Integration tests of `ocular-image` against reference implementations.
//!
//! Fixtures in `tests/data/` are real photos (scikit-image, scikit-learn) and reference outputs
//! from TensorFlow, Pillow, transformers, matplotlib, libjpeg-turbo and libwebp, all written by
//! `scripts/image_reference.py`. Nothing here compares the crate with itself.

mod alloc;
mod common;
mod decode_hostile;
mod decode_real;
mod heatmap;
mod orientation;
mod props;
mod resize;
mod strip;
mod strip_props;
