//! The model's own cost: one installed graph run directly on ONNX Runtime (no ocular code on
//! the path), with the same library and thread count as the server. Reports the median and
//! p95 of one inference, minor page faults per inference and the resident set before and
//! after, so every ocular figure can be shown as a ratio to it (`bench/run.sh`).
//!
//! ```text
//! cargo run --release -p ocular-models --example bench_bare -- MODEL_DIR [ITERATIONS] [options]
//!   --graph=FILE         another graph in MODEL_DIR (e.g. model.int8.onnx; default: the manifest's)
//!   --threads=N          intra-op threads (default: cores)
//!   --batch=N[,N...]     batch size (default 1); several sizes are run interleaved in one
//!                        process (1, 2, 4, 1, 2, 4, ...) and each gets its own JSON line with
//!                        `per_image_ms` (p50 / batch): is a batch cheaper per image than one?
//!   --no-arena / --no-prepack / --no-mem-pattern     session options (default: ONNX
//!                        Runtime's own: arena on, pre-packing on, memory pattern on)
//!   --ocular             ocular's session settings instead (arena off, no pre-packing)
//!   --mmap-threshold=B   glibc M_MMAP_THRESHOLD before loading (and M_TRIM_THRESHOLD 32 MiB,
//!                        ocular's setting) -- to reproduce the server's allocator
//!   --trim-only          only M_TRIM_THRESHOLD 32 MiB (what the server did before issue 15)
//! ```
//!
//! The input is seeded pseudo-random data of the manifest's input shapes (dynamic dimensions
//! become the batch size, token ids stay under 1000), so the graph runs its full arithmetic.

use std::time::Instant;

use ocular_core::Manifest;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor};

fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 10 (minflt); the command name (field 2) is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb =
        status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallopt(param: i32, value: i32) {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only sets glibc's tuning parameters.
    unsafe {
        mallopt(param, value);
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| args.iter().find_map(|a| a.strip_prefix(&format!("{name}="))?.parse::<usize>().ok());
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let dir = std::path::PathBuf::from(positional.first().ok_or("usage: bench_bare MODEL_DIR [ITERATIONS]")?.as_str());
    let iterations: usize = positional.get(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = value("--threads").unwrap_or(cores);
    let batches: Vec<usize> = args
        .iter()
        .find_map(|a| a.strip_prefix("--batch="))
        .map(|list| list.split(',').filter_map(|b| b.parse::<usize>().ok()).map(|b| b.max(1)).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1]);

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        if flag("--trim-only") || value("--mmap-threshold").is_some() {
            mallopt(M_TRIM_THRESHOLD, 32 << 20);
        }
        if let Some(b) = value("--mmap-threshold") {
            mallopt(M_MMAP_THRESHOLD, b as i32);
        }
    }

    let mut manifest = Manifest::load(&dir)?;
    if let Some(graph) = args.iter().find_map(|a| a.strip_prefix("--graph=")) {
        manifest.onnx = graph.to_string();
    }
    let library = ocular_models::runtime::locate(None, std::path::Path::new("models"))?;
    let environment = ort::init_from(&library)?.with_name("bench_bare").build()?;
    let rss_start = status_mb("VmRSS:");
    let mut builder = Session::builder(&environment)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?
        .with_intra_threads(threads)
        .map_err(|e| e.to_string())?
        .with_intra_op_spinning(false)
        .map_err(|e| e.to_string())?;
    let ocular = flag("--ocular");
    if ocular || flag("--no-arena") {
        builder = builder
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(|e| e.to_string())?;
    }
    if ocular || flag("--no-prepack") {
        builder = builder.with_prepacking(false).map_err(|e| e.to_string())?;
    }
    if flag("--no-mem-pattern") {
        builder = builder.with_memory_pattern(false).map_err(|e| e.to_string())?;
    }
    let mut session = builder.commit_from_file(dir.join(&manifest.onnx))?;
    let rss_loaded = status_mb("VmRSS:");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut make_inputs = |batch: usize| -> Result<Vec<(String, DynValue)>, ort::Error> {
        let mut values = Vec::new();
        for input in &manifest.inputs {
            let shape: Vec<i64> = input
                .shape
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if d > 0 {
                        d
                    } else if i == 0 {
                        batch as i64
                    } else {
                        16
                    }
                })
                .collect();
            let n: i64 = shape.iter().product();
            let value = if input.dtype == "int64" {
                // Token ids under 1000; an attention mask of ones, token types zero.
                let token = |r: &mut Rng| match input.name.as_str() {
                    n if n.contains("mask") => 1,
                    n if n.contains("type") => 0,
                    _ => (r.next() * 999.0) as i64 + 1,
                };
                let data: Vec<i64> = (0..n).map(|_| token(&mut rng)).collect();
                Tensor::from_array((shape, data))?.into_dyn()
            } else {
                let data: Vec<f32> = (0..n).map(|_| rng.next() * 255.0).collect();
                Tensor::from_array((shape, data))?.into_dyn()
            };
            values.push((input.name.clone(), value));
        }
        Ok(values)
    };
    for &batch in &batches {
        for _ in 0..3 {
            session.run(make_inputs(batch)?)?;
        }
    }
    let rss_warm = status_mb("VmRSS:");
    let mut times = vec![Vec::with_capacity(iterations); batches.len()];
    let mut faults = vec![0; batches.len()];
    for _ in 0..iterations {
        for (i, &batch) in batches.iter().enumerate() {
            let inputs = make_inputs(batch)?;
            let before = minor_faults();
            let started = Instant::now();
            let out = session.run(inputs)?;
            times[i].push(started.elapsed().as_secs_f64() * 1e3);
            drop(out);
            faults[i] += minor_faults() - before;
        }
    }
    for (i, &batch) in batches.iter().enumerate() {
        let times = &mut times[i];
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "{{\"model\":\"{}\",\"onnx\":\"{}\",\"threads\":{threads},\"batch\":{batch},\"iterations\":{iterations},\
             \"p50_ms\":{:.2},\"p95_ms\":{:.2},\"per_image_ms\":{:.2},\"minor_faults_per_run\":{},\
             \"rss_start_mb\":{rss_start:.0},\"rss_loaded_mb\":{rss_loaded:.0},\"rss_warm_mb\":{rss_warm:.0},\
             \"rss_end_mb\":{:.0},\"peak_rss_mb\":{:.0},\"options\":\"{}\"}}",
            manifest.name,
            manifest.onnx,
            pct(0.5),
            pct(0.95),
            pct(0.5) / batch as f64,
            faults[i] / iterations as u64,
            status_mb("VmRSS:"),
            status_mb("VmHWM:"),
            args.iter().filter(|a| a.starts_with("--")).cloned().collect::<Vec<_>>().join(" "),
        );
    }
    Ok(())
}
