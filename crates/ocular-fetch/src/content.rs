//! Reading the body of the final response: the type check and the byte cap.
//!
//! Memory is the scarce resource of this service (512 MB hosts), so the cap is enforced while
//! streaming: a declared `Content-Length` over the cap is refused before a byte of the body
//! is read, and a body without one (chunked or close-delimited) is cut off as soon as it
//! passes the cap. Nothing larger than `max_bytes` is ever buffered.
//!
//! Content type rule: a declared `image/*` type is accepted as is (the decoder later sniffs
//! the real format and refuses what it cannot read). Servers that send no type, or the
//! generic `application/octet-stream` / `binary/octet-stream` that misconfigured object
//! stores send for everything, are given a second chance: the body must start with the
//! signature of an image format (JPEG, PNG, GIF, WebP, TIFF, AVIF/HEIF). Any other declared
//! type (`text/html` error pages above all) is refused before reading the body.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};

use crate::error::FetchError;

/// What the declared type lets through.
#[derive(Debug, PartialEq, Eq)]
enum Declared {
    Image,
    /// Absent or generic: decided by the body's signature.
    Sniff,
    NotImage,
}

fn declared(content_type: Option<&str>) -> Declared {
    let Some(value) = content_type else { return Declared::Sniff };
    let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "" | "application/octet-stream" | "binary/octet-stream" => Declared::Sniff,
        m if m.starts_with("image/") && m.len() > "image/".len() => Declared::Image,
        _ => Declared::NotImage,
    }
}

/// The MIME type of the image format whose signature starts `bytes`, if any.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some("image/tiff")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        match bytes.get(8..12) {
            Some(b"avif" | b"avis") => Some("image/avif"),
            Some(b"heic" | b"heix" | b"mif1" | b"msf1") => Some("image/heif"),
            _ => None,
        }
    } else {
        None
    }
}

/// The declared `Content-Type`, `None` when absent. A value that is not visible ASCII is
/// kept as an empty string so it can never pass as `image/*`.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default().to_owned())
}

/// Checks the declared type and size, then streams the body under the cap.
pub(crate) async fn read_image(
    headers: &HeaderMap,
    mut body: Incoming,
    max_bytes: u64,
) -> Result<(Vec<u8>, Option<String>), FetchError> {
    let content_type = content_type(headers);
    let verdict = declared(content_type.as_deref());
    if verdict == Declared::NotImage {
        return Err(FetchError::NotAnImage { content_type });
    }
    // An unparsable Content-Length is left to hyper, which refuses such a response.
    let declared_len = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if let Some(len) = declared_len
        && len > max_bytes
    {
        return Err(FetchError::TooLarge { limit: max_bytes, declared: Some(len) });
    }

    let capacity = usize::try_from(declared_len.unwrap_or(64 * 1024).min(max_bytes)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| FetchError::Http { source })?;
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes, declared: declared_len });
            }
            bytes.extend_from_slice(&data);
        }
    }

    if verdict == Declared::Sniff && sniff_image(&bytes).is_none() {
        return Err(FetchError::NotAnImage { content_type });
    }
    Ok((bytes, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(declared(Some("image/png")), Declared::Image);
        assert_eq!(declared(Some("Image/JPEG; charset=binary")), Declared::Image);
        assert_eq!(declared(None), Declared::Sniff);
        assert_eq!(declared(Some("")), Declared::Sniff);
        assert_eq!(declared(Some("application/octet-stream")), Declared::Sniff);
        assert_eq!(declared(Some("binary/octet-stream")), Declared::Sniff);
        for other in ["text/html", "text/html; charset=utf-8", "image/", "application/json", "imagex/png", "video/mp4"]
        {
            assert_eq!(declared(Some(other)), Declared::NotImage, "{other}");
        }
    }

    #[test]
    fn signatures() {
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff_image(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"\0\0\0\x1cftypavif"), Some("image/avif"));
        assert_eq!(sniff_image(b"\0\0\0\x1cftypisom"), None, "an MP4 is not an image");
        assert_eq!(sniff_image(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff_image(b"<!doctype html>"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
