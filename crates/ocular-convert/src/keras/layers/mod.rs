//! One ONNX emitter per Keras layer family, and the dispatch from class name to emitter.
//!
//! Semantics follow the Keras 3 layer sources (`keras/src/layers/`) and, for the TensorFlow
//! backend they were trained on, `tf.nn`; operator choices follow the ONNX operator specs
//! (<https://onnx.ai/onnx/operators/>, opset 17). A class or an option not handled here is an
//! error naming the layer, never a silently different model.

mod activation;
mod conv;
mod core;
mod merge;
mod norm;
mod pool;

use serde_json::Value as Json;

pub(crate) use activation::{activation_name, apply_activation};

use super::config::LayerConfig;
use super::error::KerasError;
use super::flat::FlatNode;
use super::graph::{Ctx, Value};
use super::weights::Tensor;

/// Emits one layer call and returns its output value.
pub(crate) fn emit(cx: &mut Ctx, node: &FlatNode<'_>, w: Vec<Tensor>) -> Result<Value, KerasError> {
    let l = Layer { cfg: node.layer };
    let x = &node.inputs;
    compute_dtype(&l)?;
    match l.class() {
        "Conv2D" | "Convolution2D" => conv::conv2d(cx, &l, x, w),
        "DepthwiseConv2D" => conv::depthwise(cx, &l, x, w),
        "SeparableConv2D" | "SeparableConvolution2D" => conv::separable(cx, &l, x, w),
        "MaxPooling2D" | "MaxPool2D" | "AveragePooling2D" | "AvgPool2D" => pool::pool2d(cx, &l, x),
        "GlobalAveragePooling2D" | "GlobalAvgPool2D" | "GlobalMaxPooling2D" | "GlobalMaxPool2D" => {
            pool::global(cx, &l, x)
        }
        "ZeroPadding2D" => pool::zero_padding(cx, &l, x),
        "Cropping2D" => pool::cropping(cx, &l, x),
        "BatchNormalization" => norm::batch_norm(cx, &l, x, w),
        "Normalization" => norm::normalization(cx, &l, x, w),
        "Rescaling" => norm::rescaling(cx, &l, x),
        "Activation" | "ReLU" | "LeakyReLU" | "Softmax" | "PReLU" => activation::layer(cx, &l, x, w),
        "Dense" => core::dense(cx, &l, x, w),
        "Flatten" => core::flatten(cx, &l, x),
        "Reshape" => core::reshape(cx, &l, x),
        // Inference-time identities.
        "Dropout"
        | "SpatialDropout1D"
        | "SpatialDropout2D"
        | "SpatialDropout3D"
        | "GaussianNoise"
        | "GaussianDropout"
        | "AlphaDropout"
        | "ActivityRegularization" => Ok(cx.value(l.one(x)?)?.clone()),
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => merge::elementwise(cx, &l, x),
        "Concatenate" => merge::concatenate(cx, &l, x),
        _ => Err(KerasError::UnsupportedLayer { layer: l.name().to_string(), class: l.class().to_string() }),
    }
}

/// Refuses layers computing in another precision than float32 (mixed-precision policies):
/// a float32 graph would not reproduce their outputs.
fn compute_dtype(l: &Layer<'_>) -> Result<(), KerasError> {
    let name = match l.get("dtype") {
        None => return Ok(()),
        Some(Json::String(s)) => s.as_str(),
        Some(v) => v.get("config").and_then(|c| c.get("name")).and_then(Json::as_str).unwrap_or("float32"),
    };
    match name {
        "float32" => Ok(()),
        other => Err(l.unsupported(format!("dtype policy {other}"))),
    }
}

/// A layer's config with typed accessors whose errors name the layer.
pub(crate) struct Layer<'a> {
    pub cfg: &'a LayerConfig,
}

impl<'a> Layer<'a> {
    pub fn name(&self) -> &'a str {
        &self.cfg.name
    }

    pub fn class(&self) -> &'a str {
        &self.cfg.class
    }

    pub fn unsupported(&self, option: impl Into<String>) -> KerasError {
        KerasError::option(self.name(), self.class(), option)
    }

    pub fn shape_err(&self, problem: impl Into<String>) -> KerasError {
        KerasError::Shape { layer: self.name().to_string(), problem: problem.into() }
    }

    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.cfg.get(key)
    }

    fn bad(&self, key: &str) -> KerasError {
        KerasError::config(format!("layer `{}`: bad `{key}`", self.name()))
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, KerasError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| self.bad(key)),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, KerasError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key)),
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, KerasError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.bad(key)),
        }
    }

    pub fn usize(&self, key: &str) -> Result<usize, KerasError> {
        self.get(key).and_then(Json::as_u64).map(|v| v as usize).ok_or_else(|| self.bad(key))
    }

    /// An `int` or a pair of ints (`kernel_size`, `strides`...), as `[rows, cols]`.
    pub fn pair(&self, key: &str, default: Option<[i64; 2]>) -> Result<[i64; 2], KerasError> {
        match self.get(key) {
            None => default.ok_or_else(|| self.bad(key)),
            Some(v) => {
                if let Some(n) = v.as_i64() {
                    return Ok([n, n]);
                }
                match v.as_array().map(|a| a.iter().map(Json::as_i64).collect::<Vec<_>>()) {
                    Some(a) if a.len() == 2 => match (a[0], a[1]) {
                        (Some(r), Some(c)) => Ok([r, c]),
                        _ => Err(self.bad(key)),
                    },
                    _ => Err(self.bad(key)),
                }
            }
        }
    }

    /// Refuses `data_format="channels_first"`: the converter assumes Keras' default.
    pub fn channels_last(&self) -> Result<(), KerasError> {
        match self.str_or("data_format", "channels_last")? {
            "channels_last" => Ok(()),
            other => Err(self.unsupported(format!("data_format={other}"))),
        }
    }

    /// The single input of a one-input layer.
    pub fn one(&self, inputs: &[usize]) -> Result<usize, KerasError> {
        match inputs {
            [x] => Ok(*x),
            _ => Err(self.shape_err(format!("expected one input, got {}", inputs.len()))),
        }
    }

    /// Checks the number of weight tensors a layer's options imply.
    pub fn expect(&self, w: Vec<Tensor>, n: usize) -> Result<Vec<Tensor>, KerasError> {
        if w.len() != n {
            return Err(KerasError::Weights {
                layer: self.name().to_string(),
                problem: format!("expected {n} weight tensors, found {}", w.len()),
            });
        }
        Ok(w)
    }

    /// Checks one weight tensor's shape.
    pub fn check(&self, t: &Tensor, what: &str, shape: &[usize]) -> Result<(), KerasError> {
        if t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
            return Err(KerasError::Weights {
                layer: self.name().to_string(),
                problem: format!("{what} has shape {:?}, expected {shape:?}", t.shape),
            });
        }
        Ok(())
    }
}

/// The known size of the channel (last) axis.
pub(crate) fn channels(l: &Layer<'_>, shape: &[Option<i64>]) -> Result<usize, KerasError> {
    shape
        .last()
        .copied()
        .flatten()
        .map(|c| c as usize)
        .ok_or_else(|| l.shape_err("the channel dimension must be known"))
}

/// A per-channel constant broadcastable against a value: `(C,1,1)` for NCHW feature maps,
/// `(C,)` for values in Keras order (channels last).
pub(crate) fn per_channel(cx: &mut Ctx, hint: &str, data: &[f32], nchw: bool) -> String {
    let c = data.len() as i64;
    if nchw { cx.g.constant_f32(hint, &[c, 1, 1], data) } else { cx.g.constant_f32(hint, &[c], data) }
}

/// The input in the layout a channel-wise op should use: NCHW for feature maps, else as is.
pub(crate) fn channel_input(cx: &mut Ctx, x: usize) -> Result<(String, bool), KerasError> {
    if cx.value(x)?.rank() == 4 { Ok((cx.nchw(x)?, true)) } else { Ok((cx.keras(x)?, false)) }
}

/// Wraps a result in the layout it was computed in.
pub(crate) fn output(name: String, shape: Vec<Option<i64>>, nchw: bool) -> Value {
    if nchw { Value::nchw(name, shape) } else { Value::keras(name, shape) }
}
