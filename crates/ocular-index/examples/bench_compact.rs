//! Recall, latency and memory of [`CompactIndex`] against an exact f32 scan, on the bench-like
//! and the clustered catalogs of `tests/integration/catalogs.rs`: medians, never assertions.
//!
//! ```text
//! cargo run --release -p ocular-index --example bench_compact -- --rows=10000,100000,1000000 --queries=50
//! cargo run --release -p ocular-index --example bench_compact -- --rows=100000 --catalogs=bench-image --bits=384,512
//! ```
//!
//! Per catalog and size: the index is built row by row while an exact top 10 (and an exact
//! filtered top 10, every tenth id) is kept for every query; then each query is searched once
//! (after one warm-up pass) on one thread. Options: `--z=2.5` (confidence; a list sweeps it), `--centroids=32`,
//! `--sample=2048` (rows k-means trains on), `--bits=` (code bits; default per dimension),
//! `--dir=` (where the vector file lives; the system's temporary directory by default),
//! `--cap=` (at most this many rows rescored from the f32 file per search; a list sweeps it),
//! `--refine=on,off` (with and without the 4-bit refinement stage, one after the other on the
//! same index, so the two are compared within one run), `--kernel=avx512,avx2,portable` (the
//! one-bit scan's kernels, likewise). `CPU p50` is the thread's own CPU time per search (from
//! the scheduler), less disturbed than wall-clock time on a loaded machine.

#[path = "../tests/integration/catalogs.rs"]
mod catalogs;

use std::time::Instant;

use catalogs::{Catalog, ExactTopK, dot};
use ocular_index::{CompactConfig, CompactIndex, VectorIndex, train_centroids};

struct Options {
    rows: Vec<usize>,
    queries: usize,
    catalogs: Vec<String>,
    bits: Vec<usize>,
    z: Vec<f32>,
    centroids: usize,
    sample: usize,
    dir: Option<String>,
    /// Rescoring caps to sweep (`--cap=`): at most this many rows rescored per search.
    caps: Vec<usize>,
    /// Whether the 4-bit refinement stage runs (`--refine=on,off` compares both on one index).
    refine: Vec<bool>,
    /// One-bit scan kernels to compare on one index (`--kernel=avx512,avx2,portable`); the
    /// fastest available when empty.
    kernels: Vec<String>,
}

fn list<T: std::str::FromStr>(v: &str) -> Vec<T> {
    v.split(',').map(|x| x.parse().unwrap_or_else(|_| panic!("bad list {v}"))).collect()
}

fn options() -> Options {
    let mut o = Options {
        rows: vec![10_000, 100_000],
        queries: 50,
        catalogs: ["bench-image", "bench-text", "bench-image_text", "clustered-1280", "clustered-384"]
            .map(String::from)
            .to_vec(),
        bits: Vec::new(),
        z: vec![2.5],
        centroids: 32,
        sample: 2048,
        dir: None,
        caps: vec![usize::MAX],
        refine: vec![true],
        kernels: Vec::new(),
    };
    for arg in std::env::args().skip(1) {
        let (k, v) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        match k {
            "--rows" => o.rows = list(v),
            "--queries" => o.queries = v.parse().expect("--queries"),
            "--catalogs" => o.catalogs = list(v),
            "--bits" => o.bits = list(v),
            "--z" => o.z = list(v),
            "--centroids" => o.centroids = v.parse().expect("--centroids"),
            "--sample" => o.sample = v.parse().expect("--sample"),
            "--dir" => o.dir = Some(v.to_string()),
            "--cap" => o.caps = list(v),
            "--refine" => o.refine = v.split(',').map(|x| x == "on").collect(),
            "--kernel" => o.kernels = list(v),
            _ => panic!("unknown option {arg}"),
        }
    }
    o
}

fn catalog(name: &str, rows: usize) -> Catalog {
    match name {
        "bench-image" => Catalog::bench_image(1280, 1),
        "bench-text" => Catalog::bench_text(384, 2),
        "bench-image_text" => Catalog::bench_image_text(384, 3),
        "clustered-1280" => Catalog::clustered(1280, rows, 100, 4),
        "clustered-384" => Catalog::clustered(384, rows, 100, 5),
        _ => panic!("unknown catalog {name}"),
    }
}

/// CPU time this thread has run, in ms: on a shared, loaded machine wall-clock latency
/// also measures the wait for a core, CPU time only the work.
fn thread_cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let o = options();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("cpu: {cpu}; z = {:?}, centroids = {}, k-means sample = {}, one thread", o.z, o.centroids, o.sample);
    println!(
        "| catalog | rows | bits | z | cap | refine | scan | build s | B/row (heap) | file MB | p50 ms | p95 ms | CPU p50 ms | recall@10 mean / min | filtered recall | shortlist p50 | refined p50 | rescored p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &rows in &o.rows {
        for name in &o.catalogs {
            let dim = catalog(name, rows).dim;
            let bits = if o.bits.is_empty() { vec![CompactConfig::new(dim).bits] } else { o.bits.clone() };
            for &b in &bits {
                run(&o, name, rows, b);
            }
        }
    }
}

fn run(o: &Options, name: &str, rows: usize, bits: usize) {
    let mut source = catalog(name, rows);
    let dim = source.dim;
    let queries: Vec<Vec<f32>> = (0..o.queries).map(|i| source.query(i)).collect();
    let sample: Vec<Vec<f32>> = {
        let mut c = catalog(name, rows);
        (0..o.sample.min(rows)).map(|i| c.row(i)).collect()
    };
    let started = Instant::now();
    let centroids = train_centroids(dim, &sample, o.centroids, 8);
    let train_s = started.elapsed().as_secs_f64();
    drop(sample);
    let mut config = CompactConfig::new(dim).bits(bits).centroids(centroids);
    if let Some(dir) = &o.dir {
        config = config.dir(dir);
    }
    let index = CompactIndex::new(config).expect("index");
    let filter = |id: u64| id % 10 == 3;
    let mut exact: Vec<ExactTopK> = (0..queries.len()).map(|_| ExactTopK::new(10)).collect();
    let mut exact_filtered: Vec<ExactTopK> = (0..queries.len()).map(|_| ExactTopK::new(10)).collect();
    let mut build = 0.0;
    for i in 0..rows {
        let v = source.row(i);
        let id = i as u64;
        let t = Instant::now();
        index.upsert(id, &v).expect("upsert");
        build += t.elapsed().as_secs_f64();
        for (q, (e, f)) in queries.iter().zip(exact.iter_mut().zip(exact_filtered.iter_mut())) {
            let s = dot(q, &v);
            e.push(s, id);
            if filter(id) {
                f.push(s, id);
            }
        }
    }
    for q in &queries {
        index.search(q, 10, None).expect("warm-up");
    }
    let kernels =
        if o.kernels.is_empty() { vec![CompactIndex::scan_kernels()[0].to_string()] } else { o.kernels.clone() };
    for &z in &o.z {
        for &cap in &o.caps {
            for &refine in &o.refine {
                for kernel in &kernels {
                    assert!(index.set_scan_kernel(kernel), "this CPU has no {kernel} kernel");
                    index.set_refine(refine);
                    let run = Run { name: &source.name, rows, bits, z, cap, refine, kernel };
                    measure(&index, &run, (build, train_s), &queries, (&exact, &exact_filtered));
                }
            }
        }
    }
}

/// One line of the table: which catalog and settings.
struct Run<'a> {
    name: &'a str,
    rows: usize,
    bits: usize,
    z: f32,
    cap: usize,
    refine: bool,
    kernel: &'a str,
}

fn measure(
    index: &CompactIndex,
    &Run { name, rows, bits, z, cap, refine, kernel }: &Run<'_>,
    (build, train_s): (f64, f64),
    queries: &[Vec<f32>],
    (exact, exact_filtered): (&[ExactTopK], &[ExactTopK]),
) {
    let filter = |id: u64| id % 10 == 3;
    let (mut lat, mut recall, mut frecall, mut short, mut resc) = (vec![], vec![], vec![], vec![], vec![]);
    let mut cpu = vec![];
    let mut refined = vec![];
    for (q, (e, f)) in queries.iter().zip(exact.iter().zip(exact_filtered)) {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let (hits, stats) = index.search_capped(q, 10, None, z, cap).expect("search");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(thread_cpu_ms() - c);
        let want = e.ids();
        recall.push(want.iter().filter(|id| hits.iter().any(|h| h.id == **id)).count() as f64 / want.len() as f64);
        short.push(stats.shortlisted as f64);
        refined.push(stats.refined as f64);
        resc.push(stats.rescored as f64);
        let (fhits, _) = index.search_capped(q, 10, Some(&filter), z, cap).expect("filtered search");
        let fwant = f.ids();
        frecall.push(fwant.iter().filter(|id| fhits.iter().any(|h| h.id == **id)).count() as f64 / fwant.len() as f64);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = sorted[((sorted.len() - 1) as f64 * 0.95).round() as usize];
    println!(
        "| {name} | {rows} | {bits} | {z} | {} | {} | {kernel} | {:.1} (+{:.1} k-means) | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.4} / {:.2} | {:.4} | {:.0} | {:.0} | {:.0} |",
        if cap == usize::MAX { "-".to_string() } else { cap.to_string() },
        if refine { "4-bit" } else { "off" },
        build,
        train_s,
        index.memory_bytes() / rows,
        index.mapped_bytes() as f64 / 1e6,
        median(&mut lat),
        p95,
        median(&mut cpu),
        mean(&recall),
        min(&recall),
        mean(&frecall),
        median(&mut short),
        median(&mut refined),
        median(&mut resc),
    );
}
