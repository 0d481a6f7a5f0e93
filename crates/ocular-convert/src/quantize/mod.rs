//! Static int8 quantisation of the converted CNNs (QDQ form, calibrated on real inputs).
//!
//! The float graph written by ocular's converters is rewritten so ONNX Runtime runs its
//! convolutions as `QLinearConv` (u8 activations × s8 per-channel weights, see [`params`] for
//! why that pair): QuantizeLinear/DequantizeLinear pairs around every Conv input and output,
//! weights stored as int8 initializers behind a DequantizeLinear, biases as int32. Activation
//! ranges come from running the float graph on calibration images with the tensors exposed
//! as extra outputs ([`calibrate`]). Heads (MatMul/Gemm after global pooling) stay float,
//! see [`graph`].
//!
//! Only graphs that ocular itself wrote are accepted: the ONNX subset in `crate::onnx::proto`
//! decodes them losslessly, which [`Calibration::new`] checks by re-encoding.

pub mod calibrate;
pub mod data;
pub mod eval;
pub mod gate;
pub mod graph;
pub mod params;
pub mod self_check;

use std::collections::{BTreeSet, HashMap};

use ort::environment::Environment;
use prost::Message;

pub use calibrate::{Feed, Sample, TensorStats};
pub use params::WeightFormat;

use crate::onnx::proto;

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("the model is not valid ONNX")]
    Decode(#[from] prost::DecodeError),
    #[error("the model uses ONNX fields that ocular's converters never write; only their own graphs can be quantised")]
    Foreign,
    #[error("the model has no graph")]
    NoGraph,
    #[error("the graph has no Conv with constant weights to quantise")]
    NothingToQuantize,
    #[error("calibration produced no value for tensor {0}")]
    MissingTensor(String),
    #[error("the calibration set is empty")]
    NoSamples,
    #[error("ONNX Runtime: {context}")]
    Ort {
        context: &'static str,
        #[source]
        source: ort::Error,
    },
    #[error("calibration image {path}")]
    Image {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How an activation range is chosen from the calibration statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Method {
    /// The extremes seen over the whole set.
    #[default]
    MinMax,
    /// The mean over samples of the two-sided [`PERCENTILE`] of each sample.
    Percentile,
}

impl Method {
    /// How the manifest records it.
    pub fn describe(self) -> String {
        match self {
            Method::MinMax => "minmax".into(),
            Method::Percentile => format!("percentile-{PERCENTILE}"),
        }
    }
}

/// Everything that decides an int8 graph besides the calibration statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recipe {
    pub method: Method,
    pub weights: WeightFormat,
    /// Conv node names left in float (see [`graph::plan_keeping_float`]).
    pub keep_float: BTreeSet<String>,
}

impl Recipe {
    pub fn new(method: Method) -> Self {
        Self { method, ..Self::default() }
    }

    /// How the manifest records it, e.g. `minmax, u8-zp128 weights, 2 Conv float`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}, {} weights", self.method.describe(), self.weights.as_str());
        if !self.keep_float.is_empty() {
            s += &format!(", {} Conv float", self.keep_float.len());
        }
        s
    }
}

/// Percentile computed during calibration (kept whatever the final method).
pub const PERCENTILE: f64 = 99.999;

/// A float model with its planned rewrite and the calibration statistics.
pub struct Calibration {
    model: proto::ModelProto,
    plan: graph::Plan,
    pub stats: HashMap<String, TensorStats>,
    pub samples: usize,
}

impl Calibration {
    /// Plans the rewrite of `fp32` and calibrates it on `samples` with ONNX Runtime.
    pub fn new(env: &Environment, fp32: &[u8], samples: &[Sample]) -> Result<Self, QuantizeError> {
        if samples.is_empty() {
            return Err(QuantizeError::NoSamples);
        }
        let model = proto::ModelProto::decode(fp32)?;
        if model.encoded_len() != fp32.len() {
            return Err(QuantizeError::Foreign);
        }
        let graph = model.graph.as_ref().ok_or(QuantizeError::NoGraph)?;
        let plan = graph::plan(graph);
        if plan.convs.is_empty() {
            return Err(QuantizeError::NothingToQuantize);
        }
        let stats = calibrate::collect(env, &model, &plan.tensors, samples, PERCENTILE)?;
        Ok(Self { model, plan, stats, samples: samples.len() })
    }

    /// Number of Conv nodes the rewrite quantises.
    pub fn convs(&self) -> usize {
        self.plan.convs.len()
    }

    /// The names of the Conv nodes the full rewrite quantises, in graph order.
    pub fn conv_names(&self) -> &[String] {
        &self.plan.names
    }

    /// The int8 QDQ model bytes for `recipe`.
    pub fn quantize(&self, recipe: &Recipe) -> Result<Vec<u8>, QuantizeError> {
        let act = self
            .stats
            .iter()
            .map(|(t, s)| {
                let (lo, hi) = match recipe.method {
                    Method::MinMax => (s.min, s.max),
                    Method::Percentile => (s.p_lo, s.p_hi),
                };
                (t.clone(), params::activation(lo, hi))
            })
            .collect();
        let mut model = self.model.clone();
        let graph = model.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
        let plan = if recipe.keep_float.is_empty() {
            self.plan.clone()
        } else {
            graph::plan_keeping_float(graph, &recipe.keep_float)
        };
        graph::rewrite(graph, &plan, &act, recipe.weights);
        model.metadata_props.push(proto::StringStringEntryProto {
            key: "ocular.quantization".into(),
            value: format!(
                "static int8 QDQ: u8 activations, per-channel symmetric weights ({}; {} samples), {} of {} Conv quantised",
                recipe.describe(),
                self.samples,
                plan.convs.len(),
                self.plan.convs.len()
            ),
        });
        Ok(crate::onnx::encode(&model))
    }
}
