//! Dense, Flatten and Reshape: the layers whose meaning depends on Keras' axis order.
//!
//! All three work on the value in Keras order (channels last), so a feature map kept NCHW
//! is transposed back first: Flatten of an `(N, H, W, C)` map must enumerate `h, w, c` with
//! `c` fastest, as the Dense weights after it were trained on, and Dense contracts the last
//! axis (`keras/src/layers/core/dense.py`: `matmul(x, kernel) + bias` on any rank).

use serde_json::Value as Json;

use super::{Layer, activation_name, apply_activation};
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, Value};
use crate::keras::weights::Tensor;
use crate::onnx::Attr;

pub(crate) fn dense(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    let units = l.usize("units")?;
    let use_bias = l.bool_or("use_bias", true)?;
    if shape.len() < 2 {
        return Err(l.shape_err("Dense needs an input of rank 2 or more"));
    }
    let cin = super::channels(l, &shape)?;
    let w = l.expect(w, 1 + usize::from(use_bias))?;
    l.check(&w[0], "kernel", &[cin, units])?;
    let xn = cx.keras(x)?;
    let k = cx.g.constant_f32("kernel", &[cin as i64, units as i64], &w[0].data);
    let bias = match w.get(1) {
        Some(b) => {
            l.check(b, "bias", &[units])?;
            Some(cx.g.constant_f32("bias", &[units as i64], &b.data))
        }
        None => None,
    };
    let y = cx.g.dense(&xn, &k, bias.as_deref());
    let act = activation_name(l.get("activation")).ok_or_else(|| l.unsupported("a non-function activation"))?;
    let y = apply_activation(cx, l, &act, y, -1)?;
    let mut out = shape;
    if let Some(last) = out.last_mut() {
        *last = Some(units as i64);
    }
    Ok(Value::keras(y, out))
}

pub(crate) fn flatten(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    l.channels_last()?;
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    let xn = cx.keras(x)?;
    let y = cx.g.op("Flatten", &[&xn], vec![Attr::Int("axis", 1)]);
    let size = shape[1..].iter().try_fold(1i64, |acc, d| d.map(|d| acc * d));
    Ok(Value::keras(y, vec![shape[0], size]))
}

pub(crate) fn reshape(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    let target: Vec<i64> = l
        .get("target_shape")
        .and_then(Json::as_array)
        .and_then(|a| a.iter().map(Json::as_i64).collect())
        .ok_or_else(|| l.unsupported("target_shape format"))?;
    let known = shape[1..].iter().try_fold(1i64, |acc, d| d.map(|d| acc * d));
    let fixed: i64 = target.iter().filter(|&&d| d > 0).product();
    let mut out = vec![shape[0]];
    for &d in &target {
        out.push(match d {
            -1 => known.map(|k| k / fixed.max(1)),
            d => Some(d),
        });
    }
    if let (Some(k), None) = (known, target.iter().find(|&&d| d == -1))
        && k != fixed
    {
        return Err(l.shape_err(format!("cannot reshape {k} values to {target:?}")));
    }
    let xn = cx.keras(x)?;
    // 0 copies the batch size (ONNX Reshape with allowzero = 0).
    let mut dims = vec![0];
    dims.extend(&target);
    let s = cx.g.ints("shape", &dims);
    let y = cx.g.op("Reshape", &[&xn, &s], vec![]);
    Ok(Value::keras(y, out))
}
