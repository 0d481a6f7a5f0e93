//! How far the int8 model is from the float one, measured with ONNX Runtime on real inputs;
//! recorded in the manifest and asserted by the integration tests.

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde::Serialize;

use super::{QuantizeError, Sample};

/// A session over model bytes (the same optimisation level the server uses).
pub struct Runner {
    session: Session,
}

impl Runner {
    pub fn new(env: &Environment, onnx: &[u8], threads: usize) -> Result<Self, QuantizeError> {
        let err = |context: &'static str| move |source: ort::Error| QuantizeError::Ort { context, source };
        let session = Session::builder(env)
            .map_err(err("session builder"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| err("session options")(e.into()))?
            .with_intra_threads(threads)
            .map_err(|e| err("session options")(e.into()))?
            .commit_from_memory(onnx)
            .map_err(err("loading a model to evaluate"))?;
        Ok(Self { session })
    }

    /// The float outputs `names` for one sample, in that order.
    pub fn run(&mut self, sample: &Sample, names: &[&str]) -> Result<Vec<Vec<f32>>, QuantizeError> {
        let err = |context: &'static str| move |source: ort::Error| QuantizeError::Ort { context, source };
        let mut inputs = Vec::with_capacity(sample.len());
        for f in sample {
            let v = Tensor::from_array((f.shape.clone(), f.data.clone())).map_err(err("input tensor"))?;
            inputs.push((f.name.clone(), v.into_dyn()));
        }
        let out = self.session.run(inputs).map_err(err("inference"))?;
        names
            .iter()
            .map(|n| {
                let v = out.get(*n).ok_or_else(|| QuantizeError::MissingTensor((*n).to_string()))?;
                Ok(v.try_extract_tensor::<f32>().map_err(err("reading an output"))?.1.to_vec())
            })
            .collect()
    }
}

/// Float vs int8 on one evaluation set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Agreement {
    pub samples: usize,
    /// Samples whose most probable class is the same.
    pub top1_agreement: f32,
    /// Samples whose float top-1 class is among the int8 top 5.
    pub top5_agreement: f32,
    /// Largest |p_int8 − p_fp32| over all samples and classes.
    pub max_abs_dp: f32,
    /// Cosine between the float and int8 feature outputs (min and median over samples).
    pub feature_cosine_min: f32,
    pub feature_cosine_median: f32,
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

/// [`ocular_core::similarity::cosine`], with 0 where it is undefined (a zero output fails a
/// gate instead of being skipped).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    ocular_core::similarity::cosine(a, b).unwrap_or(0.0)
}

/// Indices of the `k` largest values, largest first.
pub(crate) fn top_k(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(k);
    idx
}

/// Runs both models on `samples`, comparing the `probabilities` and `features` outputs.
pub fn compare(
    fp32: &mut Runner,
    int8: &mut Runner,
    samples: &[Sample],
    probabilities: &str,
    features: &str,
) -> Result<Agreement, QuantizeError> {
    let (mut top1, mut top5, mut max_dp, mut cosines) = (0usize, 0usize, 0.0f32, Vec::new());
    for s in samples {
        let a = fp32.run(s, &[probabilities, features])?;
        let b = int8.run(s, &[probabilities, features])?;
        let best = argmax(&a[0]);
        top1 += usize::from(best == argmax(&b[0]));
        top5 += usize::from(top_k(&b[0], 5).contains(&best));
        max_dp = a[0].iter().zip(&b[0]).fold(max_dp, |m, (x, y)| m.max((x - y).abs()));
        cosines.push(cosine(&a[1], &b[1]));
    }
    cosines.sort_by(f32::total_cmp);
    let n = samples.len().max(1) as f32;
    Ok(Agreement {
        samples: samples.len(),
        top1_agreement: top1 as f32 / n,
        top5_agreement: top5 as f32 / n,
        max_abs_dp: max_dp,
        feature_cosine_min: cosines.first().copied().unwrap_or(0.0),
        feature_cosine_median: cosines.get(cosines.len() / 2).copied().unwrap_or(0.0),
    })
}
