//! A small ONNX graph builder shared by every converter (Keras, torch, BERT).
//!
//! Converters describe a model as a sequence of ONNX operators on named values; the builder
//! invents unique value names, stores weights as raw little-endian initializers and serialises
//! a `ModelProto` that ONNX Runtime loads directly. Only float32 graphs with int64 shape
//! constants are needed, so that is all it offers.

pub mod proto;

use prost::Message;
use proto::{attribute_type, data_type};

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    /// A symbolic size such as `"batch"`, chosen at run time.
    Sym(&'static str),
}

/// An operator attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Floats(&'static str, Vec<f32>),
    Str(&'static str, String),
}

impl Attr {
    fn into_proto(self) -> proto::AttributeProto {
        let mut a = proto::AttributeProto::default();
        match self {
            Attr::Int(n, v) => (a.name, a.i, a.r#type) = (n.into(), v, attribute_type::INT),
            Attr::Ints(n, v) => (a.name, a.ints, a.r#type) = (n.into(), v, attribute_type::INTS),
            Attr::Float(n, v) => (a.name, a.f, a.r#type) = (n.into(), v, attribute_type::FLOAT),
            Attr::Floats(n, v) => (a.name, a.floats, a.r#type) = (n.into(), v, attribute_type::FLOATS),
            Attr::Str(n, v) => (a.name, a.s, a.r#type) = (n.into(), v.into_bytes(), attribute_type::STRING),
        }
        a
    }
}

/// Builds one ONNX graph. Every method that creates a value returns its unique name.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<proto::NodeProto>,
    initializers: Vec<proto::TensorProto>,
    inputs: Vec<proto::ValueInfoProto>,
    outputs: Vec<proto::ValueInfoProto>,
    counter: usize,
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> proto::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => proto::DimensionValue::DimValue(*v),
                Dim::Sym(s) => proto::DimensionValue::DimParam((*s).to_string()),
            }),
        })
        .collect();
    proto::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(proto::TypeProto {
            tensor_type: Some(proto::TensorTypeProto { elem_type, shape: Some(proto::TensorShapeProto { dim }) }),
        }),
    }
}

impl GraphBuilder {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// A fresh value name derived from `hint` (kept readable for debugging graphs).
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}__{}", self.counter)
    }

    /// Declares a float32 graph input; its name is used verbatim.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.input_typed(name, data_type::FLOAT, dims)
    }

    /// Declares a graph input of another element type (e.g. int64 token ids).
    pub fn input_typed(&mut self, name: &str, elem_type: i32, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem_type, dims));
        name.to_string()
    }

    /// Exposes `value` as a float32 graph output called `name`.
    pub fn output(&mut self, name: &str, value: &str, dims: &[Dim]) {
        if name != value {
            self.node("Identity", &[value], &[name], vec![]);
        }
        self.outputs.push(value_info(name, data_type::FLOAT, dims));
    }

    /// A float32 weight tensor.
    pub fn constant_f32(&mut self, hint: &str, dims: &[i64], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, data.len());
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant_raw(hint, dims, data_type::FLOAT, raw)
    }

    /// An int64 tensor, for shapes, axes and pads.
    pub fn constant_i64(&mut self, hint: &str, dims: &[i64], data: &[i64]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant_raw(hint, dims, data_type::INT64, raw)
    }

    /// A 1-D int64 tensor, the usual form of `shape`/`axes` inputs.
    pub fn ints(&mut self, hint: &str, data: &[i64]) -> String {
        self.constant_i64(hint, &[data.len() as i64], data)
    }

    /// A float32 scalar (rank 0).
    pub fn scalar(&mut self, hint: &str, v: f32) -> String {
        self.constant_f32(hint, &[], &[v])
    }

    fn constant_raw(&mut self, hint: &str, dims: &[i64], dt: i32, raw: Vec<u8>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(proto::TensorProto {
            dims: dims.to_vec(),
            data_type: dt,
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// Adds an operator with one output and returns that output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let out = self.fresh(op_type);
        self.node(op_type, inputs, &[&out], attrs);
        out
    }

    /// Adds an operator with explicit output names (for multi-output ops such as MaxPool+Indices).
    pub fn node(&mut self, op_type: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) {
        self.counter += 1;
        self.nodes.push(proto::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op_type}_{}", self.counter),
            op_type: op_type.to_string(),
            attribute: attrs.into_iter().map(Attr::into_proto).collect(),
            domain: String::new(),
        });
    }

    /// `MatMul` followed by `Add` of a bias, the common dense layer.
    pub fn dense(&mut self, x: &str, weight: &str, bias: Option<&str>) -> String {
        let y = self.op("MatMul", &[x, weight], vec![]);
        match bias {
            Some(b) => self.op("Add", &[&y, b], vec![]),
            None => y,
        }
    }

    /// Number of weights stored so far (for manifests and sanity checks).
    pub fn parameter_count(&self) -> usize {
        self.initializers.iter().filter(|t| t.data_type == data_type::FLOAT).map(|t| t.raw_data.len() / 4).sum()
    }

    /// Finishes the graph; `metadata` lands in the model's `metadata_props`.
    pub fn finish(self, metadata: &[(&str, &str)]) -> proto::ModelProto {
        proto::ModelProto {
            ir_version: proto::IR_VERSION,
            producer_name: "ocular-convert".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: String::new(),
            graph: Some(proto::GraphProto {
                node: self.nodes,
                name: self.name,
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
            }),
            opset_import: vec![proto::OperatorSetIdProto { domain: String::new(), version: proto::OPSET }],
            metadata_props: metadata
                .iter()
                .map(|(k, v)| proto::StringStringEntryProto { key: (*k).into(), value: (*v).into() })
                .collect(),
        }
    }
}

/// Serialises a model to the bytes of an `.onnx` file.
pub fn encode(model: &proto::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
