//! Vector search over 100k products: pgvector (HNSW, `ef_search` 40 and 100, and an exact scan)
//! against ocular-index's in-memory `QuantizedIndex`, on the same vectors, on this machine.
//!
//! ```text
//! scripts/pg-test-server.sh start
//! cargo run --release -p ocular-store --example pg_bench -- [--rows=100000] [--dim=512]
//!     [--data=clustered|random|latent] [--queries=200] [--ef=40,100] [--fresh]
//! ```
//! The database comes from `OCULAR_TEST_DATABASE_URL` or the test server. Products go into the
//! schema `bench_<rows>_<dim>_<data>` through the store (`put_products`, as an import writes
//! them) and are kept for the next run unless `--fresh`. `clustered` and `random` are the
//! vectors of `ocular-index`'s own benchmark; `latent` is closer to real embeddings (see `Kind`).
//!
//! Reported: ingest rate, HNSW build time, table and index sizes, the start-up stream of every
//! vector into the in-memory index, then p50/p95 latency of top-10 searches without a filter
//! and with a 10 % category filter, recall@10 against an exact reference (`QuantizedIndex` with
//! f32 rescoring, which is exact) and the score lost where results are not the exact ones.
//! pgvector times are a full round trip over loopback, as a replica sees them; the in-memory
//! index needs none.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ocular_index::{Hit, QuantizedConfig, QuantizedIndex, Rescore, VectorIndex};
use ocular_store::postgres::{PgIndexConfig, PgOptions, PgSearchMode, PgStore, PgVectorIndex};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, ProductFilter, ProductWrite, Store};

#[path = "../../ocular-index/tests/integration/data.rs"]
mod data;

use data::{Clusters, Rng, random_unit};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One way of searching: a query and an optional filter to the top-k hits.
type SearchFn<'a> = dyn Fn(&[f32], Option<&ProductFilter>) -> Vec<Hit> + 'a;

const K: usize = 10;
const MODEL: &str = "bench@1";
const CATEGORIES: usize = 10;

/// How the vectors are drawn.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `ocular-index`'s benchmark data: 50 centres with isotropic noise in every dimension, so
    /// the ~2000 products of a cluster are all nearly equidistant from a query (concentration
    /// of measure): the worst case for any graph index, and for exact top-10 membership.
    Clustered,
    /// Uniformly random directions: also worst case.
    Random,
    /// Closer to real embeddings, whose variation spans few directions: 50 clusters in a
    /// 16-dimensional latent space, mapped into `dim` dimensions by a random linear map, plus
    /// a little isotropic noise.
    Latent,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Clustered => "clustered",
            Kind::Random => "random",
            Kind::Latent => "latent",
        }
    }
}

struct Options {
    rows: usize,
    dim: usize,
    kind: Kind,
    queries: usize,
    ef: Vec<u32>,
    fresh: bool,
}

fn options() -> Options {
    let mut o =
        Options { rows: 100_000, dim: 512, kind: Kind::Clustered, queries: 200, ef: vec![40, 100], fresh: false };
    for arg in std::env::args().skip(1) {
        let (key, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        let number = || value.parse::<usize>().unwrap_or_else(|_| panic!("{arg}: not a number"));
        match key {
            "--rows" => o.rows = number(),
            "--dim" => o.dim = number(),
            "--queries" => o.queries = number(),
            "--data" => {
                o.kind = match value {
                    "clustered" => Kind::Clustered,
                    "random" => Kind::Random,
                    "latent" => Kind::Latent,
                    _ => panic!("{arg}: clustered, random or latent"),
                }
            }
            "--ef" => {
                o.ef = value.split(',').map(|v| v.parse().unwrap_or_else(|_| panic!("{arg}: not a number"))).collect()
            }
            "--fresh" => o.fresh = true,
            _ => panic!("unknown argument {arg}"),
        }
    }
    o
}

fn server_url() -> BoxResult<String> {
    if let Ok(url) = std::env::var("OCULAR_TEST_DATABASE_URL") {
        return Ok(url);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-test-server.sh");
    let out = std::process::Command::new("bash").arg(script).arg("url").output()?;
    if !out.status.success() {
        return Err("no PostgreSQL: run scripts/pg-test-server.sh start or set OCULAR_TEST_DATABASE_URL".into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The i-th vector of the data set; `clustered` and `random` are the sequences `ocular-index`'s
/// benchmark builds.
struct Data {
    rng: Rng,
    clusters: Clusters,
    kind: Kind,
    dim: usize,
    /// `Latent` only: the `dim × LATENT` map and the latent cluster centres.
    map: Vec<Vec<f64>>,
    centres: Vec<Vec<f64>>,
}

const LATENT: usize = 16;

impl Data {
    fn new(seed: u64, dim: usize, kind: Kind) -> Self {
        let mut rng = Rng::new(seed);
        let clusters = Clusters::new(&mut rng, 50, dim, 0.6);
        // The map and centres depend on a fixed seed, so data and queries share them.
        let mut fixed = Rng::new(7);
        let map = (0..dim).map(|_| (0..LATENT).map(|_| fixed.normal()).collect()).collect();
        let centres = (0..50).map(|_| (0..LATENT).map(|_| 2.0 * fixed.normal()).collect()).collect();
        Data { rng, clusters, kind, dim, map, centres }
    }

    fn next(&mut self) -> Vec<f32> {
        match self.kind {
            Kind::Clustered => self.clusters.sample(&mut self.rng),
            Kind::Random => random_unit(&mut self.rng, self.dim),
            Kind::Latent => {
                let c = &self.centres[(self.rng.next_u64() % 50) as usize];
                let z: Vec<f64> = c.iter().map(|m| m + self.rng.normal()).collect();
                let scale = (LATENT as f64).sqrt();
                (0..self.dim)
                    .map(|i| {
                        let x: f64 = self.map[i].iter().zip(&z).map(|(a, b)| a * b).sum();
                        (x / scale + 0.3 * self.rng.normal()) as f32
                    })
                    .collect()
            }
        }
    }
}

fn main() -> BoxResult<()> {
    let o = options();
    let server = server_url()?;
    let schema = format!("bench_{}_{}_{}", o.rows, o.dim, o.kind.name());
    // A large `maintenance_work_mem` lets the HNSW build keep its graph in memory.
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{schema}%2Cpublic%20-c%20maintenance_work_mem%3D2GB");
    setup_schema(&server, &schema, o.fresh)?;
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(PgStore::connect(&url, &PgOptions::default())?);
    store.migrate()?;
    let pg = store.as_postgres().ok_or("not PostgreSQL")?.clone();
    println!(
        "PostgreSQL + pgvector vs QuantizedIndex: {} x {} ({} data), top-{K}, schema {schema}",
        o.rows,
        o.dim,
        o.kind.name()
    );

    let stored = store.product_keys(&ProductFilter::default())?.len();
    if stored != o.rows {
        ingest(&*store, &o)?;
    } else {
        println!("  reusing {stored} stored products (--fresh to reload)");
    }

    let hnsw = |ef_search| {
        PgVectorIndex::new(
            pg.clone(),
            "image",
            MODEL,
            o.dim,
            PgIndexConfig { ef_search: Some(ef_search), ..Default::default() },
        )
    };
    let started = Instant::now();
    if hnsw(40)?.ensure_index()? {
        println!("  HNSW build (m 16, ef_construction 64): {:.1} s", started.elapsed().as_secs_f64());
    }
    sizes(&url)?;

    // The start-up load an embedded replica does, from this database.
    let fast = QuantizedIndex::new(QuantizedConfig::new(o.dim))?;
    let exact = QuantizedIndex::new(QuantizedConfig::new(o.dim).rescore(Rescore::F32))?;
    let started = Instant::now();
    let mut failed = None;
    store.for_each_embedding("image", &mut |e| match fast
        .upsert(e.key.0, e.vector)
        .and_then(|()| exact.upsert(e.key.0, e.vector))
    {
        Ok(()) => ControlFlow::Continue(()),
        Err(err) => {
            failed = Some(err);
            ControlFlow::Break(())
        }
    })?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    println!(
        "  stream into QuantizedIndex: {:.1} s; its memory {:.0} B/vector",
        started.elapsed().as_secs_f64(),
        fast.memory_bytes() as f64 / o.rows as f64
    );

    let mut data = Data::new(4, o.dim, o.kind);
    let queries: Vec<Vec<f32>> = (0..o.queries).map(|_| data.next()).collect();
    let cat = ProductFilter { category: Some("c3".into()), ..Default::default() };
    let allowed: HashSet<u64> = store.product_keys(&cat)?.into_iter().map(|k| k.0).collect();
    let in_cat = |id: u64| allowed.contains(&id);
    let reference: Vec<Vec<Hit>> = queries.iter().map(|q| hits(exact.search(q, K, None))).collect();
    let reference_cat: Vec<Vec<Hit>> = queries.iter().map(|q| hits(exact.search(q, K, Some(&in_cat)))).collect();

    println!(
        "\n  {:<34} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7}",
        "", "p50 ms", "p95 ms", "recall", "Δscore", "10% p50", "p95", "recall", "Δscore"
    );
    let report = |name: &str, search: &SearchFn<'_>, n: usize| {
        let all = measure(&queries[..n], &reference, |q| search(q, None));
        let cat = measure(&queries[..n], &reference_cat, |q| search(q, Some(&cat)));
        println!(
            "  {name:<34} {:>7.3} {:>7.3} {:>7.4} {:>7.4} | {:>7.3} {:>7.3} {:>7.4} {:>7.4}",
            ms(all.p50),
            ms(all.p95),
            all.recall,
            all.score_loss,
            ms(cat.p50),
            ms(cat.p95),
            cat.recall,
            cat.score_loss
        );
    };
    for &ef in &o.ef {
        let index = hnsw(ef)?;
        report(&format!("pgvector HNSW, ef_search {ef}"), &|q, f| pg_search(&index, q, f), o.queries);
    }
    let seq = PgVectorIndex::new(
        pg.clone(),
        "image",
        MODEL,
        o.dim,
        PgIndexConfig { mode: PgSearchMode::Exact, ..Default::default() },
    )?;
    report("pgvector exact scan", &|q, f| pg_search(&seq, q, f), o.queries.min(20));
    report(
        "QuantizedIndex (int8 + f16, 1 core)",
        &|q, f| hits(fast.search(q, K, f.map(|_| &in_cat as &dyn Fn(u64) -> bool))),
        o.queries,
    );
    println!("\n  filtered QuantizedIndex times exclude fetching the allow-list (product_keys), done per request");
    Ok(())
}

fn pg_search(index: &PgVectorIndex, q: &[f32], f: Option<&ProductFilter>) -> Vec<Hit> {
    hits(index.search_filtered(q, K, f.unwrap_or(&ProductFilter::default())))
}

fn hits<E: std::fmt::Debug>(hits: Result<Vec<Hit>, E>) -> Vec<Hit> {
    hits.unwrap_or_else(|e| panic!("search failed: {e:?}"))
}

struct Measured {
    p50: Duration,
    p95: Duration,
    /// Mean fraction of the exact top-k found.
    recall: f64,
    /// Mean over queries of (mean exact top-k score − mean returned score): how much worse
    /// the results are, in cosine, when they are not the exact ones.
    score_loss: f64,
}

/// Latency after a warm-up, recall and score loss against `reference`.
fn measure(queries: &[Vec<f32>], reference: &[Vec<Hit>], search: impl Fn(&[f32]) -> Vec<Hit>) -> Measured {
    for q in queries.iter().take(10) {
        std::hint::black_box(search(q));
    }
    let mean = |h: &[Hit]| h.iter().map(|h| f64::from(h.score)).sum::<f64>() / h.len().max(1) as f64;
    let (mut times, mut found, mut loss) = (Vec::with_capacity(queries.len()), 0, 0.0);
    for (q, want) in queries.iter().zip(reference) {
        let start = Instant::now();
        let got = search(q);
        times.push(start.elapsed());
        found += got.iter().filter(|h| want.iter().any(|w| w.id == h.id)).count();
        loss += mean(want) - mean(&got);
    }
    times.sort_unstable();
    let total: usize = reference[..queries.len()].iter().map(Vec::len).sum();
    Measured {
        p50: times[times.len() / 2],
        p95: times[times.len() * 95 / 100],
        recall: found as f64 / total.max(1) as f64,
        score_loss: loss / queries.len() as f64,
    }
}

fn ingest(store: &dyn Store, o: &Options) -> BoxResult<()> {
    let mut data = Data::new(42, o.dim, o.kind);
    let started = Instant::now();
    let mut i = 0;
    while i < o.rows {
        let n = 500.min(o.rows - i);
        let products: Vec<NewProduct> = (i..i + n)
            .map(|j| NewProduct {
                category: Some(format!("c{}", j % CATEGORIES)),
                price: Some((j % 500) as f64),
                ..NewProduct::new(format!("p{j}"), format!("Product {j}"))
            })
            .collect();
        let vectors: Vec<[Embedding; 1]> = (0..n).map(|_| [Embedding::new("image", MODEL, data.next())]).collect();
        let batch: Vec<ProductWrite<'_>> = products
            .iter()
            .zip(&vectors)
            .map(|(p, v)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(v) })
            .collect();
        for out in store.put_products(&batch)? {
            out?;
        }
        i += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("  ingest through the store: {} products in {secs:.1} s ({:.0}/s)", o.rows, o.rows as f64 / secs);
    Ok(())
}

/// Creates the schema (dropping it first with `fresh`).
fn setup_schema(server: &str, schema: &str, fresh: bool) -> BoxResult<()> {
    let drop = if fresh { format!("DROP SCHEMA IF EXISTS {schema} CASCADE;") } else { String::new() };
    run_sql(server, &format!("SET client_min_messages = warning; {drop} CREATE SCHEMA IF NOT EXISTS {schema}"))?;
    Ok(())
}

/// Table and HNSW index sizes of the schema on `url`.
fn sizes(url: &str) -> BoxResult<()> {
    let out = run_sql(
        url,
        "SELECT pg_size_pretty(pg_table_size('product_embeddings')) || ' vectors table, ' ||
                coalesce((SELECT pg_size_pretty(sum(pg_relation_size(indexrelid))) FROM pg_index i
                          JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'product_embeddings_hnsw%'
                          AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())), 'no')
                || ' HNSW index'",
    )?;
    println!("  on disk: {out}");
    Ok(())
}

/// Runs SQL on a one-off connection; returns the first column of the last row, if any.
fn run_sql(url: &str, sql: &str) -> BoxResult<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(conn);
        let mut last = String::new();
        for msg in client.simple_query(sql).await? {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = msg {
                last = row.get(0).unwrap_or_default().to_string();
            }
        }
        drop(client);
        let _ = driver.await;
        Ok(last)
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
