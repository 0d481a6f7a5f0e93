//! Errors of this crate, with stable machine-readable codes.
//!
//! Images come from strangers, so most failures are the client's fault and the HTTP layer
//! must be able to say so precisely: [`ImageError::code`] gives a stable string for the JSON
//! error envelope and [`ImageError::is_client_error`] tells a 4xx from a 5xx. Causes are kept
//! as `#[source]`s rather than flattened into messages, so logs get the whole chain.

use std::error::Error as StdError;

use crate::format::Format;

/// Why an image could not be decoded, processed or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The encoded image is larger than [`crate::Limits::max_bytes`].
    #[error("image is {bytes} bytes, more than the limit of {max} bytes")]
    TooLarge { bytes: usize, max: usize },
    /// The image header declares more pixels than [`crate::Limits::max_pixels`].
    #[error("image is {width}x{height} pixels, more than the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// One side is more than [`crate::MAX_ASPECT_RATIO`] times the other: no photo is shaped
    /// like that, and a long, thin strip multiplies every resize's intermediate buffers.
    #[error("image is {width}x{height} pixels: one side is more than {max} times the other")]
    AspectRatio { width: u32, height: u32, max: u32 },
    /// A recognised image format that is not accepted (only JPEG, PNG and WebP are).
    #[error("image format {0} is not supported; send JPEG, PNG or WebP")]
    UnsupportedFormat(String),
    /// Empty, not an image, or a corrupt or truncated one.
    #[error("image cannot be read")]
    Unreadable(#[source] DecodeError),
    /// A heatmap grid whose length does not match its stated dimensions: a caller bug.
    #[error("heatmap grid has {len} values, which is not {width}x{height}")]
    HeatmapShape { len: usize, width: u32, height: u32 },
    /// The encoder failed on an image this crate produced: not the client's fault.
    #[error("image encoding failed")]
    Encode(#[source] image::ImageError),
}

impl ImageError {
    /// Stable code for API error envelopes; never change an existing one.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooLarge { .. } => "image_too_large",
            ImageError::TooManyPixels { .. } => "image_too_many_pixels",
            ImageError::AspectRatio { .. } => "image_aspect_ratio",
            ImageError::UnsupportedFormat(_) => "unsupported_format",
            ImageError::Unreadable(_) => "image_unreadable",
            ImageError::HeatmapShape { .. } => "heatmap_shape_mismatch",
            ImageError::Encode(_) => "image_encode_failed",
        }
    }

    /// Whether the input is at fault (answer 4xx) rather than this service (5xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            ImageError::TooLarge { .. }
            | ImageError::TooManyPixels { .. }
            | ImageError::AspectRatio { .. }
            | ImageError::UnsupportedFormat(_)
            | ImageError::Unreadable(_) => true,
            ImageError::HeatmapShape { .. } | ImageError::Encode(_) => false,
        }
    }
}

/// The cause behind [`ImageError::Unreadable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("the upload is empty")]
    Empty,
    #[error("the data is not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// The header failed this crate's own structural checks, done before any decoder runs.
    #[error("malformed {format} file: {reason}")]
    Header { format: Format, reason: &'static str },
    /// The codec rejected the data. Boxed so codec crates stay out of this crate's API.
    #[error("{format} data is corrupt or truncated")]
    Codec {
        format: Format,
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl DecodeError {
    pub(crate) fn codec(format: Format, source: impl StdError + Send + Sync + 'static) -> Self {
        DecodeError::Codec { format, source: Box::new(source) }
    }
}

impl From<DecodeError> for ImageError {
    fn from(e: DecodeError) -> Self {
        ImageError::Unreadable(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_api_strings() {
        let cases: [(ImageError, &str, bool); 5] = [
            (ImageError::AspectRatio { width: 100, height: 1, max: 40 }, "image_aspect_ratio", true),
            (ImageError::TooLarge { bytes: 2, max: 1 }, "image_too_large", true),
            (ImageError::TooManyPixels { width: 2, height: 2, max: 1 }, "image_too_many_pixels", true),
            (ImageError::UnsupportedFormat("gif".into()), "unsupported_format", true),
            (ImageError::Unreadable(DecodeError::Empty), "image_unreadable", true),
        ];
        for (err, code, client) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.is_client_error(), client);
        }
    }

    #[test]
    fn unreadable_keeps_its_cause() {
        let err = ImageError::from(DecodeError::codec(Format::Png, std::io::Error::other("inner")));
        let cause = StdError::source(&err).expect("decode error");
        assert_eq!(cause.to_string(), "PNG data is corrupt or truncated");
        assert_eq!(cause.source().expect("codec error").to_string(), "inner");
    }
}
