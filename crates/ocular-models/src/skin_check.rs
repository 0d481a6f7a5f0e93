//! "Is this plausibly a photo of skin?" — checked before any diagnosis is shown.
//!
//! A classifier trained only on lesions answers for any picture: the sklesion model calls a
//! coffee cup a vascular lesion with p = 0.96. Two cheap, explainable signals guard it:
//!
//! 1. **Skin-colour fraction** in YCbCr. Skin of every Fitzpatrick type occupies a compact
//!    region of the chrominance plane because melanin mostly changes luminance; the classic
//!    bounds Cb ∈ [77, 127], Cr ∈ [133, 173] (Chai & Ngan, "Face segmentation using skin-color
//!    map", IEEE TCSVT 1999) ignore Y entirely, which is what keeps dark skin in. Lesions
//!    (brown, pink, red) mostly fall inside or near the same region, and a dermoscopic photo is
//!    dominated by skin, so the fraction is high for true inputs and low for most objects.
//! 2. **An everyday object recognised with confidence** by the ImageNet model that ocular
//!    already runs for search: a photo that EfficientNet-Lite0 calls "espresso" with p ≥ 0.5 is
//!    not a skin close-up, whatever its colours.
//!
//! The photo passes when enough of it is skin-coloured and no object is recognised. Thresholds
//! were chosen on the labelled set of `tests/integration/input_check.rs` (synthetic lesions on
//! the six Fitzpatrick types, the photos shipped in scikit-image/-learn); its confusion table
//! is in the README. It is a guard against obvious misuse, not a validated medical filter.

use serde::Serialize;

/// Minimum fraction of skin-coloured pixels. A close-up of a lesion is mostly skin; the margin
/// below 1 leaves room for a dermatoscope's dark vignette, hair and the lesion's own colours.
pub const MIN_SKIN_FRACTION: f32 = 0.65;
/// An ImageNet top-1 probability at or above this means "an everyday object".
pub const MAX_OBJECT_CONFIDENCE: f32 = 0.5;
/// A frame that is almost entirely skin-coloured is strong evidence on its own; only a
/// confident recognition overrides it (textured skin makes the ImageNet model guess "screw" or
/// "pick" at up to 0.61 on the labelled set, while a real cat scores 0.79).
pub const SKIN_RICH_FRACTION: f32 = 0.85;
pub const MAX_OBJECT_CONFIDENCE_SKIN_RICH: f32 = 0.75;

/// The verdict reported as `input_check` in analysis responses.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InputCheck {
    pub is_skin: bool,
    /// The skin-colour fraction, 0..1.
    pub score: f32,
    pub reason: String,
}

/// Whether one RGB pixel falls in the skin chrominance region (ITU-R BT.601 YCbCr).
#[inline]
pub fn is_skin_pixel(r: u8, g: u8, b: u8) -> bool {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    (77.0..=127.0).contains(&cb) && (133.0..=173.0).contains(&cr)
}

/// Fraction of skin-coloured pixels in an interleaved RGB buffer (sampled on a grid of at most
/// ~64k pixels: the statistic does not need more, and it must stay cheap for 12 MP inputs).
pub fn skin_fraction(rgb: &[u8], width: u32, height: u32) -> f32 {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return 0.0;
    }
    let step = ((w * h) as f64 / 65_536.0).sqrt().ceil().max(1.0) as usize;
    let (mut skin, mut total) = (0usize, 0usize);
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            let i = (y * w + x) * 3;
            total += 1;
            skin += usize::from(is_skin_pixel(rgb[i], rgb[i + 1], rgb[i + 2]));
        }
    }
    skin as f32 / total as f32
}

/// Combines both signals. `object` is the ImageNet top-1 (label, probability) when available.
pub fn decide(skin_fraction: f32, object: Option<(&str, f32)>) -> InputCheck {
    let limit =
        if skin_fraction >= SKIN_RICH_FRACTION { MAX_OBJECT_CONFIDENCE_SKIN_RICH } else { MAX_OBJECT_CONFIDENCE };
    if let Some((label, p)) = object.filter(|(_, p)| *p >= limit) {
        return InputCheck {
            is_skin: false,
            score: skin_fraction,
            reason: format!("the photo looks like an everyday object ({label}, p = {p:.2}), not a skin close-up"),
        };
    }
    if skin_fraction < MIN_SKIN_FRACTION {
        return InputCheck {
            is_skin: false,
            score: skin_fraction,
            reason: format!(
                "only {:.0}% of the photo is skin-coloured (at least {:.0}% expected for a close-up of skin)",
                skin_fraction * 100.0,
                MIN_SKIN_FRACTION * 100.0
            ),
        };
    }
    InputCheck {
        is_skin: true,
        score: skin_fraction,
        reason: format!(
            "{:.0}% of the photo is skin-coloured and no everyday object was recognised",
            skin_fraction * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Representative skin colours for Fitzpatrick types I–VI (sRGB), as used in dermatology
    /// colour charts; every one must count as skin, including the darkest.
    const FITZPATRICK: [(u8, u8, u8); 6] =
        [(244, 208, 177), (231, 180, 143), (210, 158, 124), (187, 120, 85), (141, 85, 54), (84, 50, 36)];

    #[test]
    fn skin_tones_across_the_fitzpatrick_range_are_skin() {
        for (r, g, b) in FITZPATRICK {
            assert!(is_skin_pixel(r, g, b), "({r},{g},{b}) should be skin");
        }
    }

    #[test]
    fn saturated_and_neutral_colours_are_not_skin() {
        for (r, g, b) in [(0, 0, 255), (0, 200, 0), (128, 128, 128), (255, 255, 255), (0, 0, 0), (30, 60, 120)] {
            assert!(!is_skin_pixel(r, g, b), "({r},{g},{b}) should not be skin");
        }
    }

    #[test]
    fn decision_reasons() {
        assert!(decide(0.9, None).is_skin);
        assert!(!decide(0.9, Some(("espresso", 0.95))).is_skin);
        assert!(decide(0.9, Some(("espresso", 0.2))).is_skin, "a weak guess is not a recognised object");
        assert!(decide(0.95, Some(("screw", 0.6))).is_skin, "an all-skin frame needs a confident object");
        assert!(!decide(0.7, Some(("moped", 0.6))).is_skin);
        let low = decide(0.1, None);
        assert!(!low.is_skin && low.reason.contains("10%"), "{}", low.reason);
    }

    #[test]
    fn fraction_of_half_skin_image() {
        let (w, h) = (100u32, 100u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        for (i, px) in rgb.chunks_mut(3).enumerate() {
            let c = if i % 100 < 50 { FITZPATRICK[4] } else { (0, 0, 255) };
            px.copy_from_slice(&[c.0, c.1, c.2]);
        }
        let f = skin_fraction(&rgb, w, h);
        assert!((f - 0.5).abs() < 0.02, "{f}");
    }
}
