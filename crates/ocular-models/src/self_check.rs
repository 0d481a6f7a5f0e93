//! The load-time self-check of a quantised graph (`ocular_core::manifest::SelfCheck`).
//!
//! Why it exists: ONNX Runtime picks its integer kernels by instruction set, and they do not
//! all compute the same thing (u8 × s8 products saturate int16 sums on AVX2 CPUs without VNNI;
//! docs/QUANTIZATION.md). ocular's quantiser writes a format that is exact on every x86 CPU,
//! but a graph copied from elsewhere, an ONNX Runtime upgrade or a CPU nobody measured could
//! still break that promise, and a medical model must not drift silently. So before an int8
//! graph is served, the registry runs the few inputs its manifest stores through it on *this*
//! CPU and compares the answers with the float graph's; out of tolerance, the float graph
//! serves instead and `/health?verbose=1` says why ([`crate::registry::PrecisionFallback`]).

use std::path::Path;

use ocular_core::manifest::{Manifest, SelfCheck};

use crate::error::ModelError;
use crate::runtime::OrtRuntime;
use crate::session::{Input, OnnxSession, SessionOptions};
use crate::skin::argmax;

/// What the check measured over all its cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub cases: usize,
    /// Smallest cosine of the `cosine_output` (1 when the check has none).
    pub min_cosine: f32,
    /// Largest |quantised − float| over the probabilities.
    pub max_abs_diff: f32,
    /// Cases whose most probable class differs from the float graph's.
    pub argmax_changes: usize,
    /// Whether every measure is inside the manifest's tolerance.
    pub passed: bool,
}

impl Verdict {
    pub fn describe(&self) -> String {
        format!(
            "{} cases: min cosine {:.4}, max |dp| {:.4}, top class changed on {}",
            self.cases, self.min_cosine, self.max_abs_diff, self.argmax_changes
        )
    }
}

/// 0 where the cosine is undefined: a zero or wrong-length output fails the check.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    ocular_core::similarity::cosine(a, b).unwrap_or(0.0)
}

/// Runs `check` on the graph `manifest.onnx` in `dir` (a session of its own, dropped after).
pub fn run(
    runtime: &OrtRuntime,
    dir: &Path,
    manifest: &Manifest,
    check: &SelfCheck,
    options: SessionOptions,
) -> Result<Verdict, ModelError> {
    let invalid = |reason: String| ModelError::Invalid { model: manifest.name.clone(), reason };
    let pre = manifest.image.as_ref().ok_or_else(|| invalid("self-check: no image preprocessing".into()))?;
    let session = OnnxSession::load(runtime, &manifest.name, &dir.join(&manifest.onnx), options)?;
    let shape = pre.input_shape(1);
    let mut wanted = vec![check.probability_output.as_str()];
    wanted.extend(check.cosine_output.as_deref());
    let mut verdict =
        Verdict { cases: check.cases.len(), min_cosine: 1.0, max_abs_diff: 0.0, argmax_changes: 0, passed: false };
    for case in &check.cases {
        let path = dir.join(&case.image);
        let bytes = std::fs::read(&path).map_err(|source| ModelError::File { path: path.clone(), source })?;
        let img = ocular_image::decode(&bytes, &ocular_image::Limits::default(), None)
            .map_err(|e| invalid(format!("self-check image {}: {e}", case.image)))?
            .image;
        let data = ocular_image::preprocess(&img, pre);
        let mut inputs = vec![Input::F32 { name: &manifest.inputs[0].name, shape: shape.clone(), data: &data }];
        if let (Some(meta), Some(spec)) = (&case.meta, manifest.inputs.get(1)) {
            inputs.push(Input::F32 { name: &spec.name, shape: vec![1, meta.len() as i64], data: meta });
        }
        let out = session.run(&inputs, &wanted)?;
        for name in &wanted {
            let got = out.get(*name).map(|(_, v)| v);
            let want = case.outputs.get(*name);
            let (Some(got), Some(want)) = (got, want) else {
                return Err(invalid(format!("self-check: output {name} missing")));
            };
            if got.len() != want.len() {
                return Err(invalid(format!(
                    "self-check: output {name} has {} values, expected {}",
                    got.len(),
                    want.len()
                )));
            }
            if *name == check.probability_output {
                let diff = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                verdict.max_abs_diff = verdict.max_abs_diff.max(diff);
                verdict.argmax_changes += usize::from(argmax(got) != argmax(want));
            } else {
                verdict.min_cosine = verdict.min_cosine.min(cosine(got, want));
            }
        }
    }
    // NaN measures fail: `<=` and `>=` are false for NaN.
    verdict.passed = verdict.argmax_changes == 0
        && verdict.max_abs_diff <= check.max_abs_diff
        && (check.cosine_output.is_none() || verdict.min_cosine >= check.min_cosine);
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0], &[1.0]), 0.0);
    }
}
