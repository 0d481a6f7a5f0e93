//! BatchNormalization (inference), Normalization and Rescaling: per-channel affine maps.
//!
//! - BatchNormalization computes what `tf.nn.batch_normalization` does at inference:
//!   `inv = rsqrt(var + eps) * gamma; y = x * inv + (beta - mean * inv)`, with `eps` from
//!   the layer config (`keras/src/layers/normalization/batch_normalization.py`).
//! - Normalization computes `(x - mean) / maximum(sqrt(var), 1e-7)` (Keras'
//!   `backend.epsilon()`), or its inverse with `invert=True`; mean and variance come from the
//!   config when given there, else from the weights (`mean`, `variance`, `count`)
//!   (`keras/src/layers/preprocessing/normalization.py`).
//! - Rescaling computes `x * scale + offset` (scalars, or lists over the last axis).

use serde_json::Value as Json;

use super::{Layer, channel_input, channels, output, per_channel};
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, Value};
use crate::keras::weights::Tensor;

/// Accepts only normalisation over the last (channel) axis.
fn last_axis(l: &Layer<'_>, rank: usize) -> Result<(), KerasError> {
    let axes: Vec<i64> = match l.get("axis") {
        None => vec![-1],
        Some(Json::Array(a)) => a.iter().filter_map(Json::as_i64).collect(),
        Some(v) => v.as_i64().into_iter().collect(),
    };
    let r = rank as i64;
    match axes.as_slice() {
        [a] if (a + r) % r == r - 1 => Ok(()),
        _ => Err(l.unsupported(format!("axis={axes:?} (only the last axis)"))),
    }
}

pub(crate) fn batch_norm(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    last_axis(l, shape.len())?;
    let c = channels(l, &shape)?;
    if l.bool_or("renorm", false)? {
        return Err(l.unsupported("renorm=True"));
    }
    let eps = l.f64_or("epsilon", 1e-3)? as f32;
    let scale = l.bool_or("scale", true)?;
    let center = l.bool_or("center", true)?;
    let mut w = l.expect(w, 2 + usize::from(scale) + usize::from(center))?.into_iter();
    let mut next = |what: &str| -> Result<Vec<f32>, KerasError> {
        let t = w.next().ok_or_else(|| l.unsupported("weights"))?;
        l.check(&t, what, &[c])?;
        Ok(t.data)
    };
    let gamma = if scale { Some(next("gamma")?) } else { None };
    let beta = if center { Some(next("beta")?) } else { None };
    let mean = next("moving_mean")?;
    let var = next("moving_variance")?;
    let mut inv: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    if let Some(g) = &gamma {
        inv.iter_mut().zip(g).for_each(|(i, g)| *i *= g);
    }
    let shift: Vec<f32> = (0..c).map(|i| beta.as_ref().map_or(0.0, |b| b[i]) - mean[i] * inv[i]).collect();
    let (xn, nchw) = channel_input(cx, x)?;
    let s = per_channel(cx, "bn_scale", &inv, nchw);
    let b = per_channel(cx, "bn_shift", &shift, nchw);
    let y = cx.g.op("Mul", &[&xn, &s], vec![]);
    let y = cx.g.op("Add", &[&y, &b], vec![]);
    Ok(output(y, shape, nchw))
}

/// A list of numbers (or one number) from the config.
fn numbers(v: &Json) -> Option<Vec<f32>> {
    match v {
        Json::Array(a) => a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect(),
        other => other.as_f64().map(|f| vec![f as f32]),
    }
}

/// Broadcasts a scalar or per-channel list to `c` channels.
fn to_channels(l: &Layer<'_>, v: Vec<f32>, c: usize, what: &str) -> Result<Vec<f32>, KerasError> {
    match v.len() {
        1 => Ok(vec![v[0]; c]),
        n if n == c => Ok(v),
        n => Err(l.shape_err(format!("{what} has {n} values for {c} channels"))),
    }
}

pub(crate) fn normalization(
    cx: &mut Ctx,
    l: &Layer<'_>,
    inputs: &[usize],
    w: Vec<Tensor>,
) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    if l.get("axis").is_some() {
        last_axis(l, shape.len())?;
    }
    let c = channels(l, &shape)?;
    let (mean, var) = match (l.get("mean"), l.get("variance")) {
        (Some(m), Some(v)) => (
            numbers(m).ok_or_else(|| l.unsupported("mean format"))?,
            numbers(v).ok_or_else(|| l.unsupported("variance format"))?,
        ),
        _ => {
            let mut w = w.into_iter();
            match (w.next(), w.next()) {
                (Some(m), Some(v)) => (m.data, v.data),
                _ => return Err(l.unsupported("Normalization without mean and variance")),
            }
        }
    };
    let mean = to_channels(l, mean, c, "mean")?;
    // maximum(sqrt(var), epsilon) with Keras' backend epsilon.
    let std: Vec<f32> = to_channels(l, var, c, "variance")?.iter().map(|v| v.sqrt().max(1e-7)).collect();
    let (xn, nchw) = channel_input(cx, x)?;
    let m = per_channel(cx, "norm_mean", &mean, nchw);
    let s = per_channel(cx, "norm_std", &std, nchw);
    let y = if l.bool_or("invert", false)? {
        let y = cx.g.op("Mul", &[&xn, &s], vec![]);
        cx.g.op("Add", &[&m, &y], vec![])
    } else {
        let y = cx.g.op("Sub", &[&xn, &m], vec![]);
        cx.g.op("Div", &[&y, &s], vec![])
    };
    Ok(output(y, shape, nchw))
}

pub(crate) fn rescaling(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    let get = |key: &str, default: f32| -> Result<Vec<f32>, KerasError> {
        match l.get(key) {
            None => Ok(vec![default]),
            Some(v) => numbers(v).ok_or_else(|| l.unsupported(format!("{key} format"))),
        }
    };
    let (scale, offset) = (get("scale", 1.0)?, get("offset", 0.0)?);
    let (xn, nchw) = channel_input(cx, x)?;
    let mut constant = |hint: &str, v: Vec<f32>| -> Result<String, KerasError> {
        if v.len() == 1 {
            return Ok(cx.g.scalar(hint, v[0]));
        }
        let c = channels(l, &shape)?;
        let v = to_channels(l, v, c, hint)?;
        Ok(per_channel(cx, hint, &v, nchw))
    };
    let s = constant("scale", scale)?;
    let o = constant("offset", offset)?;
    let y = cx.g.op("Mul", &[&xn, &s], vec![]);
    let y = cx.g.op("Add", &[&y, &o], vec![]);
    Ok(output(y, shape, nchw))
}
