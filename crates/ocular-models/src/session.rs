//! One ONNX Runtime session with the options ocular runs every model with.
//!
//! `ort` sessions need `&mut self` to run, so each is behind a mutex: on a 2-core host one
//! session using both cores per inference beats several sessions fighting for them, and the
//! admission layer ([`crate::admission`]) already bounds how many requests wait here.

use std::collections::HashMap;
use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use parking_lot::Mutex;

use crate::error::ModelError;
use crate::runtime::OrtRuntime;

/// Per-session threading; see `Config::intra_threads`.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub intra_threads: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { intra_threads: cores }
    }
}

/// An input tensor, borrowed so large images are not copied again.
pub enum Input<'a> {
    F32 { name: &'a str, shape: Vec<i64>, data: &'a [f32] },
    I64 { name: &'a str, shape: Vec<i64>, data: &'a [i64] },
}

/// Float outputs by name: shape and values.
pub type Outputs = HashMap<String, (Vec<i64>, Vec<f32>)>;

pub struct OnnxSession {
    name: String,
    session: Mutex<Session>,
    input_names: Vec<String>,
    output_names: Vec<String>,
}

impl OnnxSession {
    pub fn load(rt: &OrtRuntime, name: &str, path: &Path, opts: SessionOptions) -> Result<Self, ModelError> {
        let ctx = |what: &str| format!("{what} for model {name} ({})", path.display());
        let builder = Session::builder(&rt.environment).map_err(ModelError::ort(ctx("session builder")))?;
        let opts_err = |e: ort::Error<_>| ModelError::Ort { context: ctx("session options"), source: e.into() };
        let builder = builder.with_optimization_level(GraphOptimizationLevel::Level3).map_err(opts_err)?;
        let builder = builder.with_intra_threads(opts.intra_threads).map_err(opts_err)?;
        // Spinning threads burn a whole core between requests on a small shared host.
        let builder = builder.with_intra_op_spinning(false).map_err(opts_err)?;
        // Memory over a few percent of speed, measured on sklesion (idle RSS, one model):
        // the CPU arena keeps peak activations resident forever (+30–60 MB), and pre-packed
        // weight copies cost more than they save once the originals are freed.
        let builder = builder
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(opts_err)?;
        let mut builder = builder.with_prepacking(false).map_err(opts_err)?;
        let session = builder.commit_from_file(path).map_err(ModelError::ort(ctx("loading")))?;
        // Loading parses the whole protobuf and frees it again; give those pages back to the OS
        // instead of keeping them in glibc's free lists (332 → 176 MB idle for sklesion).
        release_free_memory();
        let input_names = session.inputs().iter().map(|i| i.name().to_string()).collect();
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        Ok(Self { name: name.to_string(), session: Mutex::new(session), input_names, output_names })
    }

    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Runs the graph and returns the requested float outputs (all when `wanted` is empty).
    pub fn run(&self, inputs: &[Input<'_>], wanted: &[&str]) -> Result<Outputs, ModelError> {
        let ctx = |what: &str| format!("{what} ({})", self.name);
        let mut values = Vec::with_capacity(inputs.len());
        for input in inputs {
            let (name, value) = match input {
                Input::F32 { name, shape, data } => (
                    *name,
                    Tensor::from_array((shape.clone(), data.to_vec()))
                        .map_err(ModelError::ort(ctx("input tensor")))?
                        .into_dyn(),
                ),
                Input::I64 { name, shape, data } => (
                    *name,
                    Tensor::from_array((shape.clone(), data.to_vec()))
                        .map_err(ModelError::ort(ctx("input tensor")))?
                        .into_dyn(),
                ),
            };
            values.push((name.to_string(), value));
        }
        let mut session = self.session.lock();
        let outputs = session.run(values).map_err(ModelError::ort(ctx("inference")))?;
        let mut out = Outputs::new();
        for name in &self.output_names {
            if !wanted.is_empty() && !wanted.contains(&name.as_str()) {
                continue;
            }
            let Some(value) = outputs.get(name.as_str()) else { continue };
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(ModelError::ort(ctx("reading output")))?;
            out.insert(name.clone(), (shape.to_vec(), data.to_vec()));
        }
        Ok(out)
    }
}

/// Returns freed heap pages to the operating system (glibc `malloc_trim`).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only walks glibc's own free lists; it has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}
