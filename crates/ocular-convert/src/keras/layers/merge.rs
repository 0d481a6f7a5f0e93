//! Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.
//!
//! When every input is a feature map the merge happens in NCHW (no transposes around
//! residual additions); the Concatenate axis is then mapped from Keras' NHWC numbering
//! (channels `-1`/`3` become ONNX axis 1, rows `1` become 2, columns `2` become 3).
//! Reductions follow `keras/src/layers/merging/` (e.g. Average sums left to right, then
//! divides by the number of inputs).

use serde_json::Value as Json;

use super::Layer;
use super::activation::onnx_axis;
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, Shape, Value};
use crate::onnx::Attr;

/// The inputs in one common layout, their shapes, and whether that layout is NCHW.
fn aligned(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<(Vec<String>, Vec<Shape>, bool), KerasError> {
    if inputs.len() < 2 {
        return Err(l.shape_err("a merge layer needs at least two inputs"));
    }
    let shapes = inputs.iter().map(|&x| cx.shape(x)).collect::<Result<Vec<_>, _>>()?;
    let rank = shapes[0].len();
    if shapes.iter().any(|s| s.len() != rank) {
        return Err(l.unsupported("merging tensors of different ranks"));
    }
    let nchw = rank == 4;
    let names = inputs.iter().map(|&x| if nchw { cx.nchw(x) } else { cx.keras(x) }).collect::<Result<Vec<_>, _>>()?;
    Ok((names, shapes, nchw))
}

/// Numpy broadcasting of equal-rank shapes.
fn broadcast(l: &Layer<'_>, shapes: &[Shape]) -> Result<Shape, KerasError> {
    let mut out = shapes[0].clone();
    for s in &shapes[1..] {
        for (o, d) in out.iter_mut().zip(s) {
            *o = match (*o, *d) {
                (Some(1), d) | (d, Some(1)) => d,
                (Some(a), Some(b)) if a != b => {
                    return Err(l.shape_err(format!("cannot broadcast {a} with {b}")));
                }
                (Some(a), _) | (_, Some(a)) => Some(a),
                (None, None) => None,
            };
        }
    }
    Ok(out)
}

fn wrap(y: String, shape: Shape, nchw: bool) -> Value {
    if nchw { Value::nchw(y, shape) } else { Value::keras(y, shape) }
}

pub(crate) fn elementwise(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (names, shapes, nchw) = aligned(cx, l, inputs)?;
    let shape = broadcast(l, &shapes)?;
    let fold = |cx: &mut Ctx, op: &str| {
        let mut acc = names[0].clone();
        for n in &names[1..] {
            acc = cx.g.op(op, &[&acc, n], vec![]);
        }
        acc
    };
    let y = match l.class() {
        "Add" => fold(cx, "Add"),
        "Multiply" => fold(cx, "Mul"),
        "Maximum" => fold(cx, "Max"),
        "Minimum" => fold(cx, "Min"),
        "Subtract" if names.len() == 2 => fold(cx, "Sub"),
        "Average" => {
            let sum = fold(cx, "Add");
            let n = cx.g.scalar("count", names.len() as f32);
            cx.g.op("Div", &[&sum, &n], vec![])
        }
        other => return Err(l.unsupported(format!("{other} with {} inputs", names.len()))),
    };
    Ok(wrap(y, shape, nchw))
}

pub(crate) fn concatenate(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<Value, KerasError> {
    let (names, shapes, nchw) = aligned(cx, l, inputs)?;
    let rank = shapes[0].len();
    let axis = l.get("axis").map_or(Some(-1), Json::as_i64).ok_or_else(|| l.unsupported("axis format"))?;
    let k = if axis < 0 { axis + rank as i64 } else { axis };
    if k <= 0 || k >= rank as i64 {
        return Err(l.unsupported(format!("axis={axis}")));
    }
    let k = k as usize;
    let mut shape = shapes[0].clone();
    shape[k] = shapes.iter().try_fold(0i64, |acc, s| s[k].map(|d| acc + d));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let y = cx.g.op(
        "Concat",
        &refs,
        vec![Attr::Int("axis", onnx_axis(k as i64, rank, nchw).ok_or_else(|| l.unsupported(format!("axis={axis}")))?)],
    );
    Ok(wrap(y, shape, nchw))
}
