//! Conv2D, DepthwiseConv2D and SeparableConv2D as ONNX `Conv` (NCHW, grouped for depthwise).
//!
//! Kernel layouts: Keras stores Conv2D kernels as `(kh, kw, in/groups, out)` and depthwise
//! kernels as `(kh, kw, in, multiplier)`; ONNX wants `(out, in/groups, kh, kw)`, and a
//! depthwise output channel `c * multiplier + m` is group `c`'s `m`-th filter
//! (`tf.nn.depthwise_conv2d`'s order). SeparableConv2D is a depthwise conv followed by a
//! 1x1 pointwise conv, then the bias (`tf.nn.separable_conv2d`).
//!
//! `padding="same"` is TensorFlow's: output size `ceil(in / stride)`, total padding
//! `max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)`, the odd pixel going *after*
//! (bottom/right). Pads are explicit when the size is known and `auto_pad=SAME_UPPER`
//! (same rule) otherwise. See <https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2>.

use super::{Layer, activation_name, apply_activation, channels};
use crate::keras::error::KerasError;
use crate::keras::graph::{Ctx, Shape, Value};
use crate::keras::weights::Tensor;
use crate::onnx::Attr;

/// Spatial geometry of a sliding window op.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub kernel: [i64; 2],
    pub strides: [i64; 2],
    pub dilation: [i64; 2],
    pub same: bool,
}

impl Window {
    pub fn from_layer(l: &Layer<'_>, kernel_key: &str) -> Result<Self, KerasError> {
        let kernel = l.pair(kernel_key, None)?;
        let strides = l.pair("strides", Some(kernel))?;
        let dilation = l.pair("dilation_rate", Some([1, 1]))?;
        let same = match l.str_or("padding", "valid")? {
            "valid" => false,
            "same" => true,
            other => return Err(l.unsupported(format!("padding={other}"))),
        };
        if strides.iter().any(|&s| s < 1) || kernel.iter().any(|&k| k < 1) {
            return Err(l.shape_err("kernel sizes and strides must be positive"));
        }
        Ok(Self { kernel, strides, dilation, same })
    }

    fn effective(&self, i: usize) -> i64 {
        (self.kernel[i] - 1) * self.dilation[i] + 1
    }

    /// Output spatial size along axis `i` (0 = rows, 1 = cols) for input size `n`.
    pub fn out_size(&self, l: &Layer<'_>, i: usize, n: Option<i64>) -> Result<Option<i64>, KerasError> {
        let Some(n) = n else { return Ok(None) };
        let s = self.strides[i];
        let out = if self.same { (n + s - 1) / s } else { (n - self.effective(i)) / s + 1 };
        if out < 1 || (!self.same && n < self.effective(i)) {
            return Err(l.shape_err(format!("window larger than the input ({n})")));
        }
        Ok(Some(out))
    }

    /// ONNX attributes: kernel_shape, strides, and pads or auto_pad.
    pub fn attrs(&self, shape: &Shape, with_dilation: bool) -> Vec<Attr> {
        let mut a =
            vec![Attr::Ints("kernel_shape", self.kernel.to_vec()), Attr::Ints("strides", self.strides.to_vec())];
        if with_dilation {
            a.push(Attr::Ints("dilations", self.dilation.to_vec()));
        }
        if self.same {
            match (shape[1], shape[2]) {
                (Some(h), Some(w)) => {
                    let (t, b) = self.same_pads(0, h);
                    let (le, r) = self.same_pads(1, w);
                    a.push(Attr::Ints("pads", vec![t, le, b, r]));
                }
                _ => a.push(Attr::Str("auto_pad", "SAME_UPPER".into())),
            }
        }
        a
    }

    /// TF 'same' padding (before, after) along axis `i` for input size `n`.
    pub fn same_pads(&self, i: usize, n: i64) -> (i64, i64) {
        let s = self.strides[i];
        let out = (n + s - 1) / s;
        let total = ((out - 1) * s + self.effective(i) - n).max(0);
        (total / 2, total - total / 2)
    }

    pub fn out_shape(&self, l: &Layer<'_>, x: &Shape, c: i64) -> Result<Shape, KerasError> {
        Ok(vec![x[0], self.out_size(l, 0, x[1])?, self.out_size(l, 1, x[2])?, Some(c)])
    }
}

fn conv_input(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize]) -> Result<(String, Shape), KerasError> {
    l.channels_last()?;
    let x = l.one(inputs)?;
    let shape = cx.shape(x)?;
    if shape.len() != 4 {
        return Err(l.shape_err(format!("expected a 4-D input, got rank {}", shape.len())));
    }
    Ok((cx.nchw(x)?, shape))
}

/// `(kh, kw, cin, cout)` -> `(cout, cin, kh, kw)`.
fn hwio_to_oihw(k: &Tensor) -> Vec<f32> {
    let [kh, kw, ci, co] = [k.shape[0], k.shape[1], k.shape[2], k.shape[3]];
    let mut out = vec![0.0; k.data.len()];
    for i in 0..kh {
        for j in 0..kw {
            for c in 0..ci {
                for o in 0..co {
                    out[((o * ci + c) * kh + i) * kw + j] = k.data[((i * kw + j) * ci + c) * co + o];
                }
            }
        }
    }
    out
}

/// Bias and the layer's own activation, shared by the three conv layers.
fn finish(cx: &mut Ctx, l: &Layer<'_>, y: String, bias: Option<&Tensor>, shape: Shape) -> Result<Value, KerasError> {
    let mut y = y;
    if let Some(b) = bias {
        let c = cx.g.constant_f32("bias", &[b.data.len() as i64, 1, 1], &b.data);
        y = cx.g.op("Add", &[&y, &c], vec![]);
    }
    let act = activation_name(l.get("activation")).ok_or_else(|| l.unsupported("a non-function activation"))?;
    let y = apply_activation(cx, l, &act, y, 1)?;
    Ok(Value::nchw(y, shape))
}

pub(crate) fn conv2d(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let (x, shape) = conv_input(cx, l, inputs)?;
    let win = Window::from_layer(l, "kernel_size")?;
    let filters = l.usize("filters")?;
    let groups = l.get("groups").and_then(|v| v.as_u64()).unwrap_or(1) as usize;
    let use_bias = l.bool_or("use_bias", true)?;
    let cin = channels(l, &shape)?;
    if groups == 0 || cin % groups != 0 {
        return Err(l.shape_err(format!("{cin} channels do not split into {groups} groups")));
    }
    let w = l.expect(w, 1 + usize::from(use_bias))?;
    let [kh, kw] = win.kernel.map(|k| k as usize);
    l.check(&w[0], "kernel", &[kh, kw, cin / groups, filters])?;
    let k = cx.g.constant_f32(
        "kernel",
        &[filters as i64, (cin / groups) as i64, kh as i64, kw as i64],
        &hwio_to_oihw(&w[0]),
    );
    let mut attrs = win.attrs(&shape, true);
    attrs.push(Attr::Int("group", groups as i64));
    let y = cx.g.op("Conv", &[&x, &k], attrs);
    if let Some(b) = w.get(1) {
        l.check(b, "bias", &[filters])?;
    }
    let out = win.out_shape(l, &shape, filters as i64)?;
    finish(cx, l, y, w.get(1), out)
}

/// A depthwise conv of `x` with a Keras `(kh, kw, cin, mult)` kernel.
fn depthwise_op(
    cx: &mut Ctx,
    l: &Layer<'_>,
    x: &str,
    shape: &Shape,
    win: &Window,
    k: &Tensor,
) -> Result<(String, usize), KerasError> {
    let cin = channels(l, shape)?;
    let [kh, kw] = win.kernel.map(|k| k as usize);
    let mult = k.shape.get(3).copied().unwrap_or(0);
    l.check(k, "depthwise kernel", &[kh, kw, cin, mult])?;
    // Output channel c * mult + m, one input channel per group: exactly `hwio_to_oihw` of
    // the kernel viewed as (kh, kw, 1, cin * mult).
    let flat = Tensor { shape: vec![kh, kw, 1, cin * mult], data: k.data.clone() };
    let kc =
        cx.g.constant_f32("depthwise_kernel", &[(cin * mult) as i64, 1, kh as i64, kw as i64], &hwio_to_oihw(&flat));
    let mut attrs = win.attrs(shape, true);
    attrs.push(Attr::Int("group", cin as i64));
    Ok((cx.g.op("Conv", &[x, &kc], attrs), cin * mult))
}

pub(crate) fn depthwise(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let (x, shape) = conv_input(cx, l, inputs)?;
    let win = Window::from_layer(l, "kernel_size")?;
    let use_bias = l.bool_or("use_bias", true)?;
    let w = l.expect(w, 1 + usize::from(use_bias))?;
    let (y, cout) = depthwise_op(cx, l, &x, &shape, &win, &w[0])?;
    if let Some(b) = w.get(1) {
        l.check(b, "bias", &[cout])?;
    }
    let out = win.out_shape(l, &shape, cout as i64)?;
    finish(cx, l, y, w.get(1), out)
}

pub(crate) fn separable(cx: &mut Ctx, l: &Layer<'_>, inputs: &[usize], w: Vec<Tensor>) -> Result<Value, KerasError> {
    let (x, shape) = conv_input(cx, l, inputs)?;
    let win = Window::from_layer(l, "kernel_size")?;
    let filters = l.usize("filters")?;
    let use_bias = l.bool_or("use_bias", true)?;
    let w = l.expect(w, 2 + usize::from(use_bias))?;
    let (y, mid) = depthwise_op(cx, l, &x, &shape, &win, &w[0])?;
    l.check(&w[1], "pointwise kernel", &[1, 1, mid, filters])?;
    let pk = cx.g.constant_f32("pointwise_kernel", &[filters as i64, mid as i64, 1, 1], &hwio_to_oihw(&w[1]));
    let y = cx.g.op("Conv", &[&y, &pk], vec![Attr::Ints("kernel_shape", vec![1, 1])]);
    if let Some(b) = w.get(2) {
        l.check(b, "bias", &[filters])?;
    }
    let out = win.out_shape(l, &shape, filters as i64)?;
    finish(cx, l, y, w.get(2), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(k: i64, s: i64, d: i64) -> Window {
        Window { kernel: [k, k], strides: [s, s], dilation: [d, d], same: true }
    }

    #[test]
    fn tf_same_padding_puts_the_odd_pixel_after() {
        // The sklesion max-pool sizes from docs/MODELS.md: 124, 62, 31, 16 -> (0,1) (0,1) (1,1) (0,1).
        let w = win(3, 2, 1);
        assert_eq!([124, 62, 31, 16].map(|n| w.same_pads(0, n)), [(0, 1), (0, 1), (1, 1), (0, 1)]);
        assert_eq!(win(3, 1, 2).same_pads(0, 10), (2, 2));
        assert_eq!(win(5, 2, 1).same_pads(0, 10), (1, 2));
    }
}
