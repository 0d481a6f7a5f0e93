//! Calibration: run the float graph on sample inputs with the planned tensors exposed as extra
//! outputs, and record their ranges.
//!
//! Two range estimates are kept per tensor so one pass can serve either method: the extremes
//! over all samples (min/max) and, per sample, a percentile of the values averaged over the
//! samples (clips the rare outliers that would otherwise stretch the 256 steps).

use std::collections::HashMap;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use super::QuantizeError;
use crate::onnx::proto::{self, data_type};

/// One named float input of a sample.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// Every input of one inference.
pub type Sample = Vec<Feed>;

/// Observed range of one tensor over the calibration set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorStats {
    pub min: f32,
    pub max: f32,
    /// Mean over samples of the low / high percentile.
    pub p_lo: f32,
    pub p_hi: f32,
}

/// Bins of the per-sample histogram: 1/4096 of a sample's range is far below one u8 step.
const BINS: usize = 4096;

/// The `q` and `1 - q` quantiles of `v` (q a fraction, e.g. 1e-4), from a histogram.
fn percentiles(v: &[f32], q: f64) -> (f32, f32, f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for x in v {
        lo = lo.min(*x);
        hi = hi.max(*x);
    }
    if v.is_empty() || hi <= lo {
        return (lo, hi, lo, hi);
    }
    let width = (hi - lo) / BINS as f32;
    let mut hist = vec![0u32; BINS];
    for x in v {
        hist[(((x - lo) / width) as usize).min(BINS - 1)] += 1;
    }
    let cut = (q * v.len() as f64).floor() as u64;
    let bin_at = |order: &mut dyn Iterator<Item = usize>| {
        let mut seen = 0u64;
        for i in order {
            seen += u64::from(hist[i]);
            if seen > cut {
                return i;
            }
        }
        0
    };
    let low = bin_at(&mut (0..BINS));
    let high = bin_at(&mut (0..BINS).rev());
    (lo, hi, lo + low as f32 * width, lo + (high + 1) as f32 * width)
}

/// Runs `model` on every sample and returns the statistics of `tensors`.
pub fn collect(
    env: &Environment,
    model: &proto::ModelProto,
    tensors: &[String],
    samples: &[Sample],
    percentile: f64,
) -> Result<HashMap<String, TensorStats>, QuantizeError> {
    let mut probe = model.clone();
    let graph = probe.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
    // Graph inputs are read from the feeds: an input requested as an output comes back as the
    // input's own buffer, which `run` has already released.
    let fed: Vec<&str> =
        graph.input.iter().map(|i| i.name.as_str()).filter(|n| tensors.iter().any(|t| t == n)).collect();
    let fed: Vec<String> = fed.into_iter().map(String::from).collect();
    for t in tensors.iter().filter(|t| !fed.contains(t)) {
        graph.output.push(proto::ValueInfoProto {
            name: t.clone(),
            r#type: Some(proto::TypeProto {
                tensor_type: Some(proto::TensorTypeProto { elem_type: data_type::FLOAT, shape: None }),
            }),
        });
    }
    let bytes = crate::onnx::encode(&probe);
    let ort_err = |context: &'static str| move |e: ort::Error| QuantizeError::Ort { context, source: e };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut session = Session::builder(env)
        .map_err(ort_err("session builder"))?
        .with_intra_threads(threads)
        .map_err(|e| ort_err("session options")(e.into()))?
        .commit_from_memory(&bytes)
        .map_err(ort_err("loading the calibration graph"))?;
    drop(bytes);
    let q = (1.0 - percentile / 100.0).max(0.0);
    let mut sums: HashMap<&str, (f32, f32, f64, f64)> = HashMap::new();
    for sample in samples {
        let mut inputs = Vec::with_capacity(sample.len());
        for f in sample {
            let v = Tensor::from_array((f.shape.clone(), f.data.clone())).map_err(ort_err("input tensor"))?;
            inputs.push((f.name.clone(), v.into_dyn()));
        }
        let outputs = session.run(inputs).map_err(ort_err("calibration inference"))?;
        for t in tensors {
            let data = match sample.iter().find(|f| &f.name == t) {
                Some(feed) => feed.data.as_slice(),
                None => {
                    let value = outputs.get(t.as_str()).ok_or_else(|| QuantizeError::MissingTensor(t.clone()))?;
                    value.try_extract_tensor::<f32>().map_err(ort_err("reading a calibration output"))?.1
                }
            };
            let (lo, hi, plo, phi) = percentiles(data, q / 2.0);
            let e = sums.entry(t.as_str()).or_insert((f32::INFINITY, f32::NEG_INFINITY, 0.0, 0.0));
            *e = (e.0.min(lo), e.1.max(hi), e.2 + f64::from(plo), e.3 + f64::from(phi));
        }
    }
    let n = samples.len().max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|(t, (min, max, plo, phi))| {
            (t.to_string(), TensorStats { min, max, p_lo: (plo / n) as f32, p_hi: (phi / n) as f32 })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_clip_outliers_and_keep_the_bulk() {
        let mut v: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        v.push(50.0);
        let (lo, hi, plo, phi) = percentiles(&v, 1e-3);
        assert_eq!((lo, hi), (0.0, 50.0));
        assert!(plo < 0.05, "{plo}");
        assert!((0.95..1.05).contains(&phi), "{phi}");
    }
}
