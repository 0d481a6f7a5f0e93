//! Keras → ONNX: converts a Keras Functional (or Sequential) model to an ONNX graph that
//! ONNX Runtime runs, without Python or TensorFlow.
//!
//! Reads Keras 3 archives (`.keras`: a zip with `config.json` and `model.weights.h5`) and
//! legacy HDF5 models (`.h5` with a `model_config` attribute and a `model_weights` group, as
//! written by Keras 2 and by Keras 3's `model.save("x.h5")`). The pipeline:
//!
//! 1. `config` parses the topology (both config dialects) and `flat` inlines nested models
//!    into one list of layer calls;
//! 2. `weights` finds each layer's variables (Keras 3 stores them by auto-generated path,
//!    legacy files by layer name);
//! 3. `graph` and `layers` emit ONNX operators, keeping feature maps NCHW inside the
//!    graph while inputs and outputs keep Keras' NHWC;
//! 4. `head` looks for a classifier head behind global average pooling; when found, the
//!    pooled feature map becomes an extra output and the head is described for exact
//!    Grad-CAM (`ocular_core::head`).
//!
//! Layer semantics follow the Keras 3 sources (<https://github.com/keras-team/keras>,
//! `keras/src/layers/`) with the TensorFlow backend the models were trained on. Anything not
//! covered is refused with [`KerasError::UnsupportedLayer`] or
//! [`KerasError::UnsupportedOption`]; a model is never converted approximately.

mod config;
mod error;
mod flat;
mod graph;
mod head;
mod layers;
mod weights;

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use hdf5_reader::Hdf5File;
use ocular_core::head::HeadSpec;
use ocular_core::{FileEntry, GradcamSpec, Layout, TensorSpec};
use sha2::{Digest, Sha256};

pub use error::KerasError;

use crate::onnx::encode;
use graph::{Shape, dims};
use weights::WeightStore;

/// File name of the ONNX graph written by [`write_model_dir`].
pub const ONNX_FILE: &str = "model.onnx";

/// A converted model.
#[derive(Debug)]
pub struct Converted {
    /// The Keras model's name.
    pub name: String,
    /// Keras version that saved the file, when recorded.
    pub keras_version: Option<String>,
    /// The `.onnx` file's bytes.
    pub onnx: Vec<u8>,
    /// Graph inputs, named after the Keras input layers, in Keras' (NHWC) layout.
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs, named after the layers producing them: the model's outputs, then the
    /// Grad-CAM feature map (NHWC) when a head was found.
    pub outputs: Vec<TensorSpec>,
    /// The classifier head after the feature map (its weights inside; `head.json` +
    /// `head.bin` once written).
    pub head: Option<HeadSpec>,
    /// How to compute Grad-CAM with this graph and head.
    pub gradcam: Option<GradcamSpec>,
    /// Why exact Grad-CAM is not available, when it is not (which layer, and what it needs).
    pub gradcam_unavailable: Option<String>,
    /// Keras layer calls converted (nested models inlined; containers not counted).
    pub layers: usize,
    /// Keras weights read (BatchNorm statistics included, as Keras' `count_params`).
    pub params: usize,
    /// Values (floats) of all layer outputs for one image, summed: what one inference's
    /// activations could hold if none were freed early. `None` with a size unknown until run
    /// time. `ocular models import` records it for the memory estimate of a prediction.
    pub activation_values: Option<u64>,
}

/// Converts the `.keras` or `.h5` file at `path`.
pub fn convert(path: &Path) -> Result<Converted, KerasError> {
    let bytes = std::fs::read(path).map_err(|source| KerasError::Io { path: path.to_path_buf(), source })?;
    convert_bytes(bytes).map_err(|e| match e {
        KerasError::UnknownFormat { .. } => KerasError::UnknownFormat { path: path.to_path_buf() },
        other => other,
    })
}

/// Converts a model from the bytes of a `.keras` or `.h5` file.
pub fn convert_bytes(bytes: Vec<u8>) -> Result<Converted, KerasError> {
    let (config, store, version) = if bytes.starts_with(b"PK\x03\x04") {
        open_archive(&bytes)?
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        let file = Hdf5File::from_vec(bytes).map_err(KerasError::Hdf5)?;
        let version = file.root_group().and_then(|g| g.attribute("keras_version")).and_then(|a| a.read_string()).ok();
        let (store, config) = WeightStore::legacy(file)?;
        (config, store, version)
    } else {
        return Err(KerasError::UnknownFormat { path: Default::default() });
    };
    let json: serde_json::Value = serde_json::from_str(&config)?;
    let model = config::parse_model(&json)?;
    build(&model, &store, version)
}

/// The untrusted-structure half of a conversion, without weights: `config.json` parsed (both
/// dialects) and nested models inlined into layer calls, whose number is returned. Public for
/// the fuzz target `fuzz/fuzz_targets/keras_config.rs`; conversions go through [`convert`].
#[doc(hidden)]
pub fn parse_topology(config_json: &str, legacy: bool) -> Result<usize, KerasError> {
    let json: serde_json::Value = serde_json::from_str(config_json)?;
    let model = config::parse_model(&json)?;
    Ok(flat::flatten(&model, legacy)?.nodes.len())
}

/// `config.json`, the weights and the Keras version from a `.keras` zip.
fn open_archive(bytes: &[u8]) -> Result<(String, WeightStore, Option<String>), KerasError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let mut read = |name: &'static str| -> Result<Vec<u8>, KerasError> {
        let mut entry = zip.by_name(name).map_err(|e| match e {
            zip::result::ZipError::FileNotFound => KerasError::MissingEntry(name),
            other => KerasError::Zip(other),
        })?;
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut buf).map_err(|e| KerasError::Zip(e.into()))?;
        Ok(buf)
    };
    let config = String::from_utf8(read("config.json")?).map_err(|_| KerasError::config("config.json is not UTF-8"))?;
    let version = read("metadata.json").ok().and_then(|m| {
        let v: serde_json::Value = serde_json::from_slice(&m).ok()?;
        v.get("keras_version")?.as_str().map(str::to_string)
    });
    let store = WeightStore::keras3(read("model.weights.h5")?)?;
    Ok((config, store, version))
}

fn spec(name: &str, shape: &Shape) -> TensorSpec {
    TensorSpec {
        name: name.to_string(),
        dtype: "float32".into(),
        shape: shape.iter().map(|d| d.unwrap_or(-1)).collect(),
    }
}

fn build(
    model: &config::ModelConfig,
    store: &WeightStore,
    keras_version: Option<String>,
) -> Result<Converted, KerasError> {
    let flat = flat::flatten(model, store.is_legacy())?;
    let emitted =
        graph::emit(&flat, store, &model.name, keras_version.as_deref().is_some_and(|v| v.starts_with("2.")))?;
    let mut cx = emitted.cx;
    let (head, gradcam_unavailable) = match head::find(&flat, &cx, store)? {
        Ok(found) => (Some(found), None),
        Err(why) => (None, Some(why)),
    };

    let mut outputs = Vec::new();
    let mut names: HashSet<String> = flat.inputs.iter().map(|i| i.name.clone()).collect();
    let mut declare = |cx: &mut graph::Ctx, name: &str, value| -> Result<String, KerasError> {
        let mut name = name.to_string();
        while !names.insert(name.clone()) {
            name.push_str("_out");
        }
        let shape = cx.shape(value)?;
        let v = cx.keras(value)?;
        cx.g.output(&name, &v, &dims(&shape));
        outputs.push(spec(&name, &shape));
        Ok(name)
    };
    for (name, value) in &flat.outputs {
        declare(&mut cx, name, *value)?;
    }
    let gradcam = match &head {
        Some(found) => Some(GradcamSpec {
            feature_output: declare(&mut cx, &found.layer, found.feature)?,
            layout: Layout::Nhwc,
            layer: found.layer.clone(),
            head: ocular_core::head::HEAD_JSON.into(),
        }),
        None => None,
    };
    let version = keras_version.clone().unwrap_or_default();
    let proto = cx.g.finish(&[("ocular.source", "keras"), ("keras.model", &model.name), ("keras.version", &version)]);
    Ok(Converted {
        name: model.name.clone(),
        keras_version,
        onnx: encode(&proto),
        inputs: flat.inputs.iter().map(|i| spec(&i.name, &i.shape)).collect(),
        outputs,
        head: head.map(|h| h.spec),
        gradcam,
        gradcam_unavailable,
        layers: emitted.layers,
        params: emitted.params,
        activation_values: emitted.activation_values,
    })
}

/// Writes `model.onnx` (and `head.json` + `head.bin` when there is a head) into `dir`,
/// creating it; returns the files with their sizes and sha256 digests for the manifest.
pub fn write_model_dir(converted: &Converted, dir: &Path) -> Result<Vec<FileEntry>, KerasError> {
    let write = |name: &str, bytes: &[u8]| -> Result<FileEntry, KerasError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| KerasError::Write { path, source })?;
        Ok(FileEntry { path: name.to_string(), sha256: hex::encode(Sha256::digest(bytes)), bytes: bytes.len() as u64 })
    };
    std::fs::create_dir_all(dir).map_err(|source| KerasError::Write { path: dir.to_path_buf(), source })?;
    let mut files = vec![write(ONNX_FILE, &converted.onnx)?];
    if let Some(head) = &converted.head {
        let json = serde_json::to_vec_pretty(head)?;
        files.push(write(ocular_core::head::HEAD_JSON, &json)?);
        files.push(write(&head.weights, &head.weight_bytes())?);
    }
    Ok(files)
}
