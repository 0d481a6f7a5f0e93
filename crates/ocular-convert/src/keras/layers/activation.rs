//! Activation functions and the activation layers (Activation, ReLU, LeakyReLU, Softmax, PReLU).
//!
//! Definitions follow `keras/src/activations/activations.py` and the TensorFlow backend
//! (`keras/src/backend/tensorflow/nn.py`): `hard_sigmoid(x) = relu6(x + 3) / 6` (Keras 2's
//! `clip(0.2 x + 0.5, 0, 1)` for models it saved),
//! `gelu` is the exact erf form by default, `leaky_relu` defaults to a slope of 0.2, and
//! `ReLU(max_value, negative_slope, threshold)` is Keras' piecewise definition.

use serde_json::Value as Json;

use super::{Layer, channel_input, output};
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, NHWC_TO_NCHW, Value};
use crate::keras::weights::Tensor;
use crate::onnx::Attr;

/// The name of an activation in a layer config: `"relu"` or Keras 3's
/// `{"class_name": "function", "config": "relu"}`.
pub(crate) fn activation_name(v: Option<&Json>) -> Option<String> {
    match v {
        None => Some("linear".into()),
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Object(m)) if m.get("class_name").and_then(Json::as_str) == Some("function") => {
            m.get("config").and_then(Json::as_str).map(str::to_string)
        }
        Some(_) => None,
    }
}

/// Applies a named activation to `x`; `axis` is the ONNX axis softmax works on.
pub(crate) fn apply_activation(
    cx: &mut Ctx,
    l: &Layer<'_>,
    name: &str,
    x: String,
    axis: i64,
) -> Result<String, KerasError> {
    let g = &mut cx.g;
    Ok(match name {
        "linear" => x,
        "relu" => g.op("Relu", &[&x], vec![]),
        "relu6" => relu6(cx, &x),
        "sigmoid" => g.op("Sigmoid", &[&x], vec![]),
        "tanh" => g.op("Tanh", &[&x], vec![]),
        "swish" | "silu" => {
            let s = g.op("Sigmoid", &[&x], vec![]);
            g.op("Mul", &[&x, &s], vec![])
        }
        "softmax" => g.op("Softmax", &[&x], vec![Attr::Int("axis", axis)]),
        "log_softmax" => g.op("LogSoftmax", &[&x], vec![Attr::Int("axis", axis)]),
        "hard_sigmoid" => hard_sigmoid(cx, &x),
        "hard_silu" | "hard_swish" => {
            let h = hard_sigmoid(cx, &x);
            cx.g.op("Mul", &[&x, &h], vec![])
        }
        "elu" => g.op("Elu", &[&x], vec![Attr::Float("alpha", 1.0)]),
        "selu" => g.op("Selu", &[&x], vec![Attr::Float("alpha", 1.673_263_2), Attr::Float("gamma", 1.050_701)]),
        "gelu" => {
            // 0.5 x (1 + erf(x / sqrt 2)); ONNX has Gelu only from opset 20.
            let r = g.scalar("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
            let half = g.scalar("half", 0.5);
            let one = g.scalar("one", 1.0);
            let e = g.op("Mul", &[&x, &r], vec![]);
            let e = g.op("Erf", &[&e], vec![]);
            let e = g.op("Add", &[&e, &one], vec![]);
            let hx = g.op("Mul", &[&x, &half], vec![]);
            g.op("Mul", &[&hx, &e], vec![])
        }
        "softplus" => g.op("Softplus", &[&x], vec![]),
        "softsign" => g.op("Softsign", &[&x], vec![]),
        "exponential" => g.op("Exp", &[&x], vec![]),
        "leaky_relu" => g.op("LeakyRelu", &[&x], vec![Attr::Float("alpha", 0.2)]),
        "mish" => {
            let s = g.op("Softplus", &[&x], vec![]);
            let t = g.op("Tanh", &[&s], vec![]);
            g.op("Mul", &[&x, &t], vec![])
        }
        other => return Err(l.unsupported(format!("activation `{other}`"))),
    })
}

fn relu6(cx: &mut Ctx, x: &str) -> String {
    let lo = cx.g.scalar("zero", 0.0);
    let hi = cx.g.scalar("six", 6.0);
    cx.g.op("Clip", &[x, &lo, &hi], vec![])
}

/// `relu6(x + 3) / 6`, exactly as Keras 3's TensorFlow backend computes it; Keras 2 defined
/// it as `clip(0.2 x + 0.5, 0, 1)` (`tf_keras/src/backend.py`), which a Keras 2 model keeps.
fn hard_sigmoid(cx: &mut Ctx, x: &str) -> String {
    if cx.keras2 {
        let (a, b) = (cx.g.scalar("point_two", 0.2), cx.g.scalar("point_five", 0.5));
        let (lo, hi) = (cx.g.scalar("zero", 0.0), cx.g.scalar("one", 1.0));
        let y = cx.g.op("Mul", &[x, &a], vec![]);
        let y = cx.g.op("Add", &[&y, &b], vec![]);
        return cx.g.op("Clip", &[&y, &lo, &hi], vec![]);
    }
    let three = cx.g.scalar("three", 3.0);
    let six = cx.g.scalar("six", 6.0);
    let s = cx.g.op("Add", &[x, &three], vec![]);
    let r = relu6(cx, &s);
    cx.g.op("Div", &[&r, &six], vec![])
}

/// Keras' ReLU layer: `x` above `threshold` (clipped at `max_value`), else
/// `negative_slope * (x - threshold)`.
fn relu_layer(cx: &mut Ctx, l: &Layer<'_>, x: &str) -> Result<String, KerasError> {
    let max = l.get("max_value").and_then(Json::as_f64);
    let slope = l.f64_or("negative_slope", 0.0)? as f32;
    let threshold = l.f64_or("threshold", 0.0)? as f32;
    if slope != 0.0 && max.is_none() && threshold == 0.0 {
        return Ok(cx.g.op("LeakyRelu", &[x], vec![Attr::Float("alpha", slope)]));
    }
    let mut clip = max;
    let mut pos = if threshold != 0.0 {
        let t = cx.g.scalar("threshold", threshold);
        let zero = cx.g.scalar("zero", 0.0);
        let above = cx.g.op("Greater", &[x, &t], vec![]);
        cx.g.op("Where", &[&above, x, &zero], vec![])
    } else if max == Some(6.0) {
        clip = None;
        relu6(cx, x)
    } else {
        cx.g.op("Relu", &[x], vec![])
    };
    if let Some(m) = clip {
        let lo = cx.g.scalar("zero", 0.0);
        let hi = cx.g.scalar("max_value", m as f32);
        pos = cx.g.op("Clip", &[&pos, &lo, &hi], vec![]);
    }
    if slope != 0.0 {
        // negative part = relu(threshold - x)
        let t = cx.g.scalar("threshold", threshold);
        let neg = cx.g.op("Sub", &[&t, x], vec![]);
        let neg = cx.g.op("Relu", &[&neg], vec![]);
        let s = cx.g.scalar("slope", slope);
        let neg = cx.g.op("Mul", &[&neg, &s], vec![]);
        pos = cx.g.op("Sub", &[&pos, &neg], vec![]);
    }
    Ok(pos)
}

/// The ONNX axis for a Keras axis of a value stored NCHW (rank 4) or in Keras order;
/// `None` when the axis does not exist.
pub(crate) fn onnx_axis(keras_axis: i64, rank: usize, nchw: bool) -> Option<i64> {
    let r = rank as i64;
    let a = if keras_axis < 0 { keras_axis + r } else { keras_axis };
    if !(0..r).contains(&a) {
        return None;
    }
    Some(if nchw { NHWC_TO_NCHW[a as usize] } else { a })
}

pub(crate) fn layer(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    let rank = shape.len();
    let (xn, nchw) = channel_input(cx, x)?;
    let channel_axis = onnx_axis(-1, rank, nchw).ok_or_else(|| l.shape_err("rank-0 input"))?;
    let y = match l.class() {
        "Activation" => {
            let name =
                activation_name(l.get("activation")).ok_or_else(|| l.unsupported("a non-function activation"))?;
            apply_activation(cx, l, &name, xn, channel_axis)?
        }
        "ReLU" => relu_layer(cx, l, &xn)?,
        "LeakyReLU" => {
            // Keras 3 calls the slope `negative_slope`, Keras 2 `alpha`; both default to 0.3.
            let slope = l.get("negative_slope").or_else(|| l.get("alpha")).and_then(Json::as_f64).unwrap_or(0.3);
            cx.g.op("LeakyRelu", &[&xn], vec![Attr::Float("alpha", slope as f32)])
        }
        "Softmax" => {
            let axis = match l.get("axis") {
                None => -1,
                Some(Json::Array(a)) if a.len() == 1 => a[0].as_i64().unwrap_or(-1),
                Some(v) => v.as_i64().ok_or_else(|| l.unsupported("softmax over several axes"))?,
            };
            let a = onnx_axis(axis, rank, nchw).ok_or_else(|| l.unsupported(format!("axis={axis}")))?;
            cx.g.op("Softmax", &[&xn], vec![Attr::Int("axis", a)])
        }
        "PReLU" => prelu(cx, l, &xn, &shape, nchw, w)?,
        other => return Err(l.unsupported(format!("class {other}"))),
    };
    Ok(output(y, shape, nchw))
}

/// PReLU: `max(x, 0) + alpha * min(x, 0)` with `alpha` shaped like the input without batch
/// (shared axes of size 1); for NCHW its (H, W, C) layout becomes (C, H, W).
fn prelu(
    cx: &mut Ctx,
    l: &Layer<'_>,
    x: &str,
    shape: &[Option<i64>],
    nchw: bool,
    w: Vec<Tensor>,
) -> Result<String, KerasError> {
    let [alpha] = <[Tensor; 1]>::try_from(l.expect(w, 1)?).map_err(|_| l.unsupported("weights"))?;
    if alpha.shape.len() + 1 != shape.len() {
        return Err(l.shape_err("PReLU alpha rank does not match the input"));
    }
    let (dims, data) = if nchw {
        let (h, wd, c) = (alpha.shape[0], alpha.shape[1], alpha.shape[2]);
        let mut t = vec![0.0; alpha.data.len()];
        for i in 0..h {
            for j in 0..wd {
                for k in 0..c {
                    t[(k * h + i) * wd + j] = alpha.data[(i * wd + j) * c + k];
                }
            }
        }
        (vec![c as i64, h as i64, wd as i64], t)
    } else {
        (alpha.shape.iter().map(|&d| d as i64).collect(), alpha.data)
    };
    let a = cx.g.constant_f32("prelu_alpha", &dims, &data);
    Ok(cx.g.op("PRelu", &[x, &a], vec![]))
}
