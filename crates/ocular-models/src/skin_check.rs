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
//! 3. **A skin probe on the ImageNet model's embedding**: a logistic regression on
//!    EfficientNet-Lite0's 1280-d pooled feature that tells skin close-ups from photos whose
//!    colours are skin-like (wood, sand, leather, fabric, cats and dogs with tan fur). Colour
//!    alone cannot: a polished wood floor is as "skin-coloured" as a cheek.
//!
//! The photo passes when enough of it is skin-coloured, no object is recognised and the probe
//! scores it as skin. The probe's weights, its threshold and the colour threshold were chosen
//! on the *tuning* split of the labelled set made by `scripts/input_check_set.py`
//! (`fixtures/input_check/manifest.csv`; crops of real skin, animals, wood, sand, food, leather,
//! fabric, people, objects, 20-640 px); the README reports precision and recall on its
//! held-out split, which nothing was chosen on (method: docs/INPUT_CHECK.md). Nothing here
//! reads the skin model, so the same check guards sklesion and imported skin classifiers.
//! Without the ImageNet model (disabled), only the colour signal runs, and the reason says so.
//! It is a guard against obvious misuse, not a validated medical filter.

use serde::Serialize;

/// Minimum fraction of skin-coloured pixels. A close-up of a lesion is mostly skin; the margin
/// below 1 leaves room for a dermatoscope's dark vignette, hair and the lesion's own colours.
/// 0.5 is just below the lowest tuning-split skin crop (0.56); the probe, not this gate, now
/// separates skin from skin-coloured things (0.65 before the probe refused 2 of 58 tuning
/// positives).
pub const MIN_SKIN_FRACTION: f32 = 0.5;
/// The shorter side below which nothing can be assessed (a lesion's border, colour variegation
/// and structure need more pixels): refused as too small, whatever it shows. A policy, not a
/// fitted value; the labelled set labels such crops negative for the same reason.
pub const MIN_SIDE: u32 = 32;
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

/// Everything the check decides on, computed by [`crate::analysis::input_signals`].
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    /// Fraction of skin-coloured pixels, 0..1 ([`skin_fraction`]).
    pub skin_fraction: f32,
    /// The photo's shorter side in pixels.
    pub min_side: u32,
    /// ImageNet top-1 (label, probability), when the ImageNet model is loaded.
    pub object: Option<(String, f32)>,
    /// The skin probe's score (log-odds) on the ImageNet model's embedding, when it ran.
    pub probe: Option<f32>,
}

/// The fitted probe (`scripts/input_check_probe.py`, tuning split only).
#[derive(serde::Deserialize)]
struct Probe {
    threshold: f32,
    bias: f32,
    weights: Vec<f32>,
}

fn probe() -> Option<&'static Probe> {
    static PROBE: std::sync::OnceLock<Option<Probe>> = std::sync::OnceLock::new();
    // Committed with the crate; a unit test fails if it does not parse (then the probe would be
    // skipped and the check would fall back to colour only).
    PROBE.get_or_init(|| serde_json::from_str(include_str!("../data/skin_probe.json")).ok()).as_ref()
}

/// The probe's log-odds that an embedding is a skin close-up; `None` when the embedding is not
/// the probe's (another image model with another dimension).
pub fn probe_score(embedding: &[f32]) -> Option<f32> {
    let p = probe()?;
    (embedding.len() == p.weights.len())
        .then(|| p.bias + embedding.iter().zip(&p.weights).map(|(x, w)| x * w).sum::<f32>())
}

/// The probe's decision threshold (log-odds), chosen on the tuning split.
pub fn probe_threshold() -> f32 {
    probe().map_or(f32::INFINITY, |p| p.threshold)
}

/// The side of the square the texture statistic is measured at: photos of any resolution are
/// compared at the same scale.
const TEXTURE_SIDE: u32 = 64;

/// Mean absolute difference of luminance between neighbouring pixels (right and below), on
/// the photo reduced (area average) to at most 64×64, as a fraction of the full range.
/// Measured by the evaluation (`examples/input_check_eval.rs`), not decided on: on the tuning
/// split, smooth wood and leather overlap skin (0.002–0.03 both), so it did not earn a place.
pub fn texture(img: &ocular_image::image::RgbImage) -> f32 {
    let small;
    let img = if img.width() > TEXTURE_SIDE || img.height() > TEXTURE_SIDE {
        small = ocular_image::image::imageops::thumbnail(img, TEXTURE_SIDE, TEXTURE_SIDE);
        &small
    } else {
        img
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 2 || h < 2 {
        return 0.0;
    }
    let luma: Vec<f32> =
        img.pixels().map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect();
    let (mut sum, mut n) = (0.0f32, 0usize);
    for y in 0..h - 1 {
        for x in 0..w - 1 {
            let c = luma[y * w + x];
            sum += (c - luma[y * w + x + 1]).abs() + (c - luma[(y + 1) * w + x]).abs();
            n += 2;
        }
    }
    sum / n as f32 / 255.0
}

/// ImageNet's classes 0–397 are animals (tench … puffer); their summed probability says "an
/// animal" even when no single breed is confident. Measured by the evaluation, not decided on:
/// on the tuning split skin crops reach 0.5–0.7 too (ImageNet reads skin as "ice bear",
/// "griffon"), so the probe on the embedding replaced it. `None` for a classifier that is not the
/// 1000-class ImageNet one (checked by its first and last animal labels).
pub fn animal_probability(labels: &[ocular_core::Label], probabilities: &[f32]) -> Option<f32> {
    let imagenet = labels.len() == 1000
        && probabilities.len() == 1000
        && labels[0].name == "tench"
        && labels[397].name == "puffer";
    imagenet.then(|| probabilities[..398].iter().sum())
}

/// The decision on every signal (see the module docs for what each threshold was chosen on).
pub fn decide_signals(s: &Signals) -> InputCheck {
    let refuse = |reason: String| InputCheck { is_skin: false, score: s.skin_fraction, reason };
    if s.min_side < MIN_SIDE {
        return refuse(format!(
            "the photo is {} px on its shorter side; at least {MIN_SIDE} px are needed to see a lesion",
            s.min_side
        ));
    }
    let limit =
        if s.skin_fraction >= SKIN_RICH_FRACTION { MAX_OBJECT_CONFIDENCE_SKIN_RICH } else { MAX_OBJECT_CONFIDENCE };
    if let Some((label, p)) = s.object.as_ref().filter(|(_, p)| *p >= limit) {
        return refuse(format!("the photo looks like an everyday object ({label}, p = {p:.2}), not a skin close-up"));
    }
    if s.skin_fraction < MIN_SKIN_FRACTION {
        return refuse(format!(
            "only {:.0}% of the photo is skin-coloured (at least {:.0}% expected for a close-up of skin)",
            s.skin_fraction * 100.0,
            MIN_SKIN_FRACTION * 100.0
        ));
    }
    let pct = s.skin_fraction * 100.0;
    match s.probe {
        Some(score) if score < probe_threshold() => refuse(format!(
            "{pct:.0}% of the photo is skin-coloured, but its texture and content do not look like skin \
             (skin probe {score:.2} < {:.2}): wood, sand, fur, leather or fabric?",
            probe_threshold()
        )),
        Some(_) => InputCheck {
            is_skin: true,
            score: s.skin_fraction,
            reason: format!("{pct:.0}% of the photo is skin-coloured and it looks like skin to the image model"),
        },
        None => InputCheck {
            is_skin: true,
            score: s.skin_fraction,
            reason: format!(
                "{pct:.0}% of the photo is skin-coloured (colour only: the ImageNet model that checks content is not loaded)"
            ),
        },
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

    fn signals(skin_fraction: f32, object: Option<(&str, f32)>, probe: Option<f32>) -> Signals {
        Signals { skin_fraction, min_side: 254, object: object.map(|(l, p)| (l.to_string(), p)), probe }
    }

    #[test]
    fn decision_reasons() {
        let t = probe_threshold();
        let yes = Some(t + 1.0);
        assert!(decide_signals(&signals(0.9, None, yes)).is_skin);
        assert!(!decide_signals(&signals(0.9, Some(("espresso", 0.95)), yes)).is_skin);
        assert!(decide_signals(&signals(0.9, Some(("espresso", 0.2)), yes)).is_skin, "a weak guess is not an object");
        assert!(decide_signals(&signals(0.95, Some(("screw", 0.6)), yes)).is_skin, "all-skin needs a confident object");
        assert!(!decide_signals(&signals(0.7, Some(("moped", 0.6)), yes)).is_skin);
        let low = decide_signals(&signals(0.1, None, yes));
        assert!(!low.is_skin && low.reason.contains("10%"), "{}", low.reason);
        let wood = decide_signals(&signals(1.0, None, Some(t - 0.5)));
        assert!(!wood.is_skin && wood.reason.contains("skin probe"), "{}", wood.reason);
        let tiny = decide_signals(&Signals { min_side: 20, ..signals(1.0, None, yes) });
        assert!(!tiny.is_skin && tiny.reason.contains("20 px"), "{}", tiny.reason);
        let colour_only = decide_signals(&signals(0.9, None, None));
        assert!(colour_only.is_skin && colour_only.reason.contains("colour only"), "{}", colour_only.reason);
    }

    #[test]
    fn committed_probe_matches_the_embedding_size() {
        // EfficientNet-Lite0's pooled feature is 1280-d; another size would silently skip the probe.
        assert!(probe_score(&[0.0; 1280]).is_some());
        assert!(probe_score(&[0.0; 512]).is_none());
        assert!(probe_threshold().is_finite());
    }

    #[test]
    fn texture_separates_flat_from_striped() {
        let flat = ocular_image::image::RgbImage::from_pixel(100, 100, ocular_image::image::Rgb([200, 150, 120]));
        let stripes = ocular_image::image::RgbImage::from_fn(128, 128, |x, _| {
            if x % 4 < 2 { ocular_image::image::Rgb([200, 150, 120]) } else { ocular_image::image::Rgb([120, 80, 60]) }
        });
        assert_eq!(texture(&flat), 0.0);
        assert!(texture(&stripes) > 0.1, "{}", texture(&stripes));
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
