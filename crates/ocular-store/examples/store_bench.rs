//! Storage benchmark: how fast the SQLite store ingests products with their embeddings, and how
//! fast the in-memory index can be reloaded from it at start-up.
//!
//! ```text
//! cargo run --release -p ocular-store --example store_bench -- [INGEST] [STREAM] [DIR]
//! ```
//! - INGEST (10000): products written with a 1280-d image and a 384-d text embedding each, in
//!   one transaction per batch of 64 (`put_products`), as `ocular import` writes them;
//! - STREAM (100000): 1280-d vectors then streamed back with `for_each_embedding`, the start-up
//!   load of the vector index (the store is topped up to this many image vectors first);
//! - DIR: where the database goes (a temporary directory by default; its disk matters).
//!
//! Titles and descriptions are drawn from a Zipf-distributed vocabulary (see `Words`), so text
//! search meets common and rare words as in a real catalog. Also reported: a few read paths the
//! server uses per request. Numbers are wall-clock on the
//! machine it runs on; run it twice, the first run also measures a cold page cache.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ocular_store::{
    Embedding, EmbeddingUpdate, Location, NewProduct, ProductFilter, ProductKey, ProductWrite, Store, StoreError,
};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const BATCH: usize = 64;

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// The most frequent words of the synthetic catalog, by rank; ranks beyond are `w<rank>`.
const WORDS: [&str; 32] = [
    "a", "with", "for", "and", "the", "in", "of", "black", "white", "set", "new", "blue", "red", "steel", "cotton",
    "large", "small", "wood", "glass", "leather", "cup", "shoe", "lamp", "table", "bag", "shirt", "scarf", "kettle",
    "oak", "wool", "coffee", "mug",
];
const VOCABULARY: usize = 20_000;

/// Word frequencies follow Zipf's law (s = 1) over a 20k-word vocabulary, as text does: "a" is
/// in most products, "red" in about one in ten, most words in a handful.
struct Words {
    cumulative: Vec<f64>,
    state: u64,
}

impl Words {
    fn new() -> Self {
        let mut sum = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|r| {
                sum += 1.0 / r as f64;
                sum
            })
            .collect();
        Words { cumulative, state: 0x2545_F491_4F6C_DD1D }
    }

    fn next(&mut self) -> String {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let total = self.cumulative[VOCABULARY - 1];
        let x = (self.state >> 11) as f64 / (1u64 << 53) as f64 * total;
        let rank = self.cumulative.partition_point(|&c| c < x);
        WORDS.get(rank).map_or_else(|| format!("w{rank}"), |w| w.to_string())
    }

    fn phrase(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(" ")
    }
}

fn product(i: u64, words: &mut Words) -> NewProduct {
    NewProduct {
        description: words.phrase(12),
        category: Some(format!("cat{}", i % 20)),
        price: Some((i % 500) as f64 + 0.99),
        currency: Some("EUR".into()),
        image_url: Some(format!("https://shop.example/img/{i}.jpg")),
        attributes: serde_json::json!({"sku": i, "stock": i % 7}),
        ..NewProduct::new(format!("sku-{i}"), words.phrase(3))
    }
}

/// Writes products `from..to`, with a text vector when `with_text`; returns the elapsed time.
fn ingest(store: &dyn Store, words: &mut Words, from: u64, to: u64, with_text: bool) -> Result<Duration, StoreError> {
    let started = Instant::now();
    let ids: Vec<u64> = (from..to).collect();
    for chunk in ids.chunks(BATCH) {
        let products: Vec<NewProduct> = chunk.iter().map(|&i| product(i, words)).collect();
        let embeddings: Vec<Vec<Embedding>> = chunk
            .iter()
            .map(|&i| {
                let mut e = vec![Embedding::new("image", "effnet-lite0@1", vector(i, 1280))];
                if with_text {
                    e.push(Embedding::new("text", "minilm@1", vector(i ^ 0xABCD, 384)));
                }
                e
            })
            .collect();
        let batch: Vec<ProductWrite<'_>> = products
            .iter()
            .zip(&embeddings)
            .map(|(p, e)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(e) })
            .collect();
        for r in store.put_products(&batch)? {
            r?;
        }
    }
    Ok(started.elapsed())
}

fn per_call<T>(n: u32, mut f: impl FnMut() -> Result<T, StoreError>) -> Result<Duration, StoreError> {
    let started = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(started.elapsed() / n)
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ingest_n: u64 = args.first().map_or(Ok(10_000), |a| a.parse())?;
    let stream_n: u64 = args.get(1).map_or(Ok(100_000), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args.get(2).map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let store = ocular_store::open(&Location::Sqlite(path.clone()), true)?;
    let store = store.as_ref();

    let mut words = Words::new();
    let took = ingest(store, &mut words, 0, ingest_n, true)?;
    println!(
        "ingest: {ingest_n} products (1280-d + 384-d each, batches of {BATCH}) in {:.2} s = {:.0} products/s",
        took.as_secs_f64(),
        ingest_n as f64 / took.as_secs_f64()
    );

    if stream_n > ingest_n {
        let took = ingest(store, &mut words, ingest_n, stream_n, false)?;
        println!(
            "top-up: {} more products (1280-d only) in {:.1} s = {:.0} products/s",
            stream_n - ingest_n,
            took.as_secs_f64(),
            (stream_n - ingest_n) as f64 / took.as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join("bench.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!("database: {:.0} MiB on disk (file + WAL)", size as f64 / (1 << 20) as f64);

    for round in ["first", "second"] {
        let started = Instant::now();
        let mut checksum = 0f64;
        let n = store.for_each_embedding("image", &mut |e| {
            checksum += f64::from(e.vector[0]) + e.key.0 as f64;
            ControlFlow::Continue(())
        })?;
        let took = started.elapsed();
        println!(
            "stream ({round}): {n} × 1280-d in {:.0} ms = {:.0} vectors/s, {:.2} GB/s of f32 (checksum {checksum:.3})",
            took.as_secs_f64() * 1e3,
            n as f64 / took.as_secs_f64(),
            (n * 1280 * 4) as f64 / took.as_secs_f64() / 1e9
        );
    }

    let all = ProductFilter::default();
    let cat = ProductFilter { category: Some("cat3".into()), max_price: Some(100.0), ..Default::default() };
    for query in ["red leather shoe", "a cup of coffee", "w4242 w9001", "black white set"] {
        let matched = store.search_text(query, &all, 1000)?.len();
        let t = per_call(50, || store.search_text(query, &all, 50))?;
        let f = per_call(50, || store.search_text(query, &cat, 50))?;
        println!(
            "search_text {query:?} (>= {matched} matches): top 50 in {:.2} ms, with category + price filter {:.2} ms",
            t.as_secs_f64() * 1e3,
            f.as_secs_f64() * 1e3
        );
    }
    let keys: Vec<ProductKey> = (1..=10).map(|k| ProductKey(k * 997)).collect();
    let t = per_call(1000, || store.get_products_by_keys(&keys))?;
    println!("get_products_by_keys, 10 hits: {:.3} ms", t.as_secs_f64() * 1e3);
    let t = per_call(20, || store.product_keys(&cat))?;
    println!("product_keys(category + price), allow-list for vector search: {:.2} ms", t.as_secs_f64() * 1e3);
    let t = per_call(200, || store.list_products(&cat, 40, 20))?;
    println!("list_products page (with total): {:.2} ms", t.as_secs_f64() * 1e3);
    let t = per_call(20, || store.embedding_models())?;
    println!("embedding_models census: {:.2} ms", t.as_secs_f64() * 1e3);
    Ok(())
}
