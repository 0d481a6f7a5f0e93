//! `manifest.json`: what a model folder contains and how to feed it.
//!
//! Every model ocular runs lives in its own folder under the models directory with a
//! `manifest.json` beside its ONNX file(s). The manifest is the single source of truth for
//! inputs, outputs, preprocessing and labels, so runtime code never hard-codes a model's shape,
//! and admin commands can list models without opening an ONNX file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the manifest inside a model folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What a model is for; decides which runtime wrapper loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Skin-lesion classifier: image + metadata -> class probabilities (+ Grad-CAM feature map).
    SkinClassifier,
    /// ImageNet-style classifier whose pooled feature doubles as an image embedding.
    ImageClassifier,
    /// Sentence embedding model (token ids -> pooled, normalised vector).
    TextEncoder,
    /// CLIP vision tower.
    ClipImage,
    /// CLIP text tower.
    ClipText,
    /// A tiny test model with no semantics, used to exercise the runtime.
    Fixture,
    /// A user's classifier converted by `ocular models import`: one photo (plus declared
    /// numeric vectors) in, class scores and Grad-CAM out; served by name at
    /// `/api/v1/models/{name}/predict` (`extra.classifier` records its inputs and output).
    Imported,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::SkinClassifier => "skin_classifier",
            ModelKind::ImageClassifier => "image_classifier",
            ModelKind::TextEncoder => "text_encoder",
            ModelKind::ClipImage => "clip_image",
            ModelKind::ClipText => "clip_text",
            ModelKind::Fixture => "fixture",
            ModelKind::Imported => "imported",
        }
    }
}

/// Where the weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Package name in its registry, e.g. `sklesion`.
    pub package: String,
    pub version: String,
    pub license: String,
    /// Path of the weights file inside the package.
    pub file: String,
    /// sha256 of the downloaded package archive.
    pub sha256: String,
}

/// A file of the model folder with its digest, checked when the model is loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// One graph input or output. `-1` marks a dynamic dimension (usually the batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// `float32` or `int64`.
    pub dtype: String,
    pub shape: Vec<i64>,
}

/// How pixels are resampled to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// `tf.image.resize(..., "bilinear", antialias=False)`: half-pixel centres, no antialias,
    /// aspect ratio not kept. What Keras models were trained with.
    BilinearTf,
    /// Shortest side to the target with bicubic, then centre crop (CLIP).
    ShortestBicubicCenterCrop,
}

/// Tensor memory layout of the image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// Image input recipe: `value = (pixel * scale - mean[c]) / std[c]` after resizing,
/// with `pixel` the 0..255 RGB value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePreprocess {
    pub width: u32,
    pub height: u32,
    pub resize: ResizeMode,
    pub layout: Layout,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImagePreprocess {
    /// The input tensor shape of a batch of `batch` images in this recipe's layout.
    pub fn input_shape(&self, batch: i64) -> Vec<i64> {
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        match self.layout {
            Layout::Nchw => vec![batch, 3, h, w],
            Layout::Nhwc => vec![batch, h, w, 3],
        }
    }
}

/// Text input recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPreprocess {
    /// Tokenizer file in the model folder (`tokenizer.json` for Hugging Face tokenizers,
    /// `clip-bpe` for the built-in CLIP tokenizer).
    pub tokenizer: String,
    pub max_tokens: usize,
}

/// A class label of a classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For the skin model: whether the class is malignant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malignant: Option<bool>,
}

/// What exact Grad-CAM needs: the feature-map output of the ONNX graph and a description of
/// the differentiable head that maps its global average pool to the class probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradcamSpec {
    /// Name of the ONNX output holding the feature map A, layout NHWC or NCHW per `layout`.
    pub feature_output: String,
    pub layout: Layout,
    /// Keras/torch name of the layer that produced A, for people reading the manifest.
    pub layer: String,
    /// File (in the model folder) with the head description, see `ocular-models::gradcam`.
    pub head: String,
}

/// The manifest of one model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Short stable name, also the folder name (`sklesion`, `efficientnet-lite0`, `minilm`).
    pub name: String,
    pub version: String,
    pub kind: ModelKind,
    pub source: Option<Source>,
    /// The ONNX graph to load, relative to the folder.
    pub onnx: String,
    pub files: Vec<FileEntry>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImagePreprocess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextPreprocess>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradcam: Option<GradcamSpec>,
    /// Model-specific facts (published metrics, embedding dimension, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

/// Numeric precision of a model graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The converted float graph (`Manifest::onnx`).
    #[default]
    Fp32,
    /// The statically quantised graph (QDQ, u8 activations × s8 weights), when installed.
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "int8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision {other:?}; use fp32 or int8")),
        }
    }
}

/// Another graph of the same model in the same folder (today: the int8 one), listed under
/// `extra.variants` so manifests written before variants existed, and code that builds
/// manifests, stay valid. Its file is also in `files` with its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub precision: Precision,
    /// The ONNX file, relative to the folder.
    pub onnx: String,
    /// The same integer arithmetic with int8 instead of uint8 weights, which ONNX Runtime
    /// runs on its faster u8 × s8 kernels. Exact (and so equal to `onnx`) only on CPUs with
    /// VNNI; the runtime uses it there and nowhere else (docs/QUANTIZATION.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnni_onnx: Option<String>,
    /// Version of the quantiser that wrote it; `ocular models fetch` rewrites older ones.
    pub quantizer: u32,
    /// Activation range method (`minmax`, `percentile-99.999`).
    pub method: String,
    /// What it was calibrated on.
    pub calibration: String,
    /// Measured agreement with the float graph (see `ocular_convert::quantize::eval`).
    #[serde(default)]
    pub accuracy: serde_json::Value,
    /// Reference outputs of the float graph that the runtime compares the variant's outputs
    /// with when it loads it (absent in manifests written before the self-check existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_check: Option<SelfCheck>,
}

/// A load-time check of a quantised graph on the CPU that runs it: a few stored inputs and
/// what the float graph answered for them, with the tolerance the variant promises.
///
/// Why: integer kernels are chosen by instruction set, and some (u8 × s8 on AVX2 without
/// VNNI) saturate, so a graph that agreed with its float original where it was made can
/// disagree elsewhere. The runtime runs these inputs once at load and serves the float graph
/// instead when the answers are out of tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfCheck {
    pub cases: Vec<SelfCheckCase>,
    /// Output compared by cosine similarity (e.g. an embedding), if any.
    #[serde(default)]
    pub cosine_output: Option<String>,
    /// Lowest acceptable cosine between the variant's and the float `cosine_output`.
    #[serde(default)]
    pub min_cosine: f32,
    /// Output compared element-wise and by argmax (e.g. class probabilities).
    pub probability_output: String,
    /// Largest acceptable |variant − float| over the `probability_output` values.
    pub max_abs_diff: f32,
}

/// One self-check input and the float graph's outputs for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfCheckCase {
    /// A PNG in the model folder (listed in `files`), preprocessed by the manifest's recipe.
    pub image: String,
    /// The second (metadata) input, for models that have one.
    #[serde(default)]
    pub meta: Option<Vec<f32>>,
    /// Float outputs by name.
    pub outputs: std::collections::BTreeMap<String, Vec<f32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model manifest {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|source| ManifestError::Parse { path, source })
    }

    /// Writes `DIR/manifest.json` (pretty, so people can read it).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(MANIFEST_FILE), text + "\n")
    }

    /// The output spec with this name.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The alternative graphs recorded in `extra.variants` (none for older manifests).
    pub fn variants(&self) -> Vec<Variant> {
        serde_json::from_value(self.extra["variants"].clone()).unwrap_or_default()
    }

    /// Records `v`, replacing a variant of the same precision.
    pub fn set_variant(&mut self, v: Variant) {
        let mut all = self.variants();
        all.retain(|x| x.precision != v.precision);
        all.push(v);
        if !self.extra.is_object() {
            self.extra = serde_json::json!({});
        }
        self.extra["variants"] = serde_json::to_value(all).unwrap_or_default();
    }

    /// The manifest as the runtime uses it at `precision`, or `None` when that graph is not
    /// installed. The int8 view loads the variant's file and its version gains `+int8`, so
    /// the model id stored with every vector (`name@version`) differs between precisions and
    /// a catalog never mixes vectors of both.
    pub fn at_precision(&self, precision: Precision) -> Option<Manifest> {
        if precision == Precision::Fp32 {
            return Some(self.clone());
        }
        let v = self.variants().into_iter().find(|v| v.precision == precision)?;
        let mut m = self.clone();
        m.onnx = v.onnx;
        m.version = format!("{}+{}", self.version, precision.as_str());
        Some(m)
    }
}
