//! Flattens a (possibly nested) Keras model into one list of layer calls in dependency order.
//!
//! Nested Functional/Sequential models are inlined: their input layers are bound to the
//! tensors the outer model called them on, and their outputs become the outer tensors. Every
//! call becomes a [`FlatNode`] reading and writing numbered values, which is all the ONNX
//! emitter and the head extraction need; each node also carries the [`WeightKey`] that finds
//! its layer's variables. A layer called several times (shared layers) yields one node per
//! call, each reading the same weights.

use std::collections::HashMap;

use serde_json::Value;

use super::config::{LayerConfig, ModelConfig, TensorRef};
use super::error::KerasError;
use super::weights::{WeightKey, keras3_names};

/// Index of a value (a tensor) in the flat graph.
pub type ValueId = usize;

/// One call of a (non-container) layer.
#[derive(Debug)]
pub struct FlatNode<'a> {
    pub layer: &'a LayerConfig,
    pub weights: WeightKey,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// A graph input: the top model's `InputLayer` with its Keras shape (batch first, `None`
/// for unknown sizes).
#[derive(Debug, Clone)]
pub struct FlatInput {
    pub name: String,
    pub shape: Vec<Option<i64>>,
    pub value: ValueId,
}

#[derive(Debug)]
pub struct FlatGraph<'a> {
    pub nodes: Vec<FlatNode<'a>>,
    pub inputs: Vec<FlatInput>,
    /// Output name (the producing layer's name, made unique) and value.
    pub outputs: Vec<(String, ValueId)>,
    pub values: usize,
}

impl FlatGraph<'_> {
    /// The node that produced `value`, if any (graph inputs have none).
    pub fn producer(&self, value: ValueId) -> Option<&FlatNode<'_>> {
        self.nodes.iter().find(|n| n.output == value)
    }
}

/// The Keras shape of an `InputLayer` (`batch_shape` in Keras 3, `batch_input_shape` before).
pub fn input_shape(layer: &LayerConfig) -> Result<Vec<Option<i64>>, KerasError> {
    let shape = layer
        .get("batch_shape")
        .or_else(|| layer.get("batch_input_shape"))
        .and_then(Value::as_array)
        .ok_or_else(|| KerasError::config(format!("input `{}` has no shape", layer.name)))?;
    Ok(shape.iter().map(Value::as_i64).collect())
}

/// Where a model's layers keep their weights.
#[derive(Clone)]
enum Scope {
    /// Keras 3 group path of the model (`""` for the top model).
    Keras3(String),
    /// Legacy: top level, or inside the top-level nested model whose group is given.
    LegacyTop,
    LegacyNested(String),
}

pub fn flatten(model: &ModelConfig, legacy: bool) -> Result<FlatGraph<'_>, KerasError> {
    let mut g = FlatGraph { nodes: Vec::new(), inputs: Vec::new(), outputs: Vec::new(), values: 0 };
    let mut bound = Vec::new();
    for r in &model.inputs {
        let layer =
            model.layer(&r.layer).ok_or_else(|| KerasError::config(format!("unknown input layer `{}`", r.layer)))?;
        let value = g.values;
        g.values += 1;
        g.inputs.push(FlatInput { name: layer.name.clone(), shape: input_shape(layer)?, value });
        bound.push(value);
    }
    let scope = if legacy { Scope::LegacyTop } else { Scope::Keras3(String::new()) };
    let outs = flatten_model(&mut g, model, scope, &bound)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (r, v) in model.outputs.iter().zip(outs) {
        let n = seen.entry(r.layer.clone()).or_insert(0);
        let name = if *n == 0 { r.layer.clone() } else { format!("{}_{n}", r.layer) };
        *n += 1;
        g.outputs.push((name, v));
    }
    Ok(g)
}

/// Inlines `model` called on `inputs`; returns the values of its outputs.
fn flatten_model<'a>(
    g: &mut FlatGraph<'a>,
    model: &'a ModelConfig,
    scope: Scope,
    inputs: &[ValueId],
) -> Result<Vec<ValueId>, KerasError> {
    if inputs.len() != model.inputs.len() {
        return Err(KerasError::config(format!(
            "model `{}` takes {} inputs but was called with {}",
            model.name,
            model.inputs.len(),
            inputs.len()
        )));
    }
    let mut values: HashMap<TensorRef, ValueId> = HashMap::new();
    for (r, &v) in model.inputs.iter().zip(inputs) {
        values.insert(r.clone(), v);
    }
    let names = keras3_names(model);
    let key = |i: usize, layer: &LayerConfig| -> WeightKey {
        match &scope {
            Scope::Keras3(prefix) => {
                let own = names[i].clone().unwrap_or_default();
                WeightKey::Keras3(format!("{prefix}layers/{own}"))
            }
            Scope::LegacyTop => WeightKey::Legacy { group: layer.name.clone(), inner: None },
            Scope::LegacyNested(group) => WeightKey::Legacy { group: group.clone(), inner: Some(layer.name.clone()) },
        }
    };
    // Calls still to make: (layer index, node index). Config order is usually already a
    // valid order, so the loop below normally finishes in one pass.
    let mut pending: Vec<(usize, usize)> = model
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.class != "InputLayer")
        .flat_map(|(i, l)| (0..l.nodes.len()).map(move |n| (i, n)))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for (li, ni) in pending {
            let layer = &model.layers[li];
            let refs = &layer.nodes[ni].inputs;
            let Some(args) = refs.iter().map(|r| values.get(r).copied()).collect::<Option<Vec<_>>>() else {
                rest.push((li, ni));
                continue;
            };
            let outs = match &layer.model {
                Some(inner) => {
                    let inner_scope = match &scope {
                        Scope::Keras3(prefix) => {
                            let own = names[li].as_deref().unwrap_or_default();
                            Scope::Keras3(format!("{prefix}layers/{own}/"))
                        }
                        Scope::LegacyTop => Scope::LegacyNested(layer.name.clone()),
                        Scope::LegacyNested(group) => Scope::LegacyNested(group.clone()),
                    };
                    flatten_model(g, inner, inner_scope, &args)?
                }
                None => {
                    let output = g.values;
                    g.values += 1;
                    g.nodes.push(FlatNode { layer, weights: key(li, layer), inputs: args, output });
                    vec![output]
                }
            };
            for (t, v) in outs.into_iter().enumerate() {
                let r = TensorRef { layer: layer.name.clone(), node: ni, tensor: t };
                values.insert(r, v);
            }
        }
        if rest.len() == before {
            let (li, _) = rest[0];
            return Err(KerasError::config(format!(
                "the inputs of layer `{}` in model `{}` are never produced",
                model.layers[li].name, model.name
            )));
        }
        pending = rest;
    }
    model
        .outputs
        .iter()
        .map(|r| {
            values.get(r).copied().ok_or_else(|| {
                KerasError::config(format!("output `{}` of model `{}` is never produced", r.layer, model.name))
            })
        })
        .collect()
}
