//! Search and ingest benchmark with the real models: medians, never assertions.
//!
//! ```text
//! cargo run --release -p ocular-search --example bench_search                 # 100k products
//! cargo run --release -p ocular-search --example bench_search -- --products=20000 --precision=f16   # or store, compact (default)
//! ```
//!
//! 1. A catalog of `--products` (100k) in a temporary SQLite store: the 21 demo photos' real
//!    vectors, and synthetic products around them (each real vector plus non-negative noise,
//!    like pooled CNN features; texts as random unit vectors), so many products are near
//!    neighbours of each other: harder for the index than uniform random data.
//! 2. Index load time and RSS growth (process RSS after minus before loading the indexes).
//! 3. Search p50/p95 for a 640×480 JPEG query (`motorcycle_right` resized; its twin
//!    `motorcycle_left` is in the catalog and must come first), end to end through
//!    `Catalog::search_image`, with per-stage medians; then the hybrid text search.
//! 4. Ingest: `--ingest` (200) 640×480 JPEG files imported from a JSON Lines file, photos/s.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocular_image::image::imageops::{self, FilterType};
use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_search::embed::default::DefaultProvider;
use ocular_search::embed::{IMAGE, IMAGE_TEXT, TEXT};
use ocular_search::import::{Format, ImportOptions, Progress, import_file};
use ocular_search::{Catalog, CatalogOptions, Embedders, ImageLoader, Precision, SearchOptions, SearchResults};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, ProductWrite, Store};

use common::{Rng, normalized, root};

struct Options {
    products: usize,
    queries: usize,
    ingest: usize,
    precision: Precision,
}

fn parse_options() -> Options {
    let mut o = Options { products: 100_000, queries: 200, ingest: 200, precision: Precision::default() };
    for arg in std::env::args().skip(1) {
        let (k, v) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        let n = || v.parse::<usize>().unwrap_or_else(|_| panic!("{k} needs a number"));
        match k {
            "--products" => o.products = n(),
            "--queries" => o.queries = n(),
            "--ingest" => o.ingest = n(),
            "--precision" => {
                o.precision = match v {
                    "f16" => Precision::F16,
                    "store" => Precision::Store,
                    "compact" => Precision::Compact,
                    _ => panic!("--precision is compact, store or f16"),
                }
            }
            _ => panic!("unknown option {arg}"),
        }
    }
    o
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let opts = parse_options();
    let models = root().join("models");
    let registry = Registry::discover(RegistryOptions {
        models_dir: models.clone(),
        ort_library: runtime::locate(None, &models).ok(),
        session: SessionOptions::default(),
        enabled: Some(vec!["efficientnet-lite0".into(), "minilm".into()]),
    })
    .expect("registry (run `ocular models fetch`)");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let provider = Arc::new(DefaultProvider::from_registry(&registry).expect("efficientnet-lite0 and minilm"));
    let emb = rt.block_on(ocular_search::EmbedderProvider::load(provider.as_ref())).expect("models load");
    let started = Instant::now();
    emb.warm_up().expect("ConSE prompts");
    println!(
        "threads: {} cores; models loaded, ConSE prompts in {:.2} s, RSS {:.0} MB",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        started.elapsed().as_secs_f64(),
        rss_mb()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = ocular_store::open(&ocular_store::Location::Sqlite(dir.path().join("bench.db")), true).expect("store");
    let started = Instant::now();
    populate(&store, emb.as_ref(), opts.products);
    println!("catalog: {} products written in {:.1} s", opts.products, started.elapsed().as_secs_f64());

    let options = CatalogOptions { precision: opts.precision, ..CatalogOptions::default() };
    let catalog = Catalog::new(store.clone(), provider.clone(), options).expect("catalog");
    let before = rss_mb();
    let started = Instant::now();
    let status = catalog.load_now().expect("load");
    let load_s = started.elapsed().as_secs_f64();
    let after = rss_mb();
    let bytes: usize = status.iter().map(|s| s.memory_bytes).sum();
    println!(
        "index ({:?} rescoring): loaded in {load_s:.2} s; RSS +{:.0} MB ({:.0} MB per 100k products); memory_bytes {:.0} MB = {} B/product",
        opts.precision,
        after - before,
        (after - before) * 100_000.0 / opts.products as f64,
        bytes as f64 / 1e6,
        bytes / opts.products.max(1)
    );

    let query = jpeg_query();
    let first = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(10, 0.0)).expect("search");
    println!(
        "query: 640x480 JPEG ({} bytes); first result {:?} ({:.3})",
        query.len(),
        first.results[0].product.id,
        first.results[0].score
    );
    // Facets make a photo search rank at least FACET_DEPTH products; without them it ranks the page.
    let bare = SearchOptions { facets: false, ..SearchOptions::new(10, 0.0) };
    for round in 0..3 {
        bench(&format!("image search, facets (round {round})"), opts.queries, || {
            catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(10, 0.0))
        });
        bench(&format!("image search, no facets (round {round})"), opts.queries, || {
            catalog.search_image(emb.as_ref(), &query, &bare)
        });
    }
    bench("text search (hybrid)", opts.queries, || {
        catalog.search_text(emb.as_ref(), "a red motorcycle", &SearchOptions::new(10, 0.0))
    });
    drop(catalog);
    ingest(emb.as_ref(), provider, opts.ingest);
}

/// The demo photos' real vectors, then synthetic neighbours, written in batches of 1000.
fn populate(store: &Arc<dyn Store>, emb: &dyn Embedders, n: usize) {
    let spaces = emb.spaces().to_vec();
    let model = |space: &str| spaces.iter().find(|s| s.space == space).map(|s| s.model.clone()).unwrap_or_default();
    let demo = std::fs::read_to_string(root().join("demo/catalog.jsonl")).expect("demo catalog");
    let mut seeds: Vec<(NewProduct, [Vec<f32>; 3])> = Vec::new();
    for line in demo.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("demo line");
        let path = root().join("demo").join(v["image"].as_str().expect("image"));
        let img = ocular_image::decode(&std::fs::read(path).expect("photo"), &Default::default(), Some((224, 224)))
            .expect("decode");
        let iv = emb.embed_images(&[&img.image]).expect("embed").remove(0);
        let mut p = NewProduct::new(v["id"].as_str().expect("id"), v["title"].as_str().expect("title"));
        p.description = v["description"].as_str().unwrap_or_default().into();
        p.category = v["category"].as_str().map(str::to_string);
        p.price = v["price"].as_f64();
        let text =
            emb.embed_texts(&[&ocular_search::embed::product_text(&p.title, &p.description)]).expect("text").remove(0);
        seeds.push((p, [iv.image, text, iv.image_text]));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut batch: Vec<(NewProduct, Vec<Embedding>)> = Vec::with_capacity(1000);
    for i in 0..n {
        let (product, vectors) = if i < seeds.len() {
            let (p, v) = &seeds[i];
            (p.clone(), v.clone())
        } else {
            let (seed, v) = &seeds[i % seeds.len()];
            let mut p = NewProduct::new(format!("synthetic-{i}"), format!("{} variant {i}", seed.title));
            p.category.clone_from(&seed.category);
            p.price = Some(1.0 + (i % 500) as f64);
            let image: Vec<f32> = v[0].iter().map(|x| (x + 0.03 * rng.normal()).max(0.0)).collect();
            let text: Vec<f32> = (0..v[1].len()).map(|_| rng.normal()).collect();
            let image_text: Vec<f32> = v[2].iter().map(|x| x + 0.05 * rng.normal()).collect();
            (p, [normalized(image), normalized(text), normalized(image_text)])
        };
        let [image, text, image_text] = vectors;
        let embeddings = vec![
            Embedding::new(IMAGE, model(IMAGE), image),
            Embedding::new(TEXT, model(TEXT), text),
            Embedding::new(IMAGE_TEXT, model(IMAGE_TEXT), image_text),
        ];
        batch.push((product, embeddings));
        if batch.len() == 1000 || i + 1 == n {
            let writes: Vec<ProductWrite<'_>> = batch
                .iter()
                .map(|(p, e)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(e) })
                .collect();
            for r in store.put_products(&writes).expect("write batch") {
                r.expect("valid product");
            }
            batch.clear();
        }
    }
}

/// `motorcycle_right` as a 640×480 JPEG, as a phone upload would be.
fn jpeg_query() -> Vec<u8> {
    let bytes = std::fs::read(root().join("models/photos/motorcycle_right.png")).expect("photo");
    let img = ocular_image::decode(&bytes, &Default::default(), None).expect("decode").image;
    let resized = imageops::resize(&img, 640, 480, FilterType::Triangle);
    ocular_image::encode_jpeg(&resized, 90).expect("jpeg")
}

fn bench(name: &str, n: usize, mut run: impl FnMut() -> Result<SearchResults, ocular_search::SearchError>) {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        run().expect("search");
    }
    let mut totals = Vec::with_capacity(n);
    let mut stages: std::collections::BTreeMap<&'static str, Vec<f64>> = Default::default();
    for _ in 0..n {
        let started = Instant::now();
        let r = run().expect("search");
        totals.push(started.elapsed());
        for (stage, ms) in r.timings_ms.0 {
            stages.entry(stage).or_default().push(ms);
        }
    }
    totals.sort();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let breakdown: Vec<String> =
        stages.iter_mut().filter(|(k, _)| **k != "total").map(|(k, v)| format!("{k} {:.2}", median(v))).collect();
    println!(
        "{name}: p50 {:.2} ms, p95 {:.2} ms over {n} queries; stage medians (ms): {}",
        percentile(&totals, 0.5),
        percentile(&totals, 0.95),
        breakdown.join(", ")
    );
}

struct Silent;

impl Progress for Silent {
    fn update(&mut self, _: u64, _: u64) {}
}

/// Imports `n` 640×480 JPEG files through `import_file`, in batches of 8 and of 32.
fn ingest(emb: &dyn Embedders, provider: Arc<DefaultProvider>, n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos: Vec<PathBuf> = std::fs::read_dir(root().join("models/photos"))
        .expect("photos")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    let mut lines = String::new();
    for i in 0..n {
        let bytes = std::fs::read(&photos[i % photos.len()]).expect("photo");
        let img = ocular_image::decode(&bytes, &Default::default(), None).expect("decode").image;
        let mut resized = imageops::resize(&img, 640, 480, FilterType::Triangle);
        // Distinct bytes per file, like distinct products.
        resized.get_pixel_mut((i % 640) as u32, 0).0[0] ^= 1 + (i / 640) as u8;
        let name = format!("p{i}.jpg");
        std::fs::write(dir.path().join(&name), ocular_image::encode_jpeg(&resized, 90).expect("jpeg")).expect("write");
        lines.push_str(&format!("{{\"id\":\"p{i}\",\"title\":\"Product {i}\",\"description\":\"A photo of a thing\",\"image\":\"{name}\"}}\n"));
    }
    stage_costs(emb, dir.path(), n.min(64));
    let file = dir.path().join("catalog.jsonl");
    std::fs::write(&file, lines).expect("write");
    for batch_size in [8, 32] {
        let store =
            ocular_store::open(&ocular_store::Location::Sqlite(dir.path().join(format!("i{batch_size}.db"))), true)
                .expect("store");
        let catalog = Catalog::new(store, provider.clone(), CatalogOptions::default()).expect("catalog");
        let loader = ImageLoader::local(Default::default());
        let options = ImportOptions { format: Format::Jsonl, batch_size, shared: false };
        let started = Instant::now();
        let report = import_file(&catalog, emb, &loader, &file, &options, &mut Silent).expect("import");
        let secs = started.elapsed().as_secs_f64();
        println!(
            "ingest (batch {batch_size}): {} JPEG 640x480 files in {secs:.2} s = {:.0} products/s end to end ({:.0} images/s in decode+embed+write)",
            report.written,
            report.written as f64 / secs,
            report.images_per_s
        );
    }
}

/// Where ingest time goes, per photo: decode, image model, text model (batches of 32).
fn stage_costs(emb: &dyn Embedders, dir: &Path, n: usize) {
    let files: Vec<Vec<u8>> = (0..n).map(|i| std::fs::read(dir.join(format!("p{i}.jpg"))).expect("file")).collect();
    let started = Instant::now();
    let decoded: Vec<_> = files
        .iter()
        .map(|b| ocular_image::decode(b, &Default::default(), Some(emb.image_input())).expect("decode").image)
        .collect();
    let decode = started.elapsed().as_secs_f64() * 1e3 / n as f64;
    let started = Instant::now();
    for chunk in decoded.chunks(32) {
        let refs: Vec<_> = chunk.iter().collect();
        emb.embed_images(&refs).expect("embed");
    }
    let image = started.elapsed().as_secs_f64() * 1e3 / n as f64;
    let texts: Vec<String> = (0..n).map(|i| format!("Product {i}. A photo of a thing")).collect();
    let started = Instant::now();
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        emb.embed_texts(&refs).expect("embed");
    }
    let text = started.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!("ingest stages per photo: decode {decode:.2} ms, image model {image:.2} ms, text model {text:.2} ms");
}
