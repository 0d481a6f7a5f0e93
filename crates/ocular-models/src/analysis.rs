//! One skin analysis from image bytes to a result: the code path shared by
//! `POST /api/v1/analyze` and `ocular analyze`.
//!
//! Steps, each timed: decode at full resolution (the model must see exactly what it was trained
//! on; a 254×254 upload reaches it unresampled), input check (skin-colour fraction + ImageNet
//! object recognition, see [`crate::skin_check`]), TF-exact bilinear resize, inference, and —
//! only when asked — Grad-CAM and its JPEG overlay. Decoded buffers are dropped as soon as the
//! next stage no longer needs them.

use std::time::Instant;

use ocular_image::{Limits, image::RgbImage};
use serde::Serialize;

use crate::error::ModelError;
use crate::image_classifier::ImageClassifier;
use crate::skin::{GradcamGrid, SkinMeta, SkinModel};
use crate::skin_check::{self, InputCheck};

/// Long side of the stored input photo and of its heatmap overlay: enough for a screen, and the
/// overlay is drawn on the same reduced photo so both line up pixel for pixel in a comparison
/// view. (Drawing it at full size cost ~50 ms of a 640×480 request for no visible gain.)
pub const PHOTO_MAX_SIDE: u32 = 640;
const JPEG_QUALITY: u8 = 85;
const HEATMAP_ALPHA: f32 = 0.45;

pub const DISCLAIMER: &str = "ocular is not a medical device and this is not a diagnosis. The model was \
trained on dermatoscopic images (HAM10000) and is wrong about 1 time in 4 on its own test set \
(balanced accuracy 0.72); any lesion that changes, bleeds, itches or worries you must be seen by a doctor.";

#[derive(Debug, Clone, Copy)]
pub struct AnalyzeOptions {
    pub gradcam: bool,
    /// Analyse even when the input check says the photo is not skin.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Image(#[from] ocular_image::ImageError),
    #[error("{}", .0.reason)]
    NotSkin(InputCheck),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Milliseconds per stage of an analysis or a prediction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Timings {
    pub decode: f64,
    pub check: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub gradcam: f64,
    pub render: f64,
    pub total: f64,
}

/// What an analysis produced; the caller stores and presents it.
#[derive(Debug, Clone)]
pub struct Analyzed {
    pub probabilities: Vec<f32>,
    pub input_check: InputCheck,
    pub forced: bool,
    pub gradcam: Option<GradcamGrid>,
    /// Input photo at ≤ [`PHOTO_MAX_SIDE`], JPEG.
    pub photo_jpeg: Vec<u8>,
    /// Overlay on that photo, JPEG, when Grad-CAM ran.
    pub heatmap_jpeg: Option<Vec<u8>>,
    pub timings: Timings,
    pub width: u32,
    pub height: u32,
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e3 * 1000.0).round() / 1000.0
}

/// Runs the whole analysis. `objects` is the ImageNet model used by the input check.
pub fn analyze(
    skin: &SkinModel,
    objects: Option<&ImageClassifier>,
    bytes: &[u8],
    limits: &Limits,
    meta: SkinMeta,
    opts: AnalyzeOptions,
) -> Result<Analyzed, AnalyzeError> {
    let total = Instant::now();
    let (mut analyzed, img) = analyze_unrendered(skin, objects, bytes, limits, meta, opts)?;
    let started = Instant::now();
    let (photo_jpeg, heatmap_jpeg) = render(img, analyzed.gradcam.as_ref())?;
    analyzed.photo_jpeg = photo_jpeg;
    analyzed.heatmap_jpeg = heatmap_jpeg;
    analyzed.timings.render = ms(started);
    analyzed.timings.total = ms(total);
    Ok(analyzed)
}

/// Everything of [`analyze`] but the images: the numbers (classes, input check, Grad-CAM grid)
/// and the decoded photo to draw them from. `photo_jpeg` is empty, `heatmap_jpeg` `None` and
/// `timings.render` 0 until the caller runs [`render`] on the returned image — the server
/// answers first and renders afterwards (the overlay is ~30% of an analysis), and since both
/// paths call the same [`render`] on the same pixels the images are byte-identical.
pub fn analyze_unrendered(
    skin: &SkinModel,
    objects: Option<&ImageClassifier>,
    bytes: &[u8],
    limits: &Limits,
    meta: SkinMeta,
    opts: AnalyzeOptions,
) -> Result<(Analyzed, RgbImage), AnalyzeError> {
    let total = Instant::now();
    let mut t = Timings::default();

    let started = Instant::now();
    let decoded = ocular_image::decode(bytes, limits, None)?;
    let img = decoded.image;
    t.decode = ms(started);

    let started = Instant::now();
    let input_check = check_input(&img, objects)?;
    t.check = ms(started);
    if !input_check.is_skin && !opts.force {
        return Err(AnalyzeError::NotSkin(input_check));
    }

    let started = Instant::now();
    let pre = &skin.preprocess;
    // The manifest's pixel recipe: the identity for sklesion (its graph normalises), whatever
    // `ocular models import --skin --scale/--mean/--std` recorded for an imported skin model.
    let pixels = ocular_image::preprocess(&img, pre);
    let meta_vec = meta.vector(skin.meta_encoding);
    t.preprocess = ms(started);

    let out = skin.predict(&pixels, &meta_vec, opts.gradcam)?;
    drop(pixels);
    t.inference = (out.inference_ms * 1000.0).round() / 1000.0;
    t.gradcam = (out.gradcam_ms * 1000.0).round() / 1000.0;

    let (width, height) = img.dimensions();
    t.total = ms(total);
    let analyzed = Analyzed {
        probabilities: out.probabilities,
        forced: !input_check.is_skin,
        input_check,
        gradcam: out.gradcam,
        photo_jpeg: Vec::new(),
        heatmap_jpeg: None,
        timings: t,
        width,
        height,
    };
    Ok((analyzed, img))
}

/// The photo at ≤ [`PHOTO_MAX_SIDE`] as JPEG and, with a grid, the Grad-CAM overlay drawn on
/// that same reduced photo; shared by every model that explains a photo (analyses and
/// imported classifiers). Takes the image so it is freed as soon as the thumbnail exists.
pub fn render(
    img: RgbImage,
    grid: Option<&GradcamGrid>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ocular_image::ImageError> {
    let photo = ocular_image::thumbnail(&img, PHOTO_MAX_SIDE);
    drop(img);
    let photo_jpeg = ocular_image::encode_jpeg(&photo, JPEG_QUALITY)?;
    let heatmap_jpeg = match grid {
        Some(grid) => {
            let (w, h) = (grid.width as u32, grid.height as u32);
            let overlay = ocular_image::overlay(&photo, &grid.values, w, h, HEATMAP_ALPHA, PHOTO_MAX_SIDE)?;
            Some(ocular_image::encode_jpeg(&overlay, JPEG_QUALITY)?)
        }
        None => None,
    };
    Ok((photo_jpeg, heatmap_jpeg))
}

/// The input check on a decoded photo.
pub fn check_input(img: &RgbImage, objects: Option<&ImageClassifier>) -> Result<InputCheck, ModelError> {
    Ok(skin_check::decide_signals(&input_signals(img, objects)?))
}

/// The signals the input check decides on: the photo's size and colours, and what the
/// ImageNet model (when loaded) recognises in it and its embedding's skin probe. Nothing here reads the skin model, so the
/// same check guards sklesion and any imported skin classifier.
pub fn input_signals(img: &RgbImage, objects: Option<&ImageClassifier>) -> Result<skin_check::Signals, ModelError> {
    let (object, probe) = match objects {
        Some(m) => {
            let features = m.run(&[img])?;
            match features.first() {
                Some(f) => (
                    m.top(&f.probabilities, 1).first().map(|(l, p)| (l.name.clone(), *p)),
                    skin_check::probe_score(&f.embedding),
                ),
                None => (None, None),
            }
        }
        None => (None, None),
    };
    Ok(skin_check::Signals {
        skin_fraction: skin_check::skin_fraction(img.as_raw(), img.width(), img.height()),
        min_side: img.width().min(img.height()),
        object,
        probe,
    })
}
