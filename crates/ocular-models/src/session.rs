//! One ONNX Runtime session per model, with the options ocular runs every model with, reached
//! through an inference [`Lane`]: a lone request runs at once on every intra-op thread, and
//! requests that arrive while the model is busy are run together as one batch (see
//! [`crate::lanes`]). The admission layer ([`crate::admission`]) bounds how many wait here.
//!
//! Session options, by measurement (docs/BENCHMARKS.md, "Serving engine"):
//! - float graphs keep ONNX Runtime's weight pre-packing off: the packed copies cost more
//!   resident memory than they save time;
//! - int8 graphs (found in the graph itself: quantize/dequantize or integer-matmul operators)
//!   turn it on: without it ONNX Runtime re-packs the int8 weights on every run and the int8
//!   graph is slower than the float one;
//! - no page-fault storm: the CPU arena stays off (it would keep each session's peak
//!   activations resident for good) and so does the *memory pattern* (one block for all of a
//!   run's activations, 40+ MB for sklesion: above any glibc mmap threshold, so it was mapped,
//!   faulted in page by page and unmapped on every run). Each activation is then its own
//!   allocation below the mmap threshold (`tune_allocator` in ocular-server's `memory.rs`),
//!   served from glibc's heap, whose pages the next run reuses. Measured with
//!   `examples/bench_bare.rs`: sklesion fp32 6,581 → 0 minor faults per run, EfficientNet-Lite0
//!   1,729 → 0, and no slower.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor};

use crate::error::ModelError;
use crate::lanes::{Batchable, Lane, LaneCounts, Runner};
use crate::runtime::OrtRuntime;

/// Per-session threading; see `Config::intra_threads`.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub intra_threads: usize,
}

impl Default for SessionOptions {
    /// Every core the process may use: `available_parallelism` counts the CPU affinity mask
    /// and a cgroup CPU quota (v1 and v2), so a container limited to 2 CPUs gets 2 threads.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { intra_threads: cores }
    }
}

/// Rows one batch may hold unless the process ([`set_max_batch`]) or a model
/// ([`OnnxSession::with_max_batch`]) says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 8;

/// The largest block `ocular serve`'s allocator serves from its reused heap (glibc's mmap
/// threshold, set from this constant by ocular-app's `tune_allocator`). A larger allocation is
/// mapped, faulted in page by page and unmapped again on every run, so a model's batch cap
/// keeps its largest activation under it ([`rows_within`]).
pub const HEAP_BLOCK_BYTES: u64 = 8 << 20;

/// Rows a batch may hold so that the model's largest activation, `row_bytes` for one row,
/// still fits one heap block of `block` bytes: at most `cap`, and at least 1 (one request always
/// runs, however large). Measured on EfficientNet-Lite0 (docs/BENCHMARKS.md, "Fourth round"):
/// batches of up to 8, whose activations were mapped, made 10-client photo search fault 1,387
/// times per request (140 unbatched) and serve 16.6 requests/s against 23.6 unbatched.
pub fn rows_within(cap: usize, row_bytes: u64, block: u64) -> usize {
    let fit = block.checked_div(row_bytes).map_or(cap, |rows| usize::try_from(rows).unwrap_or(usize::MAX));
    fit.min(cap).max(1)
}

/// The process-wide batch cap set by the operator (`ocular serve --inference-batch`); 0 while
/// unset, when each model keeps its own default.
static MAX_BATCH: AtomicUsize = AtomicUsize::new(0);

/// Sets the most rows one batch may hold for every session loaded from now on, overriding the
/// models' own defaults (`Some(1)` turns batching off everywhere, `Some(0)` counts as 1; `None`
/// restores the defaults). Sessions already loaded keep their cap. A process-wide setting
/// rather than a [`SessionOptions`] field because it is one knob of the whole process's
/// memory/throughput trade, like the shared intra-op pool (`runtime::share_threads`).
pub fn set_max_batch(rows: Option<usize>) {
    MAX_BATCH.store(rows.map_or(0, |r| r.max(1)), Ordering::Relaxed);
}

/// The operator's cap from [`set_max_batch`], if any.
pub fn max_batch_setting() -> Option<usize> {
    Some(MAX_BATCH.load(Ordering::Relaxed)).filter(|&r| r > 0)
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
    lane: Lane<OrtRunner>,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// Every input and output has a free first (batch) dimension.
    batchable: bool,
    int8: bool,
}

impl OnnxSession {
    pub fn load(rt: &OrtRuntime, name: &str, path: &Path, opts: SessionOptions) -> Result<Self, ModelError> {
        let ctx = |what: &str| format!("{what} for model {name} ({})", path.display());
        let int8 = is_int8_graph(path).map_err(|source| ModelError::File { path: path.to_path_buf(), source })?;
        let builder = Session::builder(&rt.environment).map_err(ModelError::ort(ctx("session builder")))?;
        let opts_err = |e: ort::Error<_>| ModelError::Ort { context: ctx("session options"), source: e.into() };
        let builder = builder.with_optimization_level(GraphOptimizationLevel::Level3).map_err(opts_err)?;
        let builder = builder.with_intra_threads(opts.intra_threads).map_err(opts_err)?;
        // Spinning threads burn a whole core between requests on a small shared host.
        let builder = builder.with_intra_op_spinning(false).map_err(opts_err)?;
        // The CPU arena keeps each session's peak activations resident for good (+30–60 MB
        // idle for sklesion); glibc's heap, tuned in ocular-server's `memory.rs`, reuses them,
        // provided no single activation block exceeds its mmap threshold: no memory pattern.
        let builder = builder
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(opts_err)?;
        let builder = builder.with_memory_pattern(false).map_err(opts_err)?;
        let mut builder = builder.with_prepacking(int8).map_err(opts_err)?;
        let session = builder.commit_from_file(path).map_err(ModelError::ort(ctx("loading")))?;
        // Loading parses the whole protobuf and frees it again; give those pages back to the OS
        // instead of keeping them in glibc's free lists (332 → 176 MB idle for sklesion).
        release_free_memory();
        let input_names = session.inputs().iter().map(|i| i.name().to_string()).collect();
        let output_names: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let free_batch = |dtype: &ort::value::ValueType| dtype.tensor_shape().is_some_and(|s| s.first() == Some(&-1));
        let batchable = session.inputs().iter().all(|i| free_batch(i.dtype()))
            && session.outputs().iter().all(|o| free_batch(o.dtype()));
        tracing::debug!(model.name = name, int8, batchable, "session options chosen");
        let runner = OrtRunner { session, name: name.to_string(), output_names: output_names.clone() };
        let max_rows = if batchable { max_batch_setting().unwrap_or(DEFAULT_MAX_BATCH) } else { 1 };
        Ok(Self {
            name: name.to_string(),
            lane: Lane::new(runner, max_rows),
            input_names,
            output_names,
            batchable,
            int8,
        })
    }

    /// A model's own default batch cap (1 turns batching off), used unless the operator set
    /// one for the whole process ([`set_max_batch`]); ignored for graphs with a fixed batch
    /// size, which never batch.
    pub fn with_max_batch(self, rows: usize) -> Self {
        if max_batch_setting().is_none() {
            self.set_max_batch(rows);
        }
        self
    }

    /// Changes the batch cap of this loaded session from its next batch on (tests, and a
    /// model that learns its cost only after loading); ignored for graphs that cannot batch.
    pub fn set_max_batch(&self, rows: usize) {
        if self.batchable {
            self.lane.set_max_rows(rows);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Whether the graph is quantised (and so runs with weight pre-packing).
    pub fn is_int8(&self) -> bool {
        self.int8
    }

    /// Rows one batch may hold (1 when the graph cannot batch).
    pub fn max_batch(&self) -> usize {
        self.lane.max_rows()
    }

    /// What the lane has run so far.
    pub fn lane_counts(&self) -> LaneCounts {
        self.lane.counts()
    }

    /// Requests waiting for the model now.
    pub fn queued(&self) -> usize {
        self.lane.queued()
    }

    /// Holds the model: requests queue until the guard drops, then run as batches. For tests
    /// and benchmarks that form a batch on purpose.
    #[doc(hidden)]
    pub fn hold(&self) -> impl Drop + '_ {
        self.lane.hold()
    }

    /// Runs the graph and returns the requested float outputs (all when `wanted` is empty),
    /// alone or batched with concurrent requests of the same shape; the answer is this
    /// request's own rows either way.
    pub fn run(&self, inputs: &[Input<'_>], wanted: &[&str]) -> Result<Outputs, ModelError> {
        let tensors: Vec<Owned> = inputs
            .iter()
            .map(|input| match input {
                Input::F32 { name, shape, data } => {
                    Owned { name: name.to_string(), shape: shape.clone(), data: Data::F32(data.to_vec()) }
                }
                Input::I64 { name, shape, data } => {
                    Owned { name: name.to_string(), shape: shape.clone(), data: Data::I64(data.to_vec()) }
                }
            })
            .collect();
        let first = tensors.first().and_then(|t| t.shape.first().copied());
        let uniform = first.is_some_and(|n| n > 0 && tensors.iter().all(|t| t.shape.first() == Some(&n)));
        let rows = if uniform { first.unwrap_or(1) as usize } else { 1 };
        let wanted = wanted.iter().map(|w| w.to_string()).collect();
        self.lane.submit(TensorJob { tensors, wanted, rows, joinable: uniform && self.batchable })
    }
}

enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

struct Owned {
    name: String,
    shape: Vec<i64>,
    data: Data,
}

impl Owned {
    fn same_kind(&self, other: &Owned) -> bool {
        let kinds_match =
            matches!((&self.data, &other.data), (Data::F32(_), Data::F32(_)) | (Data::I64(_), Data::I64(_)));
        kinds_match && self.name == other.name && self.shape.get(1..) == other.shape.get(1..)
    }
}

/// One request's inputs, owned so that whichever request runs the batch can read them.
struct TensorJob {
    tensors: Vec<Owned>,
    wanted: Vec<String>,
    rows: usize,
    /// Every input has the same first dimension and the graph batches.
    joinable: bool,
}

impl Batchable for TensorJob {
    type Output = Result<Outputs, ModelError>;

    fn rows(&self) -> usize {
        self.rows
    }

    fn joins(&self, first: &Self) -> bool {
        self.joinable
            && first.joinable
            && self.tensors.len() == first.tensors.len()
            && self.tensors.iter().zip(&first.tensors).all(|(a, b)| a.same_kind(b))
    }
}

struct OrtRunner {
    session: Session,
    name: String,
    output_names: Vec<String>,
}

impl Runner for OrtRunner {
    type Job = TensorJob;

    fn run(&mut self, jobs: Vec<TensorJob>) -> Vec<Result<Outputs, ModelError>> {
        if jobs.len() > 1 {
            match self.run_together(&jobs) {
                Ok(outputs) => return outputs.into_iter().map(Ok).collect(),
                // One request's bad input must not fail the others: run them one by one.
                Err(e) => tracing::warn!(model.name = %self.name, error = %e, "batched run failed; retrying alone"),
            }
        }
        jobs.into_iter().map(|job| self.run_alone(job)).collect()
    }

    fn panicked(&self) -> Result<Outputs, ModelError> {
        Err(ModelError::Invalid { model: self.name.clone(), reason: "inference panicked".into() })
    }
}

impl OrtRunner {
    fn ctx(&self, what: &str) -> String {
        format!("{what} ({})", self.name)
    }

    /// One request: its buffers move into the tensors, no copy.
    fn run_alone(&mut self, job: TensorJob) -> Result<Outputs, ModelError> {
        let TensorJob { tensors, wanted, rows, .. } = job;
        let mut values = Vec::with_capacity(tensors.len());
        for t in tensors {
            values.push((t.name, tensor(t.shape, t.data).map_err(ModelError::ort(self.ctx("input tensor")))?));
        }
        let mut outs = self.run_values(values, &[(rows, &wanted)])?;
        Ok(outs.pop().unwrap_or_default())
    }

    /// Several requests as one batch: inputs concatenated along the first dimension, outputs
    /// split back by each request's rows.
    fn run_together(&mut self, jobs: &[TensorJob]) -> Result<Vec<Outputs>, ModelError> {
        let total: usize = jobs.iter().map(|j| j.rows).sum();
        let mut values = Vec::with_capacity(jobs[0].tensors.len());
        for (i, first) in jobs[0].tensors.iter().enumerate() {
            let mut shape = first.shape.clone();
            shape[0] = total as i64;
            let data = match &first.data {
                Data::F32(_) => Data::F32(concat(jobs, i, |d| if let Data::F32(v) = d { Some(v) } else { None })),
                Data::I64(_) => Data::I64(concat(jobs, i, |d| if let Data::I64(v) = d { Some(v) } else { None })),
            };
            values.push((first.name.clone(), tensor(shape, data).map_err(ModelError::ort(self.ctx("input tensor")))?));
        }
        let parts: Vec<(usize, &Vec<String>)> = jobs.iter().map(|j| (j.rows, &j.wanted)).collect();
        self.run_values(values, &parts)
    }

    fn run_values(
        &mut self,
        values: Vec<(String, DynValue)>,
        parts: &[(usize, &Vec<String>)],
    ) -> Result<Vec<Outputs>, ModelError> {
        let ctx = |what: &str| format!("{what} ({})", self.name);
        let outputs = self.session.run(values).map_err(ModelError::ort(ctx("inference")))?;
        let total: usize = parts.iter().map(|p| p.0).sum();
        let mut result = vec![Outputs::new(); parts.len()];
        for name in &self.output_names {
            let wants = |w: &Vec<String>| w.is_empty() || w.contains(name);
            if !parts.iter().any(|(_, w)| wants(w)) {
                continue;
            }
            let Some(value) = outputs.get(name.as_str()) else { continue };
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(ModelError::ort(ctx("reading output")))?;
            if let [(_, _)] = parts {
                result[0].insert(name.clone(), (shape.to_vec(), data.to_vec()));
                continue;
            }
            if shape.first() != Some(&(total as i64)) || total == 0 || data.len() % total != 0 {
                let reason = format!("output {name} of shape {:?} does not split into {total} rows", shape.to_vec());
                return Err(ModelError::Invalid { model: self.name.clone(), reason });
            }
            let per = data.len() / total;
            let mut offset = 0;
            for ((rows, wanted), out) in parts.iter().zip(result.iter_mut()) {
                if wants(wanted) {
                    let mut s = shape.to_vec();
                    s[0] = *rows as i64;
                    out.insert(name.clone(), (s, data[offset * per..(offset + rows) * per].to_vec()));
                }
                offset += rows;
            }
        }
        Ok(result)
    }
}

fn concat<T: Copy>(jobs: &[TensorJob], input: usize, pick: impl Fn(&Data) -> Option<&Vec<T>>) -> Vec<T> {
    let len = jobs.iter().filter_map(|j| pick(&j.tensors[input].data)).map(Vec::len).sum();
    let mut out = Vec::with_capacity(len);
    for j in jobs {
        if let Some(v) = pick(&j.tensors[input].data) {
            out.extend_from_slice(v);
        }
    }
    out
}

fn tensor(shape: Vec<i64>, data: Data) -> Result<DynValue, ort::Error> {
    Ok(match data {
        Data::F32(v) => Tensor::from_array((shape, v))?.into_dyn(),
        Data::I64(v) => Tensor::from_array((shape, v))?.into_dyn(),
    })
}

/// Operator names that only quantised graphs contain: QDQ (`QuantizeLinear`,
/// `DequantizeLinear`, `DynamicQuantizeLinear`), QOperator (`QLinearConv`, `QLinearMatMul`,
/// ...) and integer kernels (`MatMulInteger`, `ConvInteger`, `DynamicQuantizeMatMul`).
const INT8_OPS: [&[u8]; 4] = [b"uantizeLinear", b"QLinear", b"Integer", b"QuantizeMatMul"];

/// Whether the ONNX file at `path` is a quantised graph: its operator names appear in the
/// protobuf as plain strings. Streamed in 1 MiB pieces, so a large float graph is never held
/// twice in memory.
pub fn is_int8_graph(path: &Path) -> std::io::Result<bool> {
    const CHUNK: usize = 1 << 20;
    const KEEP: usize = 16;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK + KEEP];
    let mut carried = 0;
    loop {
        let n = file.read(&mut buf[carried..])?;
        if n == 0 {
            return Ok(false);
        }
        let filled = carried + n;
        if contains_any(&buf[..filled], &INT8_OPS) {
            return Ok(true);
        }
        carried = filled.min(KEEP);
        buf.copy_within(filled - carried..filled, 0);
    }
}

fn contains_any(hay: &[u8], needles: &[&[u8]]) -> bool {
    hay.iter().enumerate().any(|(i, &b)| needles.iter().any(|n| n[0] == b && hay.get(i..i + n.len()) == Some(*n)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The only unit test touching the process-wide setting (integration tests run in another
    /// binary), so it cannot race another reader.
    #[test]
    fn batch_setting_is_at_least_one_row() {
        assert_eq!(max_batch_setting(), None);
        set_max_batch(Some(3));
        assert_eq!(max_batch_setting(), Some(3));
        set_max_batch(Some(0));
        assert_eq!(max_batch_setting(), Some(1), "0 rows would never run anything");
        set_max_batch(None);
        assert_eq!(max_batch_setting(), None);
    }

    #[test]
    fn a_batch_cap_keeps_the_largest_activation_on_the_heap() {
        const MB: u64 = 1 << 20;
        // EfficientNet-Lite0 at 224 px: 4.8 MB a row; two rows would be mapped.
        assert_eq!(rows_within(8, 4_816_896, HEAP_BLOCK_BYTES), 1);
        assert_eq!(rows_within(8, 2 * MB, HEAP_BLOCK_BYTES), 4);
        assert_eq!(rows_within(3, MB, HEAP_BLOCK_BYTES), 3, "never above the model's own cap");
        assert_eq!(rows_within(8, 40 * MB, HEAP_BLOCK_BYTES), 1, "one request always runs");
        assert_eq!(rows_within(8, 0, HEAP_BLOCK_BYTES), 8, "no activation figure: the cap alone");
        assert_eq!(rows_within(0, MB, HEAP_BLOCK_BYTES), 1);
    }

    #[test]
    fn quantised_operator_names_are_found_across_chunk_edges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.onnx");
        // The first read takes 1 MiB + 16 bytes; the name starts 5 bytes before its end.
        let mut bytes = vec![7u8; (1 << 20) + 16 - 5];
        std::fs::write(&path, &bytes).expect("write");
        assert!(!is_int8_graph(&path).expect("scan"));
        bytes.extend_from_slice(b"DequantizeLinear");
        bytes.extend_from_slice(&[0u8; 100]);
        std::fs::write(&path, &bytes).expect("write");
        assert!(is_int8_graph(&path).expect("scan"));
        std::fs::write(&path, b"..MatMulInteger..").expect("write");
        assert!(is_int8_graph(&path).expect("scan"));
        std::fs::write(&path, b"Conv Relu MatMul Gemm Add Softmax").expect("write");
        assert!(!is_int8_graph(&path).expect("scan"));
    }
}
