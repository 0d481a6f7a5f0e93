//! The classifier head behind exact Grad-CAM: its description (`head.json` + `head.bin`),
//! its forward pass and its analytic gradient.
//!
//! # Why this exists
//!
//! Grad-CAM (Selvaraju et al., 2017, <https://arxiv.org/abs/1610.02391>; the Keras example
//! <https://keras.io/examples/vision/grad_cam/>) weights the channels of the last convolutional
//! feature map `A` (H×W×K) by the gradient of the class score. Running that gradient through
//! a whole CNN needs an autograd engine; but in the models ocular serves, everything after
//! `A` is a *head*: global average pooling, then a small MLP (Dense, BatchNorm, activations,
//! concatenation with other inputs such as patient metadata, softmax). So ONNX Runtime
//! computes `A` once (an extra graph output) and this module does the rest in plain Rust.
//!
//! # The maths
//!
//! With `g_k = (1/HW) Σ_ij A_ijk` (global average pooling) and `P = head(g, other inputs)`:
//!
//! - `∂P_c/∂A_ijk = (1/HW) · ∂P_c/∂g_k`, the same for every position `(i, j)`;
//! - Grad-CAM's channel weight is the spatial mean of that gradient:
//!   `α_k = (1/HW) Σ_ij ∂P_c/∂A_ijk = (1/HW) · ∂P_c/∂g_k`;
//! - `cam_ij = ReLU(Σ_k α_k A_ijk)`, then divided by its maximum so it lies in `[0, 1]`
//!   (all zeros when nothing is positive), as in the Keras example.
//!
//! `∂P_c/∂g` is reverse-mode differentiation through the head's few ops: Dense
//! `y = xW + b` gives `∂x = W ∂y`; inference BatchNorm `y = (x - μ)·γ/√(σ²+ε) + β` gives
//! `∂x = ∂y·γ/√(σ²+ε)`; ReLU passes the gradient where `y > 0`; softmax gives
//! `∂x_j = y_j (∂y_j - Σ_k ∂y_k y_k)`; concatenation splits the gradient. Values are
//! computed in f64, so the result is as exact as the f32 inputs allow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File names of a head inside a model folder.
pub const HEAD_JSON: &str = "head.json";
pub const HEAD_BIN: &str = "head.bin";

/// A run of little-endian f32 values in `head.bin`: byte offset and number of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub offset: usize,
    pub len: usize,
}

/// Activation functions a head may use (their gradients are implemented here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadActivation {
    Linear,
    Relu,
    Relu6,
    Sigmoid,
    Tanh,
    Swish,
    Softmax,
}

/// One step of the head on named 1-D values (one sample).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HeadOp {
    /// `output = input · kernel + bias`, `kernel` row-major `(in, units)` as Keras stores it.
    Dense {
        layer: String,
        input: String,
        output: String,
        units: usize,
        kernel: Blob,
        bias: Option<Blob>,
    },
    /// Inference batch normalisation with the moving statistics.
    BatchNorm {
        layer: String,
        input: String,
        output: String,
        epsilon: f32,
        gamma: Option<Blob>,
        beta: Option<Blob>,
        mean: Blob,
        variance: Blob,
    },
    Activation {
        layer: String,
        input: String,
        output: String,
        function: HeadActivation,
    },
    Concat {
        layer: String,
        inputs: Vec<String>,
        output: String,
    },
}

/// Another graph input that feeds the head (e.g. the metadata vector), by its ONNX name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadInput {
    pub name: String,
    pub dim: usize,
}

/// The head description stored as `head.json`; the weights live in `head.bin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    /// Name of the pooled feature vector `g` in `ops`.
    pub pooled: String,
    pub pooled_dim: usize,
    #[serde(default)]
    pub inputs: Vec<HeadInput>,
    /// In dependency order.
    pub ops: Vec<HeadOp>,
    /// The value holding the class probabilities.
    pub output: String,
    pub classes: usize,
    /// Weights file beside `head.json`.
    pub weights: String,
    #[serde(skip)]
    data: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid head description")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The description is inconsistent (a converter bug or a damaged file).
    #[error("invalid head: {0}")]
    Invalid(String),
    #[error("the head needs input `{0}`")]
    MissingInput(String),
    #[error("input `{name}` has {got} values, the head expects {expected}")]
    InputSize { name: String, expected: usize, got: usize },
    #[error("class {class} out of range (the head has {classes} classes)")]
    Class { class: usize, classes: usize },
}

fn invalid(msg: impl Into<String>) -> HeadError {
    HeadError::Invalid(msg.into())
}

impl HeadOp {
    pub fn output(&self) -> &str {
        match self {
            HeadOp::Dense { output, .. }
            | HeadOp::BatchNorm { output, .. }
            | HeadOp::Activation { output, .. }
            | HeadOp::Concat { output, .. } => output,
        }
    }

    fn inputs(&self) -> Vec<&str> {
        match self {
            HeadOp::Dense { input, .. } | HeadOp::BatchNorm { input, .. } | HeadOp::Activation { input, .. } => {
                vec![input.as_str()]
            }
            HeadOp::Concat { inputs, .. } => inputs.iter().map(String::as_str).collect(),
        }
    }
}

type Values = HashMap<String, Vec<f64>>;

impl HeadSpec {
    /// A head reading the pooled vector `pooled` (of `pooled_dim` values) and `inputs`,
    /// with its weights; checked before it is returned. The weights file is `head.bin`.
    pub fn new(
        pooled: String,
        pooled_dim: usize,
        inputs: Vec<HeadInput>,
        ops: Vec<HeadOp>,
        output: String,
        classes: usize,
        data: Vec<f32>,
    ) -> Result<Self, HeadError> {
        let spec =
            Self { pooled, pooled_dim, inputs, ops, output, classes, weights: HEAD_BIN.into(), data: Vec::new() };
        spec.with_weights(data)
    }

    /// Attaches the weights (what `head.bin` holds) and checks every op against them.
    pub fn with_weights(mut self, data: Vec<f32>) -> Result<Self, HeadError> {
        self.data = data;
        self.validate()?;
        Ok(self)
    }

    /// Reads `DIR/head.json` and the weights file it names.
    pub fn load(dir: &Path) -> Result<Self, HeadError> {
        let read = |path: PathBuf| std::fs::read(&path).map_err(|source| HeadError::Read { path, source });
        let path = dir.join(HEAD_JSON);
        let spec: HeadSpec =
            serde_json::from_slice(&read(path.clone())?).map_err(|source| HeadError::Parse { path, source })?;
        let bytes = read(dir.join(&spec.weights))?;
        if !bytes.len().is_multiple_of(4) {
            return Err(invalid("the weights file is not a whole number of f32 values"));
        }
        let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        spec.with_weights(data)
    }

    /// Writes `DIR/head.json` (pretty) and the weights file it names.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(HEAD_JSON), text + "\n")?;
        std::fs::write(dir.join(&self.weights), self.weight_bytes())
    }

    /// The weights as the bytes of `head.bin`.
    pub fn weight_bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn blob(&self, b: &Blob) -> Result<&[f32], HeadError> {
        let start = b.offset / 4;
        self.data
            .get(start..start + b.len)
            .filter(|_| b.offset.is_multiple_of(4))
            .ok_or_else(|| invalid(format!("weights {b:?} outside head.bin")))
    }

    /// Dimension checks: every op reads defined values of the right size.
    fn validate(&self) -> Result<(), HeadError> {
        let mut dims: HashMap<&str, usize> = HashMap::new();
        dims.insert(&self.pooled, self.pooled_dim);
        for i in &self.inputs {
            dims.insert(&i.name, i.dim);
        }
        for op in &self.ops {
            let ins = op
                .inputs()
                .into_iter()
                .map(|n| dims.get(n).copied().ok_or_else(|| invalid(format!("`{n}` used before defined"))))
                .collect::<Result<Vec<_>, _>>()?;
            let need = |b: &Blob, n: usize| -> Result<(), HeadError> {
                (self.blob(b)?.len() == n).then_some(()).ok_or_else(|| invalid(format!("{b:?} must hold {n} values")))
            };
            let out = match op {
                HeadOp::Dense { kernel, bias, units, .. } => {
                    need(kernel, ins[0] * units)?;
                    bias.as_ref().map_or(Ok(()), |b| need(b, *units))?;
                    *units
                }
                HeadOp::BatchNorm { gamma, beta, mean, variance, .. } => {
                    for b in [gamma.as_ref(), beta.as_ref(), Some(mean), Some(variance)].into_iter().flatten() {
                        need(b, ins[0])?;
                    }
                    ins[0]
                }
                HeadOp::Activation { .. } => ins[0],
                HeadOp::Concat { .. } => ins.iter().sum(),
            };
            dims.insert(op.output(), out);
        }
        match dims.get(self.output.as_str()) {
            Some(&n) if n == self.classes => Ok(()),
            _ => Err(invalid(format!("output `{}` must have {} values", self.output, self.classes))),
        }
    }

    /// Every value of the head for one sample.
    fn trace(&self, pooled: Vec<f64>, other: &HashMap<String, Vec<f32>>) -> Result<Values, HeadError> {
        let mut v: Values = HashMap::new();
        let size = |name: &str, expected: usize, got: usize| {
            (expected == got).then_some(()).ok_or_else(|| HeadError::InputSize { name: name.into(), expected, got })
        };
        size(&self.pooled, self.pooled_dim, pooled.len())?;
        v.insert(self.pooled.clone(), pooled);
        for i in &self.inputs {
            let x = other.get(&i.name).ok_or_else(|| HeadError::MissingInput(i.name.clone()))?;
            size(&i.name, i.dim, x.len())?;
            v.insert(i.name.clone(), x.iter().map(|&x| f64::from(x)).collect());
        }
        for op in &self.ops {
            let y = self.forward_op(op, &v)?;
            v.insert(op.output().to_string(), y);
        }
        Ok(v)
    }

    fn get<'a>(v: &'a Values, name: &str) -> Result<&'a [f64], HeadError> {
        v.get(name).map(Vec::as_slice).ok_or_else(|| invalid(format!("`{name}` undefined")))
    }

    /// Per-channel `(scale, shift)` of an inference BatchNorm.
    fn bn_affine(&self, op: &HeadOp) -> Result<(Vec<f64>, Vec<f64>), HeadError> {
        let HeadOp::BatchNorm { epsilon, gamma, beta, mean, variance, .. } = op else {
            return Err(invalid("not a batch norm"));
        };
        let (m, var) = (self.blob(mean)?, self.blob(variance)?);
        let g = gamma.as_ref().map(|b| self.blob(b)).transpose()?;
        let b = beta.as_ref().map(|b| self.blob(b)).transpose()?;
        let scale: Vec<f64> = (0..m.len())
            .map(|i| g.map_or(1.0, |g| f64::from(g[i])) / (f64::from(var[i]) + f64::from(*epsilon)).sqrt())
            .collect();
        let shift = (0..m.len()).map(|i| b.map_or(0.0, |b| f64::from(b[i])) - f64::from(m[i]) * scale[i]).collect();
        Ok((scale, shift))
    }

    fn forward_op(&self, op: &HeadOp, v: &Values) -> Result<Vec<f64>, HeadError> {
        Ok(match op {
            HeadOp::Dense { input, units, kernel, bias, .. } => {
                let x = Self::get(v, input)?;
                let w = self.blob(kernel)?;
                let mut y: Vec<f64> = match bias {
                    Some(b) => self.blob(b)?.iter().map(|&b| f64::from(b)).collect(),
                    None => vec![0.0; *units],
                };
                for (i, &xi) in x.iter().enumerate() {
                    for (yj, &wij) in y.iter_mut().zip(&w[i * units..(i + 1) * units]) {
                        *yj += xi * f64::from(wij);
                    }
                }
                y
            }
            HeadOp::BatchNorm { input, .. } => {
                let (scale, shift) = self.bn_affine(op)?;
                let x = Self::get(v, input)?;
                x.iter().zip(scale.iter().zip(&shift)).map(|(x, (s, b))| x * s + b).collect()
            }
            HeadOp::Activation { input, function, .. } => activate(*function, Self::get(v, input)?),
            HeadOp::Concat { inputs, .. } => {
                let mut y = Vec::new();
                for i in inputs {
                    y.extend_from_slice(Self::get(v, i)?);
                }
                y
            }
        })
    }

    /// Class probabilities for one sample.
    pub fn forward(&self, pooled: &[f32], other: &HashMap<String, Vec<f32>>) -> Result<Vec<f32>, HeadError> {
        let v = self.trace(widen(pooled), other)?;
        Ok(Self::get(&v, &self.output)?.iter().map(|&p| p as f32).collect())
    }

    /// `∂P_class/∂g` by reverse-mode differentiation through the ops.
    fn grad(&self, pooled: Vec<f64>, other: &HashMap<String, Vec<f32>>, class: usize) -> Result<Vec<f64>, HeadError> {
        if class >= self.classes {
            return Err(HeadError::Class { class, classes: self.classes });
        }
        let v = self.trace(pooled, other)?;
        let mut grads: Values = HashMap::new();
        let mut seed = vec![0.0; self.classes];
        seed[class] = 1.0;
        grads.insert(self.output.clone(), seed);
        for op in self.ops.iter().rev() {
            // Ops are in dependency order, so all consumers of this output were visited.
            let Some(dy) = grads.remove(op.output()) else { continue };
            let mut add = |name: &str, dx: Vec<f64>| {
                let e = grads.entry(name.to_string()).or_insert_with(|| vec![0.0; dx.len()]);
                e.iter_mut().zip(dx).for_each(|(a, d)| *a += d);
            };
            match op {
                HeadOp::Dense { input, units, kernel, .. } => {
                    let w = self.blob(kernel)?;
                    let dx = w
                        .chunks_exact(*units)
                        .map(|row| row.iter().zip(&dy).map(|(&w, d)| f64::from(w) * d).sum())
                        .collect();
                    add(input, dx);
                }
                HeadOp::BatchNorm { input, .. } => {
                    let (scale, _) = self.bn_affine(op)?;
                    add(input, dy.iter().zip(&scale).map(|(d, s)| d * s).collect());
                }
                HeadOp::Activation { input, output, function, .. } => {
                    let (x, y) = (Self::get(&v, input)?, Self::get(&v, output)?);
                    add(input, activation_grad(*function, x, y, &dy));
                }
                HeadOp::Concat { inputs, .. } => {
                    let mut at = 0;
                    for i in inputs {
                        let n = Self::get(&v, i)?.len();
                        add(i, dy[at..at + n].to_vec());
                        at += n;
                    }
                }
            }
        }
        Ok(grads.remove(&self.pooled).unwrap_or_else(|| vec![0.0; self.pooled_dim]))
    }

    /// `∂P_class/∂g_k` for the pooled features `g` of one sample.
    pub fn grad_wrt_pooled(
        &self,
        pooled: &[f32],
        other: &HashMap<String, Vec<f32>>,
        class: usize,
    ) -> Result<Vec<f32>, HeadError> {
        Ok(self.grad(widen(pooled), other, class)?.into_iter().map(|g| g as f32).collect())
    }

    /// The Grad-CAM grid (`h × w`, row-major, in `[0, 1]`) of one sample's NHWC feature map.
    pub fn gradcam(
        &self,
        feature_map: &[f32],
        (h, w, c): (usize, usize, usize),
        other: &HashMap<String, Vec<f32>>,
        class: usize,
    ) -> Result<Vec<f32>, HeadError> {
        let (hw, got) = (h * w, feature_map.len());
        if got != hw * c || c != self.pooled_dim || hw == 0 {
            return Err(HeadError::InputSize { name: "feature map".into(), expected: hw * self.pooled_dim, got });
        }
        let mut sum = vec![0.0f64; c];
        for px in feature_map.chunks_exact(c) {
            sum.iter_mut().zip(px).for_each(|(s, &a)| *s += f64::from(a));
        }
        let pooled: Vec<f64> = sum.iter().map(|s| s / hw as f64).collect();
        let alpha: Vec<f64> = self.grad(pooled, other, class)?.iter().map(|g| g / hw as f64).collect();
        let cam: Vec<f64> = feature_map
            .chunks_exact(c)
            .map(|px| px.iter().zip(&alpha).map(|(&a, k)| f64::from(a) * k).sum::<f64>().max(0.0))
            .collect();
        let max = cam.iter().copied().fold(0.0, f64::max);
        Ok(cam.iter().map(|&v| if max > 0.0 { (v / max) as f32 } else { 0.0 }).collect())
    }
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn activate(f: HeadActivation, x: &[f64]) -> Vec<f64> {
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    match f {
        HeadActivation::Linear => x.to_vec(),
        HeadActivation::Relu => x.iter().map(|v| v.max(0.0)).collect(),
        HeadActivation::Relu6 => x.iter().map(|v| v.clamp(0.0, 6.0)).collect(),
        HeadActivation::Sigmoid => x.iter().map(|&v| sig(v)).collect(),
        HeadActivation::Tanh => x.iter().map(|v| v.tanh()).collect(),
        HeadActivation::Swish => x.iter().map(|&v| v * sig(v)).collect(),
        HeadActivation::Softmax => {
            let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
    }
}

fn activation_grad(f: HeadActivation, x: &[f64], y: &[f64], dy: &[f64]) -> Vec<f64> {
    let each = |d: &dyn Fn(usize) -> f64| (0..dy.len()).map(|i| dy[i] * d(i)).collect();
    match f {
        HeadActivation::Linear => dy.to_vec(),
        // TensorFlow's ReLU gradients: 1 strictly inside the linear part, else 0.
        HeadActivation::Relu => each(&|i| f64::from(u8::from(y[i] > 0.0))),
        HeadActivation::Relu6 => each(&|i| f64::from(u8::from(x[i] > 0.0 && x[i] < 6.0))),
        HeadActivation::Sigmoid => each(&|i| y[i] * (1.0 - y[i])),
        HeadActivation::Tanh => each(&|i| 1.0 - y[i] * y[i]),
        HeadActivation::Swish => each(&|i| {
            let s = 1.0 / (1.0 + (-x[i]).exp());
            s * (1.0 + x[i] * (1.0 - s))
        }),
        HeadActivation::Softmax => {
            let dot: f64 = dy.iter().zip(y).map(|(d, y)| d * y).sum();
            y.iter().zip(dy).map(|(y, d)| y * (d - dot)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream in [-1, 1) (xorshift), enough for test weights.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
        fn vec(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.next()).collect()
        }
    }

    /// A head shaped like sklesion's (pooled and metadata branches, BN, concat, softmax),
    /// with every activation the head supports on the way.
    fn random_head() -> HeadSpec {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut data = Vec::new();
        let mut blob = |n: usize, positive: bool| {
            let b = Blob { offset: data.len() * 4, len: n };
            data.extend(rng.vec(n).into_iter().map(|v| if positive { 0.5 + v.abs() } else { v }));
            b
        };
        let s = |x: &str| x.to_string();
        let dense = |input: &str, output: &str, i: usize, units: usize, blob: &mut dyn FnMut(usize, bool) -> Blob| {
            HeadOp::Dense {
                layer: s(output),
                input: s(input),
                output: s(output),
                units,
                kernel: blob(i * units, false),
                bias: Some(blob(units, false)),
            }
        };
        let act = |input: &str, output: &str, function| HeadOp::Activation {
            layer: s(output),
            input: s(input),
            output: s(output),
            function,
        };
        let mut ops = vec![dense("pooled", "d1", 6, 5, &mut blob), act("d1", "a1", HeadActivation::Relu)];
        ops.push(HeadOp::BatchNorm {
            layer: s("bn1"),
            input: s("a1"),
            output: s("bn1"),
            epsilon: 1e-3,
            gamma: Some(blob(5, false)),
            beta: Some(blob(5, false)),
            mean: blob(5, false),
            variance: blob(5, true),
        });
        ops.push(dense("meta", "d2", 3, 4, &mut blob));
        ops.push(act("d2", "a2", HeadActivation::Swish));
        ops.push(act("a2", "a3", HeadActivation::Tanh));
        ops.push(act("a3", "a4", HeadActivation::Sigmoid));
        ops.push(HeadOp::Concat { layer: s("cat"), inputs: vec![s("bn1"), s("a4"), s("pooled")], output: s("cat") });
        ops.push(dense("cat", "d3", 15, 4, &mut blob));
        ops.push(act("d3", "probs", HeadActivation::Softmax));
        let spec = HeadSpec {
            pooled: s("pooled"),
            pooled_dim: 6,
            inputs: vec![HeadInput { name: s("meta"), dim: 3 }],
            ops,
            output: s("probs"),
            classes: 4,
            weights: s(HEAD_BIN),
            data: Vec::new(),
        };
        spec.with_weights(data).unwrap()
    }

    fn meta() -> HashMap<String, Vec<f32>> {
        HashMap::from([("meta".to_string(), vec![0.3, -1.2, 0.8])])
    }

    #[test]
    fn gradient_matches_central_differences() {
        let head = random_head();
        let g = [0.9f64, -0.4, 1.7, 0.2, -1.1, 0.6];
        let prob = |g: &[f64], c: usize| {
            let v = head.trace(g.to_vec(), &meta()).unwrap();
            v["probs"][c]
        };
        for class in 0..4 {
            let grad = head.grad(g.to_vec(), &meta(), class).unwrap();
            for k in 0..6 {
                let h = 1e-5;
                let (mut up, mut down) = (g, g);
                up[k] += h;
                down[k] -= h;
                let fd = (prob(&up, class) - prob(&down, class)) / (2.0 * h);
                assert!((fd - grad[k]).abs() < 1e-8, "class {class} k {k}: fd {fd} vs {}", grad[k]);
            }
        }
        // Softmax probabilities sum to one, so their gradients sum to zero over classes.
        let total: Vec<f64> = (0..4)
            .map(|c| head.grad(g.to_vec(), &meta(), c).unwrap())
            .fold(vec![0.0; 6], |a, b| a.iter().zip(b).map(|(x, y)| x + y).collect());
        assert!(total.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn gradcam_is_the_normalised_relu_of_the_weighted_map() {
        let head = random_head();
        let (h, w, c) = (3, 2, 6);
        let mut rng = Rng(42);
        let fmap: Vec<f32> = rng.vec(h * w * c);
        let pooled: Vec<f32> = (0..c).map(|k| (0..h * w).map(|p| fmap[p * c + k]).sum::<f32>() / 6.0).collect();
        let mut checked = 0;
        for class in 0..4 {
            let cam = head.gradcam(&fmap, (h, w, c), &meta(), class).unwrap();
            let grad = head.grad_wrt_pooled(&pooled, &meta(), class).unwrap();
            let raw: Vec<f32> =
                fmap.chunks(c).map(|px| px.iter().zip(&grad).map(|(a, g)| a * g).sum::<f32>().max(0.0)).collect();
            let max = raw.iter().copied().fold(0.0, f32::max);
            if max == 0.0 {
                assert!(cam.iter().all(|&v| v == 0.0));
                continue;
            }
            checked += 1;
            for (a, b) in cam.iter().zip(&raw) {
                assert!((a - b / max).abs() < 1e-5, "class {class}: {a} vs {}", b / max);
            }
            assert!(cam.contains(&1.0));
        }
        assert!(checked > 0, "no class had a positive cell");
    }

    #[test]
    fn save_load_round_trip_and_errors() {
        let head = random_head();
        let dir = std::env::temp_dir().join(format!("ocular-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        head.save(&dir).unwrap();
        let back = HeadSpec::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back, head);
        let g = [0.1f32; 6];
        let p = back.forward(&g, &meta()).unwrap();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(matches!(head.forward(&g, &HashMap::new()), Err(HeadError::MissingInput(_))));
        assert!(matches!(head.grad_wrt_pooled(&g, &meta(), 4), Err(HeadError::Class { .. })));
        assert!(matches!(head.forward(&g[..5], &meta()), Err(HeadError::InputSize { .. })));
    }
}
