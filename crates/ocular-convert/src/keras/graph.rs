//! Emits the ONNX graph for a flattened Keras model, deciding the tensor layout on the way.
//!
//! Keras is channels-last (NHWC); ONNX `Conv`, pooling and `BatchNormalization` are
//! channels-first (NCHW). Every 4-D value is therefore kept NCHW inside the graph: image
//! inputs are transposed once after the graph input, and a value is transposed back only
//! where Keras' axis order matters (Flatten, Reshape, Dense on a feature map, merges with
//! lower-rank tensors) and for graph outputs, which keep Keras' NHWC so users get the layout
//! they expect. Each value remembers the forms already emitted, so a transpose happens at
//! most once per value and direction.

use super::error::KerasError;
use super::flat::{FlatGraph, ValueId};
use super::layers;
use super::weights::WeightStore;
use crate::onnx::{Attr, Dim, GraphBuilder};

/// Keras axis order of a 4-D tensor seen from NCHW: NHWC axis `k` is NCHW axis `NHWC_TO_NCHW[k]`.
pub(crate) const NHWC_TO_NCHW: [i64; 4] = [0, 2, 3, 1];

/// Shape in Keras order, batch first; `None` where unknown until run time.
pub(crate) type Shape = Vec<Option<i64>>;

/// One emitted value: its Keras shape and the ONNX names of the layouts emitted so far.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub shape: Shape,
    keras: Option<String>,
    nchw: Option<String>,
}

impl Value {
    /// A value whose ONNX tensor has Keras' axis order.
    pub fn keras(name: String, shape: Shape) -> Self {
        Self { shape, keras: Some(name), nchw: None }
    }

    /// A 4-D value whose ONNX tensor is NCHW (its `shape` stays in Keras' NHWC order).
    pub fn nchw(name: String, shape: Shape) -> Self {
        Self { shape, keras: None, nchw: Some(name) }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

/// Builder state shared by the layer emitters.
pub(crate) struct Ctx {
    pub g: GraphBuilder,
    /// Saved by Keras 2, whose few differing definitions (`hard_sigmoid`) then apply.
    pub keras2: bool,
    values: Vec<Option<Value>>,
}

impl Ctx {
    pub fn new(name: &str, values: usize, keras2: bool) -> Self {
        Self { g: GraphBuilder::new(name), keras2, values: vec![None; values] }
    }

    /// Values are emitted in dependency order, so a missing one is a converter bug.
    pub fn value(&self, id: ValueId) -> Result<&Value, KerasError> {
        self.values
            .get(id)
            .and_then(Option::as_ref)
            .ok_or_else(|| KerasError::config(format!("value {id} used before it was emitted")))
    }

    pub fn shape(&self, id: ValueId) -> Result<Shape, KerasError> {
        Ok(self.value(id)?.shape.clone())
    }

    pub fn set(&mut self, id: ValueId, v: Value) {
        self.values[id] = Some(v);
    }

    /// The value in Keras' axis order (transposing an NCHW feature map back to NHWC).
    pub fn keras(&mut self, id: ValueId) -> Result<String, KerasError> {
        let v = self.value(id)?.clone();
        if let Some(name) = v.keras {
            return Ok(name);
        }
        let src = v.nchw.unwrap_or_default();
        let name = self.g.op("Transpose", &[&src], vec![Attr::Ints("perm", vec![0, 2, 3, 1])]);
        if let Some(slot) = self.values[id].as_mut() {
            slot.keras = Some(name.clone());
        }
        Ok(name)
    }

    /// A 4-D value in NCHW (transposing once if it was produced in Keras order).
    pub fn nchw(&mut self, id: ValueId) -> Result<String, KerasError> {
        let v = self.value(id)?.clone();
        if v.rank() != 4 {
            return Err(KerasError::config(format!("value {id} is not a 4-D feature map")));
        }
        if let Some(name) = v.nchw {
            return Ok(name);
        }
        let src = v.keras.unwrap_or_default();
        let name = self.g.op("Transpose", &[&src], vec![Attr::Ints("perm", vec![0, 3, 1, 2])]);
        if let Some(slot) = self.values[id].as_mut() {
            slot.nchw = Some(name.clone());
        }
        Ok(name)
    }
}

/// Names for unknown non-batch sizes (ONNX needs a name; `Dim::Sym` takes `&'static str`).
const DYN: [&str; 8] = ["d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"];

pub(crate) fn dims(shape: &Shape) -> Vec<Dim> {
    shape
        .iter()
        .enumerate()
        .map(|(i, d)| match (i, d) {
            (0, _) => Dim::Sym("batch"),
            (_, Some(n)) => Dim::Fixed(*n),
            (i, None) => Dim::Sym(DYN[(i - 1).min(DYN.len() - 1)]),
        })
        .collect()
}

/// The emitted graph, before outputs are declared.
pub(crate) struct Emitted {
    pub cx: Ctx,
    /// Number of Keras layer calls converted.
    pub layers: usize,
    /// Number of Keras weights read, each shared layer counted once.
    pub params: usize,
    /// Values (floats) of every layer's output for one image, summed; `None` when a size is
    /// unknown until run time (a model imported with `--size`).
    pub activation_values: Option<u64>,
}

/// Emits every node of `flat`; graph inputs are declared with their Keras names.
pub(crate) fn emit(flat: &FlatGraph<'_>, store: &WeightStore, name: &str, keras2: bool) -> Result<Emitted, KerasError> {
    let mut cx = Ctx::new(name, flat.values, keras2);
    for input in &flat.inputs {
        let n = cx.g.input(&input.name, &dims(&input.shape));
        cx.set(input.value, Value::keras(n, input.shape.clone()));
    }
    let mut params = 0;
    let mut activations = Some(0u64);
    let mut seen = std::collections::HashSet::new();
    for node in &flat.nodes {
        let weights = store.load(&node.weights)?;
        if seen.insert(format!("{:?}", node.weights)) {
            params += weights.iter().map(|t| t.shape.iter().product::<usize>()).sum::<usize>();
        }
        let v = layers::emit(&mut cx, node, weights)?;
        let values = v.shape.iter().skip(1).try_fold(1u64, |n, d| d.map(|d| n.saturating_mul(d as u64)));
        activations = activations.zip(values).map(|(sum, n)| sum.saturating_add(n));
        cx.set(node.output, v);
    }
    Ok(Emitted { cx, layers: flat.nodes.len(), params, activation_values: activations })
}
