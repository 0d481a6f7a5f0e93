//! Search latency and memory of `QuantizedIndex`, one thread, medians over repeated runs.
//!
//! ```text
//! cargo run --release -p ocular-index --example bench_index            # full table
//! cargo run --release -p ocular-index --example bench_index -- --quick # 10k rows only
//! cargo run --release -p ocular-index --example bench_index -- --rows=100000 --dims=512 --data=random
//! ```
//!
//! Prints, per (rows × dim, data): p50/p95 search latency for k = 10 without a filter and
//! with a filter passing 10 % of ids, the mean shortlist length (rows rescored), and index
//! bytes per vector; then a kernel comparison (quantised scan only, no rescoring).

use std::time::{Duration, Instant};

use ocular_index::{Kernel, QuantizedConfig, QuantizedIndex, Rescore, VectorIndex};

#[path = "../tests/integration/data.rs"]
mod data;

use data::{Clusters, Rng, random_unit};

const K: usize = 10;
/// Untimed queries before measuring: at least this many, and for at least `WARMUP_TIME`.
/// Freshly written memory on the project's VM reads several times slower for its first
/// few scans; a long-lived index in the server is always past that.
const WARMUP: usize = 10;
const WARMUP_TIME: Duration = Duration::from_millis(500);

fn main() {
    let opts = Options::parse();
    println!("kernel: {} (available: {:?})", Kernel::detect().name(), names(&Kernel::available()));
    println!(
        "{:>8} {:>5} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>8} | {:>8}",
        "rows", "dim", "data", "p50 ms", "p95 ms", "filt p50", "filt p95", "rescored", "B/vector"
    );
    for &n in &opts.rows {
        for &dim in &opts.dims {
            for &clustered in &opts.data {
                bench_case(n, dim, clustered, opts.queries);
            }
        }
    }
    if !opts.kernels {
        return;
    }
    println!("\nbytes per vector by rescoring option (8192 rows: two full segments, no slack):");
    for &dim in &opts.dims {
        let per: Vec<String> = [Rescore::Off, Rescore::F16, Rescore::F32]
            .into_iter()
            .map(|r| {
                let label = format!("{r:?}");
                let index = build(QuantizedConfig::new(dim).rescore(r), 8_192, dim, false, 1);
                format!("{label} {:.0}", index.memory_bytes() as f64 / 8_192.0)
            })
            .collect();
        println!("  dim {dim:>4}: {}", per.join(", "));
    }
    let n = opts.rows.iter().copied().max().unwrap_or(10_000);
    for &dim in &opts.dims {
        println!("\nkernel comparison, quantised scan only (Rescore::Off), {n} x {dim}:");
        for kernel in Kernel::available() {
            let index = build(QuantizedConfig::new(dim).rescore(Rescore::Off).kernel(kernel), n, dim, false, 7);
            let (p50, p95) = time_queries(&index, dim, opts.queries, None, 8);
            println!("  {:<12} p50 {:>7.3} ms  p95 {:>7.3} ms", kernel.name(), ms(p50), ms(p95));
        }
    }
}

/// `--quick`, or any of `--rows=10000,100000 --dims=384,512,1280 --data=random,clustered
/// --queries=200 --no-kernels`.
struct Options {
    rows: Vec<usize>,
    dims: Vec<usize>,
    data: Vec<bool>,
    queries: usize,
    kernels: bool,
}

impl Options {
    fn parse() -> Self {
        let mut o = Options {
            rows: vec![10_000, 100_000],
            dims: vec![384, 512, 1280],
            data: vec![false, true],
            queries: 200,
            kernels: true,
        };
        for arg in std::env::args().skip(1) {
            let (key, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
            let list = || value.split(',').map(|v| v.parse().expect("a number")).collect();
            match key {
                "--quick" => {
                    o.rows = vec![10_000];
                    o.queries = 50;
                }
                "--rows" => o.rows = list(),
                "--dims" => o.dims = list(),
                "--queries" => o.queries = value.parse().expect("a number"),
                "--data" => o.data = value.split(',').map(|v| v == "clustered").collect(),
                "--no-kernels" => o.kernels = false,
                _ => panic!("unknown argument {arg}"),
            }
        }
        o
    }
}

fn names(kernels: &[Kernel]) -> Vec<&'static str> {
    kernels.iter().map(|k| k.name()).collect()
}

fn bench_case(n: usize, dim: usize, clustered: bool, queries: usize) {
    let index = build(QuantizedConfig::new(dim), n, dim, clustered, 42);
    let (p50, p95) = time_queries(&index, dim, queries, None, 3);
    let one_in_ten = |id: u64| id.is_multiple_of(10);
    let (fp50, fp95) = time_queries(&index, dim, queries, Some(&one_in_ten), 3);
    // Mean shortlist (rows rescored) on fresh queries drawn like the data.
    let mut rng = Rng::new(4);
    let clusters = Clusters::new(&mut Rng::new(42), 50, dim, 0.6);
    let shortlist: usize = (0..queries)
        .map(|_| {
            let q = if clustered { clusters.sample(&mut rng) } else { random_unit(&mut rng, dim) };
            index.search_with_stats(&q, K, None).map_or(0, |(_, s)| s.rescored)
        })
        .sum();
    println!(
        "{:>8} {:>5} {:>9} | {:>8.3} {:>8.3} | {:>8.3} {:>8.3} | {:>8.1} | {:>8.0}",
        n,
        dim,
        if clustered { "clustered" } else { "random" },
        ms(p50),
        ms(p95),
        ms(fp50),
        ms(fp95),
        shortlist as f64 / queries as f64,
        index.memory_bytes() as f64 / n as f64,
    );
}

/// Random unit vectors, or vectors around 50 cluster centres (like products in categories).
fn build(config: QuantizedConfig, n: usize, dim: usize, clustered: bool, seed: u64) -> QuantizedIndex {
    let index = QuantizedIndex::new(config).expect("valid bench config");
    let mut rng = Rng::new(seed);
    let clusters = Clusters::new(&mut rng, 50, dim, 0.6);
    for id in 0..n as u64 {
        let v = if clustered { clusters.sample(&mut rng) } else { random_unit(&mut rng, dim) };
        index.upsert(id, &v).expect("valid bench vector");
    }
    index
}

/// p50 and p95 of single-query latency (queries drawn like the data: random directions).
fn time_queries(
    index: &QuantizedIndex,
    dim: usize,
    queries: usize,
    filter: Option<&dyn Fn(u64) -> bool>,
    seed: u64,
) -> (Duration, Duration) {
    let mut rng = Rng::new(seed);
    let qs: Vec<Vec<f32>> = (0..queries.max(WARMUP)).map(|_| random_unit(&mut rng, dim)).collect();
    let start = Instant::now();
    for q in qs.iter().cycle().take_while(|_| start.elapsed() < WARMUP_TIME).chain(&qs[..WARMUP]) {
        std::hint::black_box(index.search(q, K, filter).expect("valid bench query"));
    }
    let mut times: Vec<Duration> = qs[..queries]
        .iter()
        .map(|q| {
            let start = Instant::now();
            let hits = index.search(q, K, filter).expect("valid bench query");
            let elapsed = start.elapsed();
            std::hint::black_box(hits);
            elapsed
        })
        .collect();
    times.sort_unstable();
    (times[times.len() / 2], times[times.len() * 95 / 100])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
