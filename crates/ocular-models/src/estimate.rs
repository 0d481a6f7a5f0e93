//! Peak extra memory of one request, estimated before it runs (for [`crate::budget`]).
//!
//! Two parts: what the decoder holds for the image (from its header: [`ocular_image::Probe`],
//! `decode_peak_bytes`), and a fixed part per pipeline for everything that does not grow with
//! the photo: ONNX Runtime's activations (the CPU arena is off, so they are allocated per run
//! and freed after), input tensors, the 640-px photo and overlay and their JPEG encodes.
//!
//! The fixed parts are measured, not guessed: `cargo run --release -p ocular-models --example
//! request_peak` prints each pipeline's peak RSS above idle by photo size (docs/DEPLOY.md,
//! "Memory"). Measured here: analyze 37 MiB at 0.3 MP growing 3.3 MiB per megapixel (the
//! full-resolution RGB decode, 3 bytes a pixel, plus the thumbnail's row pass, 0.5 at 4000 px
//! wide); photo embedding 9–12 MiB at any size (JPEGs are decoded at 1/8 scale for 224 px); a
//! 256-token MiniLM embedding 15.6 MiB. The constants below round the fixed parts up by 10–20%.
//!
//! A third part grows with the image's *shape* rather than its pixel count: the resizers'
//! intermediates (`ocular_image::thumbnail_peak_bytes`, `shortest_center_crop_peak_bytes`:
//! the row pass, the output, the weights). For a photo they are a few MB, inside the measured
//! fixed parts; for a long, thin strip they grew with the long side and were invisible here
//! (issue 16). Such strips are now refused by the decoder (`image_aspect_ratio`) and the CLIP
//! path crops before it resizes, and the estimate counts these intermediates for every image,
//! so what it reserves bounds what the request allocates.

use ocular_image::{Limits, Probe};

const MIB: u64 = 1 << 20;

/// Analysis besides the decode: sklesion + Grad-CAM head, the EfficientNet input check,
/// resized tensors, photo, overlay and encodes (measured 36 MiB).
pub const ANALYZE_FIXED: u64 = 40 * MIB;
/// One photo through the image embedder besides the decode (measured 9–11 MiB).
pub const EMBED_FIXED: u64 = 14 * MIB;
/// One text through the text encoder at its longest input, 256 tokens (measured 15.6 MiB).
pub const TEXT_FIXED: u64 = 18 * MIB;
/// Side of the stored photo and overlay ([`crate::analysis::PHOTO_MAX_SIDE`]).
const THUMBNAIL_SIDE: u64 = crate::analysis::PHOTO_MAX_SIDE as u64;

/// The image's header, when a decoder will really run: bytes that are no readable image, or
/// an image over the limits, fail before any decoder allocates (only the encoded bytes, already
/// in memory, remain), and must get that error rather than a memory refusal.
fn probe(image: &[u8], limits: &Limits) -> Option<Probe> {
    let p = ocular_image::probe(image)?;
    (image.len() <= limits.max_bytes && limits.check_dimensions(p.width, p.height).is_ok()).then_some(p)
}

/// The decoded size in display orientation (EXIF may swap the stored axes).
fn display_size(p: &Probe, target: Option<(u32, u32)>) -> (u32, u32) {
    let (w, h) = p.decoded_size(target);
    if p.swaps_axes { (h, w) } else { (w, h) }
}

fn decode_peak(probe: Option<&Probe>, target: Option<(u32, u32)>) -> u64 {
    probe.map_or(0, |p| p.decode_peak_bytes(target))
}

/// `POST /api/v1/analyze`: a full-resolution decode (the model must see the photo as trained),
/// the thumbnail's horizontal pass over every source row (640 × height × 3 bytes), and
/// [`ANALYZE_FIXED`].
pub fn analyze(image: &[u8], limits: &Limits) -> u64 {
    let probe = probe(image, limits);
    let thumbnail = probe.map_or(0, |p| {
        let (w, h) = display_size(&p, None);
        ocular_image::thumbnail_peak_bytes(w, h, THUMBNAIL_SIDE as u32)
    });
    ANALYZE_FIXED + decode_peak(probe.as_ref(), None) + thumbnail
}

/// A prediction's own part besides the decode and the model's activations: the input tensor,
/// the 640-px photo and overlay, and the overlay's JPEG encode (640 × 640 RGB is 1.2 MB a
/// buffer; five buffers), rounded up.
pub const PREDICT_FIXED: u64 = 8 * MIB;

/// `POST /api/v1/models/{name}/predict` of an imported classifier whose import recorded the
/// sum of its layer outputs (`activation_bytes`): the decode and thumbnail as [`analyze`],
/// [`PREDICT_FIXED`], and twice the activations, an upper bound of what ONNX Runtime allocates
/// with its arena off (every layer's output alive at once, in both layouts the converter emits
/// for a feature map, NHWC and NCHW). It grows with the imported graph, where sklesion's
/// measured [`ANALYZE_FIXED`] would under-count a larger model and over-count a small one.
/// Without the figure (an import made with `--size` for a graph without a fixed size, or an
/// older import) it is [`analyze`]'s estimate.
pub fn predict(image: &[u8], limits: &Limits, activation_bytes: Option<u64>) -> u64 {
    let analysis = analyze(image, limits);
    match activation_bytes {
        Some(a) => analysis - ANALYZE_FIXED + PREDICT_FIXED + a.saturating_mul(2),
        None => analysis,
    }
}

/// A photo search, a photo embedding or a product write with a photo: a decode reduced
/// towards `target` (the image model's input size) and [`EMBED_FIXED`]; a product write also
/// embeds its text ([`TEXT_FIXED`]).
pub fn embed_image(image: &[u8], limits: &Limits, target: (u32, u32), with_text: bool) -> u64 {
    let probe = probe(image, limits);
    // The larger of the two model paths' resizes: CLIP's shortest side + centre crop (row
    // pass over the crop's columns, weights) bounds TF bilinear's few taps per output.
    let resize = probe.map_or(0, |p| {
        let (w, h) = display_size(&p, Some(target));
        ocular_image::shortest_center_crop_peak_bytes(w, h, target.0.max(target.1))
    });
    EMBED_FIXED + decode_peak(probe.as_ref(), Some(target)) + resize + if with_text { TEXT_FIXED } else { 0 }
}

/// A text search or text embedding.
pub fn text() -> u64 {
    TEXT_FIXED
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_bytes: 20 << 20, max_pixels: 40_000_000 };

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = ocular_image::image::RgbImage::from_fn(w, h, |x, y| ocular_image::image::Rgb([x as u8, y as u8, 9]));
        let mut out = Vec::new();
        ocular_image::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&img)
            .expect("jpeg");
        out
    }

    #[test]
    fn analysis_grows_with_the_full_resolution_photo() {
        let small = analyze(&jpeg(320, 240), &L);
        let large = analyze(&jpeg(3200, 2400), &L);
        // 320x240 (under the thumbnail size, so no resize): 230 KB of RGB over the fixed part.
        let thumb_small = ocular_image::thumbnail_peak_bytes(320, 240, 640);
        assert_eq!(small, ANALYZE_FIXED + 320 * 240 * 3 + thumb_small);
        // 100x the pixels: the decode dominates (23 MB), the way the measurement shows; the
        // thumbnail's row pass (640 x 2400 x 3) and output come next.
        let thumb = ocular_image::thumbnail_peak_bytes(3200, 2400, 640);
        assert!(thumb >= 640 * 2400 * 3 + 640 * 480 * 3, "{thumb}");
        assert_eq!(large - ANALYZE_FIXED, 3200 * 2400 * 3 + thumb);
    }

    #[test]
    fn a_prediction_grows_with_the_imported_graph() {
        let photo = jpeg(640, 480);
        let image_part = analyze(&photo, &L) - ANALYZE_FIXED;
        assert_eq!(predict(&photo, &L, None), analyze(&photo, &L), "unknown graph: sklesion's measured part");
        assert_eq!(predict(&photo, &L, Some(1 << 20)), image_part + PREDICT_FIXED + (2 << 20));
        assert_eq!(predict(&photo, &L, Some(300 << 20)), image_part + PREDICT_FIXED + (600 << 20));
    }

    #[test]
    fn search_decodes_jpegs_at_reduced_scale() {
        // 3200x2400 for 224x224: 1/8 scale is 400x300, 360 KB, whatever the photo size; the
        // crop's resize adds its row pass (224 x 300 x 3), output and weights.
        let resize = ocular_image::shortest_center_crop_peak_bytes(400, 300, 224);
        assert!((224 * 300 * 3..1 << 20).contains(&resize), "{resize}");
        assert_eq!(embed_image(&jpeg(3200, 2400), &L, (224, 224), false), EMBED_FIXED + 400 * 300 * 3 + resize);
        assert_eq!(
            embed_image(&jpeg(3200, 2400), &L, (224, 224), true),
            EMBED_FIXED + TEXT_FIXED + 400 * 300 * 3 + resize
        );
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ocular_image::image::RgbImage::new(w, h);
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), ocular_image::image::ImageFormat::Png).expect("png");
        out
    }

    /// A strip the decoder refuses (`image_aspect_ratio`) costs only the fixed part, like any
    /// image the decoder refuses; one just inside the ratio has its shape's intermediates counted.
    #[test]
    fn thin_strips_are_refused_or_counted() {
        assert_eq!(embed_image(&png(100_000, 2), &L, (224, 224), false), EMBED_FIXED);
        assert_eq!(analyze(&png(100_000, 2), &L), ANALYZE_FIXED);
        let strip = embed_image(&png(4000, 100), &L, (224, 224), false) - EMBED_FIXED - 4000 * 100 * 3;
        assert!(strip >= 224 * 100 * 3, "{strip}");
        let thumb = analyze(&png(4000, 100), &L) - ANALYZE_FIXED - 4000 * 100 * 3;
        assert!(thumb >= 640 * 100 * 3, "{thumb}");
    }

    #[test]
    fn unreadable_bytes_cost_only_the_fixed_part() {
        assert_eq!(analyze(b"GIF89a not allowed", &L), ANALYZE_FIXED);
        assert_eq!(embed_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 2], &L, (224, 224), false), EMBED_FIXED);
        // Over the pixel cap: refused by the decoder's header check with its own error.
        let tight = Limits { max_pixels: 1_000_000, ..L };
        assert_eq!(analyze(&jpeg(1200, 1000), &tight), ANALYZE_FIXED);
    }
}
