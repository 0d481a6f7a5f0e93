//! Peak memory of reading a catalog for import: the whole file and every parsed record held at
//! once (what `import_file` did before issue 20's streaming reader: `std::fs::read`, then
//! `parse::parse` into a vector), against the streamed reader `run_import` uses now (the
//! SHA-256 pass, the counting pass, then one chunk of records at a time). No models: what is
//! measured is the catalog's share of an import's memory.
//!
//! ```sh
//! cargo run --release -p ocular-search --example import_memory -- 300000
//! ```
//!
//! Generates a JSON Lines catalog of N records (about 400 bytes each) in a temporary folder and
//! runs each way in a fresh child process, which reports its peak RSS (`VmHWM`), three times
//! alternating. Measured (issue 20, debug build, 200,000 records, 60.6 MiB; AMD EPYC Zen 4, 2
//! shared cores): whole file + records 321.2 MiB, streamed 2.8 MiB (medians).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use ocular_search::import::Format;
use ocular_search::import::parse::parse;
use ocular_search::import::source::{RecordCursor, open_file};
use sha2::{Digest, Sha256};

/// Records per chunk, as `run_import` takes them (4 batches of 8).
const CHUNK: u64 = 32;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn generate(path: &Path, n: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..n {
        writeln!(
            out,
            r#"{{"id":"sku-{i:08}","title":"Product {i} in enamelled steel","description":"A sturdy everyday item, number {i}, made to last; dishwasher safe and sold in several colours.","category":"kitchen","price":{}.99,"currency":"EUR","image":"https://shop.example/img/{i}.jpg","attributes":{{"color":"blue","stock":{}}}}}"#,
            i % 500,
            i % 37
        )
        .expect("write");
    }
}

fn whole(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("read");
    let digest = Sha256::digest(&bytes);
    let text = std::str::from_utf8(&bytes).expect("utf8");
    let records = parse(text, Format::Jsonl, Path::new(".")).expect("parse");
    let ok = records.iter().filter(|r| r.parsed.is_ok()).count() as u64;
    std::hint::black_box(digest);
    ok
}

fn streamed(path: &Path) -> u64 {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).expect("open"), &mut hasher).expect("hash");
    std::hint::black_box(hasher.finalize());
    let total = open_file(path, Format::Jsonl).and_then(|r| r.count()).expect("count");
    let mut cursor = RecordCursor::open(path, Format::Jsonl).expect("open");
    let mut ok = 0;
    let mut first = 1;
    while first <= total {
        ok += cursor.take(first..first + CHUNK).expect("chunk").iter().filter(|r| r.parsed.is_ok()).count() as u64;
        first += CHUNK;
    }
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 {
        let path = Path::new(&args[3]);
        let ok = if args[2] == "whole" { whole(path) } else { streamed(path) };
        println!("{} {ok} {}", args[2], peak_rss_kib());
        return;
    }
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("catalog.jsonl");
    generate(&path, n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("catalog: {n} records, {:.1} MiB", size as f64 / (1 << 20) as f64);
    let exe = std::env::current_exe().expect("exe");
    // Alternating, three runs each; the median of each.
    let mut peaks = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        for (i, mode) in ["whole", "streamed"].iter().enumerate() {
            let out = Command::new(&exe).args(["child", mode]).arg(&path).output().expect("child");
            let line = String::from_utf8_lossy(&out.stdout).to_string();
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.get(1).and_then(|v| v.parse::<u64>().ok()), Some(n), "{mode}: {line}");
            peaks[i].push(fields[2].parse::<u64>().expect("peak"));
        }
    }
    for (i, mode) in ["whole file + all records (before)", "streamed (after)"].iter().enumerate() {
        peaks[i].sort_unstable();
        println!("{mode}: peak RSS median {:.1} MiB (runs: {:?} KiB)", peaks[i][1] as f64 / 1024.0, peaks[i]);
    }
    println!("ratio: {:.1}x", peaks[0][1] as f64 / peaks[1][1] as f64);
}
