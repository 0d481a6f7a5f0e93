//! Image format sniffing from the first bytes of the content.
//!
//! File names and `Content-Type` headers are chosen by the sender and prove nothing, so the
//! format is read from the magic bytes. Formats that are recognised but not accepted (an iPhone's
//! HEIC, a GIF) are named, so the client learns what to change instead of "cannot read".

use std::fmt;

/// An accepted image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
}

impl Format {
    /// Lower-case name, for logs and API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }

    pub(crate) fn to_image_format(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Webp => image::ImageFormat::WebP,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
        })
    }
}

/// What the magic bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Supported(Format),
    /// A known format that is refused, by its usual name.
    Unsupported(&'static str),
    Unknown,
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Identifies the format from the content alone.
pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\xFF\xD8\xFF") {
        return Sniffed::Supported(Format::Jpeg);
    }
    if starts(PNG_MAGIC) {
        return Sniffed::Supported(Format::Png);
    }
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Sniffed::Supported(Format::Webp);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Sniffed::Unsupported("gif");
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Sniffed::Unsupported("tiff");
    }
    if starts(b"BM") && bytes.len() >= 14 {
        return Sniffed::Unsupported("bmp");
    }
    if starts(b"\xFF\x0A") || starts(b"\0\0\0\x0CJXL \r\n\x87\n") {
        return Sniffed::Unsupported("jxl");
    }
    if starts(b"8BPS") {
        return Sniffed::Unsupported("psd");
    }
    if starts(b"qoif") {
        return Sniffed::Unsupported("qoi");
    }
    if starts(b"\0\0\x01\0") && bytes.len() >= 22 {
        return Sniffed::Unsupported("ico");
    }
    if starts(b"%PDF-") {
        return Sniffed::Unsupported("pdf");
    }
    // ISO-BMFF: a box size, then `ftyp`, then the major brand (HEIF and AVIF photos).
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                return Sniffed::Unsupported("heic");
            }
            b"avif" | b"avis" => return Sniffed::Unsupported("avif"),
            _ => {}
        }
    }
    Sniffed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_formats_by_magic() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Sniffed::Supported(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0DIHDR"), Sniffed::Supported(Format::Png));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Sniffed::Supported(Format::Webp));
    }

    #[test]
    fn refused_formats_are_named() {
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Sniffed::Unsupported("gif"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Sniffed::Unsupported("heic"));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0"), Sniffed::Unsupported("avif"));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Sniffed::Unsupported("tiff"));
    }

    #[test]
    fn near_misses_are_unknown() {
        assert_eq!(sniff(b""), Sniffed::Unknown);
        assert_eq!(sniff(b"\xFF\xD8"), Sniffed::Unknown);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Sniffed::Unknown);
        assert_eq!(sniff(b"<html>"), Sniffed::Unknown);
    }
}
