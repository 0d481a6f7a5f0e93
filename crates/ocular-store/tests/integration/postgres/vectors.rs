//! Vector search through pgvector against brute force: exact with a sequential scan, recall@10
//! ≥ 0.99 through HNSW; SQL filters and callback filters; the index's own contract; the upgrade
//! of an f32 index from before issue 17 to the halfvec one, with the plans that use it.

use std::collections::HashSet;

use ocular_index::{IndexError, VectorIndex};
use ocular_store::postgres::{PgIndexConfig, PgSearchMode, PgStore, PgVectorIndex};
use ocular_store::{
    AttributeCondition, AttributeRange, Embedding, EmbeddingUpdate, NewProduct, ProductFilter, ProductWrite, Store,
};

use super::{Schema, admin, url};
use crate::conformance::{product, vector};

const DIM: usize = 96;
const N: usize = 3000;
const MODEL: &str = "test-embedder@1";

/// Vectors around 40 centres, as embeddings of products in a few kinds cluster (uniformly
/// random directions are the worst case of every ANN graph and unlike any real catalog).
fn clustered(seed: u64) -> Vec<f32> {
    let center = vector(seed % 40 + 1_000_000, DIM);
    center.iter().zip(vector(seed + 1, DIM)).map(|(c, n)| c + 0.6 * n).collect()
}

fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    v.iter().map(|&x| f64::from(x) / norm).collect()
}

/// A catalog of `N` products in three categories with prices, each with one `DIM`-d vector.
struct Catalog {
    schema: Schema,
    store: std::sync::Arc<dyn Store>,
    /// (key, category, price, unit vector)
    rows: Vec<(u64, String, f64, Vec<f64>)>,
}

fn catalog(server: &str) -> Catalog {
    let schema = Schema::new(server);
    let store = schema.open(true);
    let mut rows = Vec::with_capacity(N);
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        let products: Vec<NewProduct> = chunk
            .iter()
            .map(|&i| {
                // 1 in 50 is "rare": a selective filter the graph walk must look past.
                let cat = if i % 50 == 0 {
                    "rare"
                } else if i % 2 == 0 {
                    "even"
                } else {
                    "odd"
                };
                let mut p = product(&format!("p{i}"), "Item", "", Some(cat), Some((i % 100) as f64));
                // The category and price again, as an array, a nested attribute and a field of
                // an array of objects: attribute filters inside the pgvector query select what
                // category and price select.
                p.attributes = serde_json::json!({
                    "tags": [cat, "all"],
                    "dims": {"w": i % 100},
                    "variants": [{"w": 1000}, {"w": i % 100}, "loose"],
                });
                p
            })
            .collect();
        let vectors: Vec<Vec<Embedding>> =
            chunk.iter().map(|&i| vec![Embedding::new("image", MODEL, clustered(i as u64))]).collect();
        let batch: Vec<ProductWrite<'_>> = products
            .iter()
            .zip(&vectors)
            .map(|(p, e)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(e) })
            .collect();
        for (out, e) in store.put_products(&batch).unwrap().into_iter().zip(&vectors) {
            let p = out.unwrap().product;
            rows.push((p.key.0, p.category.clone().unwrap(), p.price.unwrap(), unit(&e[0].vector)));
        }
    }
    Catalog { schema, store, rows }
}

impl Catalog {
    fn pg(&self) -> PgStore {
        self.store.as_postgres().unwrap().clone()
    }

    fn index(&self, mode: PgSearchMode, ef_search: u32) -> PgVectorIndex {
        let config = PgIndexConfig { mode, ef_search: Some(ef_search), ..Default::default() };
        PgVectorIndex::new(self.pg(), "image", MODEL, DIM, config).unwrap()
    }

    /// Brute-force top k (by f64 cosine, ties by key) among rows passing `keep`.
    fn brute(&self, q: &[f32], k: usize, keep: impl Fn(&(u64, String, f64, Vec<f64>)) -> bool) -> Vec<(u64, f64)> {
        let q = unit(q);
        let mut all: Vec<(u64, f64)> =
            self.rows.iter().filter(|r| keep(r)).map(|r| (r.0, r.3.iter().zip(&q).map(|(a, b)| a * b).sum())).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

fn queries() -> Vec<Vec<f32>> {
    (0..40).map(|i| clustered(N as u64 + 7 * i)).collect()
}

fn assert_exact(got: &[ocular_index::Hit], want: &[(u64, f64)]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(g.score) - w.1).abs() < 1e-5, "score {} vs {}", g.score, w.1);
    }
    let ids: Vec<u64> = got.iter().map(|h| h.id).collect();
    let want_ids: Vec<u64> = want.iter().map(|w| w.0).collect();
    assert_eq!(ids, want_ids);
}

fn recall(got: &[ocular_index::Hit], want: &[(u64, f64)]) -> (usize, usize) {
    let want: HashSet<u64> = want.iter().map(|w| w.0).collect();
    (got.iter().filter(|h| want.contains(&h.id)).count(), want.len())
}

#[test]
fn pgvector_search_equals_brute_force() {
    let Some(server) = url() else { return };
    let cat = catalog(&server);
    let exact = cat.index(PgSearchMode::Exact, 40);
    let hnsw = cat.index(PgSearchMode::Hnsw, 40);
    assert_eq!((exact.len(), exact.dim()), (N, DIM));
    assert!(hnsw.ensure_index().unwrap(), "built the first time");
    assert!(!hnsw.ensure_index().unwrap(), "found the second time");

    let (mut found, mut wanted) = (0, 0);
    for q in queries() {
        let want = cat.brute(&q, 10, |_| true);
        assert_exact(&exact.search(&q, 10, None).unwrap(), &want);
        let got = hnsw.search(&q, 10, None).unwrap();
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        let (f, w) = recall(&got, &want);
        (found, wanted) = (found + f, wanted + w);
    }
    let r = found as f64 / wanted as f64;
    eprintln!("HNSW recall@10 (ef_search 40) = {r:.4}");
    assert!(r >= 0.99, "HNSW recall@10 = {r:.4}");
}

#[test]
fn filters_in_sql_and_by_callback_agree_with_brute_force() {
    let Some(server) = url() else { return };
    let cat = catalog(&server);
    let exact = cat.index(PgSearchMode::Exact, 40);
    let hnsw = cat.index(PgSearchMode::Hnsw, 40);
    hnsw.ensure_index().unwrap();
    let rare = ProductFilter { category: Some("rare".into()), ..Default::default() };
    let cheap_odd = ProductFilter {
        category: Some("odd".into()),
        min_price: Some(10.0),
        max_price: Some(30.0),
        ..Default::default()
    };
    let attr_cheap_odd = ProductFilter {
        attributes: [
            ("tags".to_string(), AttributeCondition::Text("odd".into())),
            ("dims.w".to_string(), AttributeCondition::Range(AttributeRange { min: Some(10.0), max: Some(30.0) })),
        ]
        .into(),
        ..Default::default()
    };
    let mut variants_cheap_odd = attr_cheap_odd.clone();
    let w = variants_cheap_odd.attributes.remove("dims.w").unwrap();
    variants_cheap_odd.attributes.insert("variants.w".to_string(), w);
    let (mut found, mut wanted) = (0, 0);
    for q in queries().iter().take(20) {
        let cases = [
            (&rare, &rare),
            (&cheap_odd, &cheap_odd),
            (&attr_cheap_odd, &cheap_odd),
            (&variants_cheap_odd, &cheap_odd),
        ];
        for (f, same) in cases {
            let want = cat.brute(q, 10, |r| {
                Some(&r.1) == same.category.as_ref()
                    && same.min_price.is_none_or(|m| r.2 >= m)
                    && same.max_price.is_none_or(|m| r.2 <= m)
            });
            assert_exact(&exact.search_filtered(q, 10, f).unwrap(), &want);
            let got = hnsw.search_filtered(q, 10, f).unwrap();
            assert_eq!(got.len(), 10, "a 2% filter still fills k through the iterative scan");
            let (f, w) = recall(&got, &want);
            (found, wanted) = (found + f, wanted + w);
        }
        // The trait's callback filter: one id in seven passes.
        let keep = |id: u64| id.is_multiple_of(7);
        let want = cat.brute(q, 10, |r| r.0.is_multiple_of(7));
        assert_exact(&exact.search(q, 10, Some(&keep)).unwrap(), &want);
        let got = hnsw.search(q, 10, Some(&keep)).unwrap();
        assert!(got.len() == 10 && got.iter().all(|h| keep(h.id)));
    }
    let r = found as f64 / wanted as f64;
    eprintln!("filtered HNSW recall@10 (ef_search 40) = {r:.4}");
    assert!(r >= 0.95, "filtered HNSW recall@10 = {r:.4}");
    // No product passes: empty, not an error, in both modes.
    let none = ProductFilter { category: Some("none".into()), ..Default::default() };
    assert!(hnsw.search_filtered(&queries()[0], 10, &none).unwrap().is_empty());
    assert!(exact.search(&queries()[0], 10, Some(&|_| false)).unwrap().is_empty());
    drop(cat.schema);
}

#[test]
fn the_index_contract() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let store = schema.open(true);
    let pg = store.as_postgres().unwrap().clone();
    let index = PgVectorIndex::new(pg.clone(), "image", MODEL, 3, PgIndexConfig::default()).unwrap();
    assert!(index.search(&[1.0, 0.0, 0.0], 5, None).unwrap().is_empty(), "empty, with or without an index");
    assert!(matches!(index.search(&[1.0, 0.0], 5, None), Err(IndexError::DimensionMismatch { expected: 3, got: 2 })));
    assert!(matches!(index.search(&[0.0; 3], 5, None), Err(IndexError::ZeroVector)));
    assert!(matches!(index.search(&[f32::NAN, 0.0, 0.0], 5, None), Err(IndexError::NonFinite)));
    assert!(matches!(index.upsert(1, &[1.0]), Err(IndexError::DimensionMismatch { .. })));
    index.upsert(1, &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(index.len(), 0, "upsert writes nothing: the store's write is the index write");

    let v = |x: f32, y: f32| vec![Embedding::new("image", MODEL, vec![x, y, 0.0])];
    let a = store.create_product(&product("a", "A", "", None, None), &v(1.0, 0.0)).unwrap();
    let b = store.create_product(&product("b", "B", "", None, None), &v(3.0, 3.0)).unwrap();
    // Another model in the same space (a reindex half done) is never mixed in.
    let other = [Embedding::new("image", "test-embedder@2", vec![1.0, 0.0, 0.0])];
    store.create_product(&product("c", "C", "", None, None), &other).unwrap();
    // Another space with the same dimension neither.
    store
        .create_product(&product("d", "D", "", None, None), &[Embedding::new("text", MODEL, vec![1.0, 0.0, 0.0])])
        .unwrap();
    let threads: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(|| index.ensure_index().unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(threads.iter().filter(|b| **b).count(), 1, "two replicas: one builds, one finds it");

    let hits = index.search(&[2.0, 0.1, 0.0], 10, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [a.key.0, b.key.0]);
    assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.05, "cosine, not raw dot: {}", hits[1].score);
    assert_eq!(index.len(), 2);
    assert!(!index.remove(a.key.0), "remove writes nothing either");
    assert_eq!(index.memory_bytes(), 0);
    assert!(index.search(&[1.0, 0.0, 0.0], 0, None).unwrap().is_empty());
    assert!(PgVectorIndex::new(pg, "bad space", MODEL, 3, PgIndexConfig::default()).is_err());
}

/// The names of the indexes on `product_embeddings` in the schema `url` is confined to.
fn embedding_indexes(url: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        let rows = client
            .query(
                "SELECT indexrelid::regclass::text FROM pg_index
                 WHERE indrelid = 'product_embeddings'::regclass AND indisvalid ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    })
}

/// A database from before issue 17 (its vectors in an f32 HNSW index under the name it had
/// then) upgrades: `ensure_index` builds the halfvec index, drops the f32 one, and searches run
/// on the new index (the plan names it) with exact f32 scores (rescored, not 16-bit ones).
#[test]
fn an_f32_index_from_before_is_replaced_by_the_halfvec_one_that_searches_use() {
    let Some(server) = url() else { return };
    let cat = catalog(&server);
    let legacy = format!("product_embeddings_hnsw_image_{DIM}");
    // The statement `ensure_index` ran before issue 17, word for word.
    admin(
        &cat.schema.url,
        &format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {legacy} ON product_embeddings
             USING hnsw ((l2_normalize(vector)::vector({DIM})) vector_ip_ops) WITH (m = 16, ef_construction = 64)
             WHERE space = 'image' AND dim = {DIM}"
        ),
    );
    let hnsw = cat.index(PgSearchMode::Hnsw, 40);
    let half = hnsw.index_name();
    let all = ProductFilter::default();
    let rare = ProductFilter { category: Some("rare".into()), ..Default::default() };
    let q = &queries()[0];
    let before = hnsw.explain(q, 10, &all).unwrap();
    assert!(
        !before.contains(&legacy) && !before.contains(&half),
        "the f32 index cannot serve the halfvec ordering:\n{before}"
    );
    assert!(embedding_indexes(&cat.schema.url).contains(&legacy));

    assert!(hnsw.ensure_index().unwrap(), "the halfvec index is built beside the old one");
    let indexes = embedding_indexes(&cat.schema.url);
    assert!(indexes.contains(&half) && !indexes.contains(&legacy), "{indexes:?}");
    assert!(!hnsw.ensure_index().unwrap(), "found the second time");
    for filter in [&all, &rare] {
        let plan = hnsw.explain(q, 10, filter).unwrap();
        assert!(plan.contains(&format!("Index Scan using {half} on product_embeddings")), "{plan}");
        assert!(plan.contains(&format!("::halfvec({DIM}) <#>")), "ordered by the indexed expression:\n{plan}");
    }
    let exact = cat.index(PgSearchMode::Exact, 40);
    let plan = exact.explain(q, 10, &all).unwrap();
    assert!(!plan.contains(&half), "exact mode never uses the HNSW index:\n{plan}");

    // Rescored: every hit's score is its f32 cosine to 1e-5 (a halfvec score is off by 2e-5 on
    // average, up to 1e-4, at 96-d), and recall holds on the upgraded index.
    let cosine: std::collections::HashMap<u64, &Vec<f64>> = cat.rows.iter().map(|r| (r.0, &r.3)).collect();
    let (mut found, mut wanted) = (0, 0);
    for q in queries() {
        let unit_q = unit(&q);
        let got = hnsw.search(&q, 10, None).unwrap();
        for h in &got {
            let want: f64 = cosine[&h.id].iter().zip(&unit_q).map(|(a, b)| a * b).sum();
            assert!((f64::from(h.score) - want).abs() < 1e-5, "score {} vs f32 cosine {want}", h.score);
        }
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        let (f, w) = recall(&got, &cat.brute(&q, 10, |_| true));
        (found, wanted) = (found + f, wanted + w);
    }
    let r = found as f64 / wanted as f64;
    assert!(r >= 0.99, "recall@10 after the upgrade = {r:.4}");
}
