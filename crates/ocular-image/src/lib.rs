//! Images in and out of ocular: every image comes from a stranger.
//!
//! - [`decode`]: bytes -> upright RGB, with byte and pixel caps checked before any decoder
//!   allocates, format sniffed from content, EXIF orientation applied, and reduced-scale JPEG
//!   decoding when the consumer only needs a small image;
//! - [`preprocess`]: RGB -> model input tensor, resizing exactly as each model was trained
//!   (TensorFlow bilinear for Keras models, Pillow bicubic + centre crop for CLIP);
//! - [`overlay`]: a Grad-CAM grid drawn over the photo with the Turbo colormap;
//! - [`thumbnail`], [`encode_jpeg`]: what goes back to the client.
//!
//! Errors carry stable codes ([`ImageError::code`]) for the HTTP layer.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod decode;
mod encode;
mod error;
mod format;
mod header;
mod heatmap;
mod probe;
mod resize;
mod strip;
mod tensor;

pub use decode::{Decoded, Limits, MAX_ASPECT_RATIO, decode};
pub use encode::encode_jpeg;
pub use error::{DecodeError, ImageError};
pub use format::Format;
pub use heatmap::{colorize, overlay};
pub use probe::{Probe, probe};
pub use resize::{
    resize_bicubic, resize_bilinear_tf, resize_shortest_center_crop_bicubic, shortest_center_crop_peak_bytes,
    thumbnail, thumbnail_peak_bytes,
};
pub use strip::strip_metadata;
pub use tensor::{preprocess, to_tensor};

/// The `image` crate version this API is built on (`RgbImage` appears in signatures).
pub use image;
