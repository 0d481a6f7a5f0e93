//! A model with no meaning, for exercising the registry and ONNX Runtime end to end.
//!
//! Its graph is made by `cargo run -p ocular-convert --example make_fixture` with ocular's own
//! ONNX builder and committed under `fixtures/models/`: a real ONNX file loaded by the real
//! runtime, small enough for every test.

use crate::error::ModelError;
use crate::registry::{LoadContext, Loadable};
use crate::session::{Input, OnnxSession};

pub struct FixtureModel {
    session: OnnxSession,
    input: String,
    output: String,
    width: usize,
}

impl FixtureModel {
    /// Runs one input vector through the graph.
    pub fn run(&self, x: &[f32]) -> Result<Vec<f32>, ModelError> {
        if x.len() != self.width {
            return Err(ModelError::Invalid {
                model: "fixture".into(),
                reason: format!("expected {} inputs, got {}", self.width, x.len()),
            });
        }
        let input = Input::F32 { name: &self.input, shape: vec![1, self.width as i64], data: x };
        let mut out = self.session.run(&[input], &[&self.output])?;
        Ok(out.remove(&self.output).map(|(_, v)| v).unwrap_or_default())
    }
}

impl Loadable for FixtureModel {
    fn load(ctx: &LoadContext<'_>) -> Result<Self, ModelError> {
        let m = ctx.manifest;
        let invalid = |reason: &str| ModelError::Invalid { model: m.name.clone(), reason: reason.into() };
        let input = m.inputs.first().ok_or_else(|| invalid("no input in manifest"))?;
        let output = m.outputs.first().ok_or_else(|| invalid("no output in manifest"))?;
        let width = *input.shape.last().ok_or_else(|| invalid("input has no shape"))?;
        let session = OnnxSession::load(ctx.runtime, &m.name, &ctx.dir.join(&m.onnx), ctx.session)?;
        Ok(Self { session, input: input.name.clone(), output: output.name.clone(), width: width.max(0) as usize })
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        self.run(&vec![0.0; self.width]).map(|_| ())
    }
}
