//! Finds a classifier's head for exact Grad-CAM and describes it as an
//! [`ocular_core::head::HeadSpec`].
//!
//! Starting from a model output, the walk goes backwards through layers a head may contain
//! (Dense, BatchNormalization, Activation/ReLU/Softmax, Concatenate, Dropout) until every path
//! ends either at one `GlobalAveragePooling2D` (its input is the Grad-CAM feature map `A`,
//! e.g. sklesion's `block14_sepconv2_act`) or at a graph input (e.g. the metadata vector). If
//! any other layer is met, the model has no head this module can differentiate and Grad-CAM
//! is simply not offered; the conversion itself is unaffected. The maths that uses the
//! description is in `ocular_core::head`.

use std::collections::{HashMap, HashSet};

use ocular_core::head::{Blob, HeadActivation, HeadInput, HeadOp, HeadSpec};
use serde_json::Value as Json;

use super::error::KerasError;
use super::flat::{FlatGraph, ValueId};
use super::graph::Ctx;
use super::layers::activation_name;
use super::weights::{Tensor, WeightStore};

/// A head found in the model.
pub(crate) struct Found {
    pub spec: HeadSpec,
    /// The feature map `A` (input of the global average pooling).
    pub feature: ValueId,
    /// Keras name of the layer that produced `A`.
    pub layer: String,
}

const IDENTITY: &[&str] = &["Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"];
const HEAD_LAYERS: &[&str] = &["Dense", "BatchNormalization", "Activation", "ReLU", "Softmax", "Concatenate"];

/// Why exact Grad-CAM is not available for a model, in words an operator can act on.
pub(crate) type NoHead = String;

/// The head behind the first model output that has one, or why no output has one (each
/// output's reason, joined).
pub(crate) fn find(flat: &FlatGraph<'_>, cx: &Ctx, store: &WeightStore) -> Result<Result<Found, NoHead>, KerasError> {
    let producer: HashMap<ValueId, usize> = flat.nodes.iter().enumerate().map(|(i, n)| (n.output, i)).collect();
    let mut reasons = Vec::new();
    for (name, out) in &flat.outputs {
        let why = match walk(flat, &producer, *out) {
            Ok((nodes, gap)) => match describe(flat, cx, store, &nodes, gap, *out)? {
                Ok(found) => return Ok(Ok(found)),
                Err(why) => why,
            },
            Err(why) => why,
        };
        tracing::debug!(output = %name, reason = %why, "no differentiable head behind this output");
        reasons.push(format!("output {name}: {why}"));
    }
    Ok(Err(if reasons.is_empty() { "the model has no output".into() } else { reasons.join("; ") }))
}

fn layer_of(node: &super::flat::FlatNode<'_>) -> String {
    format!("layer {} ({})", node.layer.name, node.layer.class)
}

/// The head nodes (indices into `flat.nodes`) and the global pooling node, if the walk
/// back from `out` only meets head layers.
fn walk(
    flat: &FlatGraph<'_>,
    producer: &HashMap<ValueId, usize>,
    out: ValueId,
) -> Result<(HashSet<usize>, usize), NoHead> {
    let mut nodes = HashSet::new();
    let mut gap = None;
    let mut stack = vec![out];
    let mut seen = HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        let Some(&i) = producer.get(&v) else {
            continue; // a graph input
        };
        let node = &flat.nodes[i];
        let class = node.layer.class.as_str();
        if matches!(class, "GlobalAveragePooling2D" | "GlobalAvgPool2D") {
            let keepdims = node.layer.get("keepdims").and_then(Json::as_bool).unwrap_or(false);
            if keepdims {
                return Err(format!("{} keeps its dimensions (keepdims=True)", layer_of(node)));
            }
            if gap.is_some_and(|g| g != i) {
                return Err("more than one global average pooling feeds the output".into());
            }
            gap = Some(i);
            continue;
        }
        if !HEAD_LAYERS.contains(&class) && !IDENTITY.contains(&class) {
            return Err(format!(
                "{} sits between the output and a GlobalAveragePooling2D; exact Grad-CAM needs only \
                 Dense, BatchNormalization, activations, Concatenate and Dropout there",
                layer_of(node)
            ));
        }
        nodes.insert(i);
        stack.extend(&node.inputs);
    }
    gap.map(|g| (nodes, g)).ok_or_else(|| {
        "no GlobalAveragePooling2D before the output (Flatten or GlobalMaxPooling heads have no exact \
         Grad-CAM here)"
            .to_string()
    })
}

fn head_activation(name: &str) -> Option<HeadActivation> {
    Some(match name {
        "linear" => HeadActivation::Linear,
        "relu" => HeadActivation::Relu,
        "relu6" => HeadActivation::Relu6,
        "sigmoid" => HeadActivation::Sigmoid,
        "tanh" => HeadActivation::Tanh,
        "swish" | "silu" => HeadActivation::Swish,
        "softmax" => HeadActivation::Softmax,
        _ => return None,
    })
}

/// Appends tensors to the weights blob.
#[derive(Default)]
struct Bin(Vec<f32>);

impl Bin {
    fn push(&mut self, t: &Tensor) -> Blob {
        let b = Blob { offset: self.0.len() * 4, len: t.data.len() };
        self.0.extend_from_slice(&t.data);
        b
    }
}

fn describe(
    flat: &FlatGraph<'_>,
    cx: &Ctx,
    store: &WeightStore,
    nodes: &HashSet<usize>,
    gap: usize,
    out: ValueId,
) -> Result<Result<Found, NoHead>, KerasError> {
    let gap_node = &flat.nodes[gap];
    let feature = gap_node.inputs[0];
    let Some(producer) = flat.producer(feature) else {
        return Ok(Err("the pooled feature map is a graph input: there is no layer to explain".into()));
    };
    let pooled_dim = cx.shape(gap_node.output)?.get(1).copied().flatten().unwrap_or(0) as usize;
    let mut names: HashMap<ValueId, String> = HashMap::new();
    names.insert(gap_node.output, "pooled".into());
    let mut inputs = Vec::new();
    for i in &flat.inputs {
        names.insert(i.value, i.name.clone());
    }
    let mut used: HashSet<String> = names.values().cloned().collect();
    let mut bin = Bin::default();
    let mut ops = Vec::new();
    let mut order: Vec<usize> = nodes.iter().copied().collect();
    order.sort_unstable();
    for i in order {
        let node = &flat.nodes[i];
        let l = node.layer;
        let mut input_names = Vec::new();
        for v in &node.inputs {
            let Some(n) = names.get(v) else {
                return Ok(Err(format!("{} reads a tensor from outside the head", layer_of(node))));
            };
            if let Some(fi) = flat.inputs.iter().find(|fi| fi.value == *v)
                && !inputs.iter().any(|h: &HeadInput| h.name == fi.name)
            {
                let dim = match fi.shape.as_slice() {
                    [_, Some(d)] => *d as usize,
                    _ => return Ok(Err(format!("extra input {} is not a flat vector", fi.name))),
                };
                inputs.push(HeadInput { name: fi.name.clone(), dim });
            }
            input_names.push(n.clone());
        }
        if cx.shape(node.output)?.len() != 2 {
            return Ok(Err(format!("{} does not work on vectors", layer_of(node))));
        }
        if IDENTITY.contains(&l.class.as_str()) {
            names.insert(node.output, input_names[0].clone());
            continue;
        }
        let mut name = l.name.clone();
        if !used.insert(name.clone()) {
            name = format!("{}#{}", l.name, node.output);
            used.insert(name.clone());
        }
        let input = input_names[0].clone();
        let w = store.load(&node.weights)?;
        let act = |f: Option<HeadActivation>, input: String, output: String| {
            f.map(|function| HeadOp::Activation { layer: l.name.clone(), input, output, function })
        };
        match l.class.as_str() {
            "Dense" => {
                let Some(f) = activation_name(l.get("activation")).as_deref().and_then(head_activation) else {
                    return Ok(Err(format!("{} has an activation Grad-CAM cannot differentiate here", layer_of(node))));
                };
                let Some(kernel) = w.first() else {
                    return Ok(Err(format!("{} has no kernel weights", layer_of(node))));
                };
                let units = kernel.shape.get(1).copied().unwrap_or(0);
                let linear_out = if f == HeadActivation::Linear { name.clone() } else { format!("{name}/linear") };
                ops.push(HeadOp::Dense {
                    layer: l.name.clone(),
                    input,
                    output: linear_out.clone(),
                    units,
                    kernel: bin.push(kernel),
                    bias: w.get(1).map(|b| bin.push(b)),
                });
                if f != HeadActivation::Linear {
                    ops.extend(act(Some(f), linear_out, name.clone()));
                }
            }
            "BatchNormalization" => {
                let flag = |k: &str| l.get(k).and_then(Json::as_bool).unwrap_or(true);
                let mut it = w.iter();
                let mut next = |on: bool| if on { it.next().map(|t| bin.push(t)) } else { None };
                let gamma = next(flag("scale"));
                let beta = next(flag("center"));
                let (Some(mean), Some(variance)) = (next(true), next(true)) else {
                    return Ok(Err(format!("{} lacks its moving statistics", layer_of(node))));
                };
                let epsilon = l.get("epsilon").and_then(Json::as_f64).unwrap_or(1e-3) as f32;
                ops.push(HeadOp::BatchNorm {
                    layer: l.name.clone(),
                    input,
                    output: name.clone(),
                    epsilon,
                    gamma,
                    beta,
                    mean,
                    variance,
                });
            }
            "Activation" => {
                let f = activation_name(l.get("activation")).as_deref().and_then(head_activation);
                let Some(op) = act(f, input, name.clone()) else {
                    return Ok(Err(format!("{} has an activation Grad-CAM cannot differentiate here", layer_of(node))));
                };
                ops.push(op);
            }
            "ReLU" => {
                let num = |k: &str| l.get(k).and_then(Json::as_f64).unwrap_or(0.0);
                let f = match l.get("max_value").and_then(Json::as_f64) {
                    _ if num("negative_slope") != 0.0 || num("threshold") != 0.0 => None,
                    None => Some(HeadActivation::Relu),
                    Some(6.0) => Some(HeadActivation::Relu6),
                    Some(_) => None,
                };
                let Some(op) = act(f, input, name.clone()) else {
                    return Ok(Err(format!("{} is a leaky or thresholded ReLU", layer_of(node))));
                };
                ops.push(op);
            }
            "Softmax" => {
                let axis = l.get("axis").and_then(Json::as_i64).unwrap_or(-1);
                if axis != -1 && axis != 1 {
                    return Ok(Err(format!("{} normalises over axis {axis}, not the classes", layer_of(node))));
                }
                ops.extend(act(Some(HeadActivation::Softmax), input, name.clone()));
            }
            "Concatenate" => {
                let axis = l.get("axis").and_then(Json::as_i64).unwrap_or(-1);
                if axis != -1 && axis != 1 {
                    return Ok(Err(format!("{} joins along axis {axis}", layer_of(node))));
                }
                ops.push(HeadOp::Concat { layer: l.name.clone(), inputs: input_names, output: name.clone() });
            }
            _ => return Ok(Err(format!("{} is not supported in a Grad-CAM head", layer_of(node)))),
        }
        names.insert(node.output, name);
    }
    let Some(output) = names.get(&out).cloned() else {
        return Ok(Err("the output is not computed by the head".into()));
    };
    let classes = cx.shape(out)?.get(1).copied().flatten().unwrap_or(0) as usize;
    let spec = HeadSpec::new("pooled".into(), pooled_dim, inputs, ops, output, classes, bin.0)?;
    Ok(Ok(Found { spec, feature, layer: producer.layer.name.clone() }))
}
