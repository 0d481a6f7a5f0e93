//! Pooling, global pooling, ZeroPadding2D and Cropping2D on NCHW feature maps.
//!
//! TensorFlow's 'same' pooling pads like 'same' convolution (odd pixel after) but the padded
//! cells never take part: max pooling ignores them (as if `-inf`) and average pooling divides
//! by the number of real cells. ONNX `MaxPool` pads behave the same way, and `AveragePool`
//! does with `count_include_pad=0` (its default), so explicit pads reproduce TF exactly.

use super::conv::Window;
use super::{Layer, channels};
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, Value};
use crate::onnx::Attr;

fn feature_map(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<(String, Vec<Option<i64>>), KerasError> {
    l.channels_last()?;
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    if shape.len() != 4 {
        return Err(l.shape_err(format!("expected a 4-D input, got rank {}", shape.len())));
    }
    Ok((cx.nchw(x)?, shape))
}

pub(crate) fn pool2d(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (x, shape) = feature_map(cx, l, inputs)?;
    let win = Window::from_layer(l, "pool_size")?;
    let op = if l.class().starts_with("Max") { "MaxPool" } else { "AveragePool" };
    let y = cx.g.op(op, &[&x], win.attrs(&shape, false));
    let c = channels(l, &shape)? as i64;
    Ok(Value::nchw(y, win.out_shape(l, &shape, c)?))
}

pub(crate) fn global(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (x, shape) = feature_map(cx, l, inputs)?;
    let keepdims = l.bool_or("keepdims", false)?;
    let op = if l.class().contains("Max") { "ReduceMax" } else { "ReduceMean" };
    let y = cx.g.op(op, &[&x], vec![Attr::Ints("axes", vec![2, 3]), Attr::Int("keepdims", i64::from(keepdims))]);
    Ok(if keepdims {
        Value::nchw(y, vec![shape[0], Some(1), Some(1), shape[3]])
    } else {
        Value::keras(y, vec![shape[0], shape[3]])
    })
}

/// `((top, bottom), (left, right))` from an int, a pair of ints or a pair of pairs.
fn two_by_two(l: &Layer<'_>, key: &str) -> Result<[[i64; 2]; 2], KerasError> {
    let bad = || l.unsupported(format!("{key} format"));
    let v = l.get(key).ok_or_else(bad)?;
    if let Some(n) = v.as_i64() {
        return Ok([[n, n], [n, n]]);
    }
    let a = v.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let side = |e: &serde_json::Value| -> Result<[i64; 2], KerasError> {
        if let Some(n) = e.as_i64() {
            return Ok([n, n]);
        }
        match e.as_array().map(|p| p.iter().map(|x| x.as_i64()).collect::<Vec<_>>()) {
            Some(p) if p.len() == 2 => Ok([p[0].ok_or_else(bad)?, p[1].ok_or_else(bad)?]),
            _ => Err(bad()),
        }
    };
    Ok([side(&a[0])?, side(&a[1])?])
}

pub(crate) fn zero_padding(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (x, shape) = feature_map(cx, l, inputs)?;
    let [[t, b], [le, r]] = two_by_two(l, "padding")?;
    let pads = cx.g.ints("pads", &[0, 0, t, le, 0, 0, b, r]);
    let y = cx.g.op("Pad", &[&x, &pads], vec![]);
    let out = vec![shape[0], shape[1].map(|h| h + t + b), shape[2].map(|w| w + le + r), shape[3]];
    Ok(Value::nchw(y, out))
}

pub(crate) fn cropping(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (x, shape) = feature_map(cx, l, inputs)?;
    let [[t, b], [le, r]] = two_by_two(l, "cropping")?;
    // A negative end counts from the end; "no crop" must be the largest end instead of 0.
    let end = |n: i64| if n == 0 { i64::MAX } else { -n };
    let starts = cx.g.ints("starts", &[t, le]);
    let ends = cx.g.ints("ends", &[end(b), end(r)]);
    let axes = cx.g.ints("axes", &[2, 3]);
    let y = cx.g.op("Slice", &[&x, &starts, &ends, &axes], vec![]);
    let crop = |d: Option<i64>, a: i64, z: i64| d.map(|d| d - a - z);
    let out = vec![shape[0], crop(shape[1], t, b), crop(shape[2], le, r), shape[3]];
    if out[1..3].iter().flatten().any(|&d| d < 1) {
        return Err(l.shape_err("cropping removes the whole feature map"));
    }
    Ok(Value::nchw(y, out))
}
