//! The model topology from a Keras config (`config.json` or the `model_config` HDF5 attribute).
//!
//! Keras writes a Functional model as a list of layers, each with its `inbound_nodes`: the
//! tensors it was called on, named `(layer, node index, tensor index)`. Two dialects exist and
//! both are read here:
//!
//! - Keras 3: a node is `{"args": [...], "kwargs": {...}}` with tensors as
//!   `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}`
//!   (see `keras/src/models/functional.py`, `serialize_node` and `functional_from_config`);
//! - Keras 2 / tf.keras: a node is a list of `[layer, node, tensor, kwargs]`.
//!
//! Node indices count differently per dialect: a nested Functional model "starts with a
//! pre-existing node", so Keras 2 numbers its call nodes from 1 everywhere, and Keras 3 does so
//! in `input_layers`/`output_layers` only. [`TensorRef::node`] is always normalised to an
//! index into the referenced layer's [`LayerConfig::nodes`].
//!
//! Sequential models (top level or nested) are rewritten as Functional chains.

use serde_json::{Map, Value};

use super::error::KerasError;

/// A reference to a tensor produced by a layer call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorRef {
    pub layer: String,
    /// Index into the producing layer's [`LayerConfig::nodes`] (0 for an `InputLayer`).
    pub node: usize,
    pub tensor: usize,
}

/// One call of a layer.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Tensor arguments in the order Keras flattens them (lists of tensors for merge layers).
    pub inputs: Vec<TensorRef>,
}

/// One layer of a model; `model` is set for nested Functional or Sequential models.
#[derive(Debug, Clone)]
pub struct LayerConfig {
    pub class: String,
    pub name: String,
    pub config: Value,
    pub nodes: Vec<NodeConfig>,
    pub model: Option<Box<ModelConfig>>,
}

/// Whether a model came from `Sequential` (whose Keras 3 weight naming skips its input layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Functional,
    Sequential,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub kind: ModelKind,
    pub layers: Vec<LayerConfig>,
    pub inputs: Vec<TensorRef>,
    pub outputs: Vec<TensorRef>,
}

impl ModelConfig {
    pub fn layer(&self, name: &str) -> Option<&LayerConfig> {
        self.layers.iter().find(|l| l.name == name)
    }
}

impl LayerConfig {
    /// A field of the layer's `config` object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.config.get(key).filter(|v| !v.is_null())
    }
}

/// Parses a whole model config (`{"class_name": "Functional", "config": {...}}`).
pub fn parse_model(root: &Value) -> Result<ModelConfig, KerasError> {
    let class = str_field(root, "class_name")?;
    let config =
        root.get("config").ok_or_else(|| KerasError::config(format!("model of class {class} has no config")))?;
    match class {
        "Functional" | "Model" => parse_functional(config),
        "Sequential" => parse_sequential(config),
        other => Err(KerasError::UnsupportedLayer {
            layer: config.get("name").and_then(Value::as_str).unwrap_or("model").to_string(),
            class: other.to_string(),
        }),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, KerasError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| KerasError::config(format!("missing string field `{key}`")))
}

fn is_model_class(class: &str) -> bool {
    matches!(class, "Functional" | "Model" | "Sequential")
}

fn parse_layer(v: &Value) -> Result<(LayerConfig, Option<&Vec<Value>>), KerasError> {
    let class = str_field(v, "class_name")?.to_string();
    let config = v.get("config").cloned().unwrap_or(Value::Null);
    let name = v
        .get("name")
        .or_else(|| config.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| KerasError::config(format!("a {class} layer has no name")))?
        .to_string();
    let model = if is_model_class(&class) { Some(Box::new(parse_model(v)?)) } else { None };
    let layer = LayerConfig { class, name, config, nodes: Vec::new(), model };
    Ok((layer, v.get("inbound_nodes").and_then(Value::as_array)))
}

fn parse_functional(config: &Value) -> Result<ModelConfig, KerasError> {
    let name = str_field(config, "name")?.to_string();
    let raw_layers = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| KerasError::config(format!("model `{name}` has no layer list")))?;
    let mut layers = Vec::with_capacity(raw_layers.len());
    let mut raw_nodes = Vec::with_capacity(raw_layers.len());
    for v in raw_layers {
        let (layer, nodes) = parse_layer(v)?;
        layers.push(layer);
        raw_nodes.push(nodes.cloned().unwrap_or_default());
    }
    let keras2 = raw_nodes.iter().flatten().any(Value::is_array);
    // How config node numbers map to list indices, see the module header.
    let classes: std::collections::HashMap<String, String> =
        layers.iter().map(|l| (l.name.clone(), l.class.clone())).collect();
    let offset = |layer: &str, in_io_list: bool| -> usize {
        match classes.get(layer).map(String::as_str) {
            Some("Functional" | "Model") => usize::from(keras2 || in_io_list),
            Some("Sequential") => usize::from(keras2),
            _ => 0,
        }
    };
    let normalise = |mut r: TensorRef, io: bool| -> Result<TensorRef, KerasError> {
        let off = offset(&r.layer, io);
        r.node = r
            .node
            .checked_sub(off)
            .ok_or_else(|| KerasError::config(format!("node index of `{}` out of range", r.layer)))?;
        Ok(r)
    };
    for (layer, nodes) in layers.iter_mut().zip(raw_nodes) {
        for node in nodes {
            let refs = if keras2 {
                keras2_node(&node)?
            } else {
                let mut refs = Vec::new();
                keras3_tensors(node.get("args").unwrap_or(&Value::Null), &mut refs)?;
                let mut in_kwargs = Vec::new();
                keras3_tensors(node.get("kwargs").unwrap_or(&Value::Null), &mut in_kwargs)?;
                if !in_kwargs.is_empty() {
                    return Err(KerasError::option(&layer.name, &layer.class, "a tensor passed as keyword argument"));
                }
                refs
            };
            let inputs = refs.into_iter().map(|r| normalise(r, false)).collect::<Result<_, _>>()?;
            layer.nodes.push(NodeConfig { inputs });
        }
    }
    let io = |key: &str| -> Result<Vec<TensorRef>, KerasError> {
        let v = config.get(key).ok_or_else(|| KerasError::config(format!("model `{name}` has no `{key}`")))?;
        io_list(v)?.into_iter().map(|r| normalise(r, true)).collect()
    };
    Ok(ModelConfig {
        inputs: io("input_layers")?,
        outputs: io("output_layers")?,
        name,
        kind: ModelKind::Functional,
        layers,
    })
}

/// `[name, node, tensor]` or a list of them (Keras 3 writes a single input unwrapped).
fn io_list(v: &Value) -> Result<Vec<TensorRef>, KerasError> {
    let arr = v.as_array().ok_or_else(|| KerasError::config("input/output layers must be a list"))?;
    if arr.first().is_some_and(Value::is_string) {
        return Ok(vec![history(v)?]);
    }
    arr.iter().map(history).collect()
}

fn history(v: &Value) -> Result<TensorRef, KerasError> {
    let bad = || KerasError::config(format!("bad tensor reference {v}"));
    let arr = v.as_array().ok_or_else(bad)?;
    let layer = arr.first().and_then(Value::as_str).ok_or_else(bad)?;
    let idx = |i: usize| -> Result<usize, KerasError> {
        arr.get(i).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(bad)
    };
    Ok(TensorRef { layer: layer.to_string(), node: idx(1)?, tensor: idx(2)? })
}

fn keras2_node(node: &Value) -> Result<Vec<TensorRef>, KerasError> {
    let entries = node.as_array().ok_or_else(|| KerasError::config("a Keras 2 node must be a list"))?;
    let mut out = Vec::new();
    for e in entries {
        if let Some(kwargs) = e.get(3).and_then(Value::as_object) {
            let mut nested = Vec::new();
            keras3_tensors(&Value::Object(kwargs.clone()), &mut nested)?;
            if !nested.is_empty() {
                return Err(KerasError::config("tensor keyword arguments are not supported"));
            }
        }
        out.push(history(e)?);
    }
    Ok(out)
}

/// Collects every `__keras_tensor__` in `v`, depth first (Keras' flattening order).
fn keras3_tensors(v: &Value, out: &mut Vec<TensorRef>) -> Result<(), KerasError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| keras3_tensors(i, out)),
        Value::Object(map) if is_keras_tensor(map) => {
            let h = map
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .ok_or_else(|| KerasError::config("a Keras tensor without keras_history"))?;
            out.push(history(h)?);
            Ok(())
        }
        Value::Object(map) => map.values().try_for_each(|i| keras3_tensors(i, out)),
        _ => Ok(()),
    }
}

fn is_keras_tensor(map: &Map<String, Value>) -> bool {
    map.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__")
}

/// A Sequential model as a Functional chain: each layer is called on the previous output.
fn parse_sequential(config: &Value) -> Result<ModelConfig, KerasError> {
    let name = str_field(config, "name")?.to_string();
    let raw = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| KerasError::config(format!("Sequential `{name}` has no layer list")))?;
    let mut layers = Vec::with_capacity(raw.len() + 1);
    for v in raw {
        layers.push(parse_layer(v)?.0);
    }
    if layers.first().is_none_or(|l| l.class != "InputLayer") {
        // Keras 2 keeps the input shape on the first layer; Keras 3 in `build_input_shape`.
        let shape = layers
            .first()
            .and_then(|l| l.get("batch_input_shape").or_else(|| l.get("batch_shape")))
            .or_else(|| config.get("build_input_shape"))
            .cloned()
            .ok_or_else(|| KerasError::config(format!("Sequential `{name}` has no input shape")))?;
        let input = LayerConfig {
            class: "InputLayer".into(),
            name: format!("{name}_input"),
            config: serde_json::json!({ "batch_shape": shape }),
            nodes: Vec::new(),
            model: None,
        };
        layers.insert(0, input);
    }
    for i in 1..layers.len() {
        let prev = layers[i - 1].name.clone();
        layers[i].nodes.push(NodeConfig { inputs: vec![TensorRef { layer: prev, node: 0, tensor: 0 }] });
    }
    let first = layers[0].name.clone();
    let last = layers[layers.len() - 1].name.clone();
    let r = |layer| TensorRef { layer, node: 0, tensor: 0 };
    Ok(ModelConfig { name, kind: ModelKind::Sequential, inputs: vec![r(first)], outputs: vec![r(last)], layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras2_nested_model_nodes_count_from_one() {
        let cfg = serde_json::json!({"class_name": "Functional", "config": {
            "name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
              {"class_name": "Functional", "name": "inner", "config": {"name": "inner", "layers": [
                  {"class_name": "InputLayer", "name": "i", "config": {"name": "i"}, "inbound_nodes": []}],
                  "input_layers": [["i", 0, 0]], "output_layers": [["i", 0, 0]]},
               "inbound_nodes": [[["x", 0, 0, {}]]]},
              {"class_name": "Dense", "name": "d", "config": {"name": "d"},
               "inbound_nodes": [[["inner", 1, 0, {}]]]}],
            "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}});
        let m = parse_model(&cfg).unwrap();
        assert_eq!(m.layers[2].nodes[0].inputs[0].node, 0);
    }
}
