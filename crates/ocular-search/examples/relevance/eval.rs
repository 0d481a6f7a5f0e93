//! Judgements, metrics and one evaluation pass of the relevance benchmark.
//!
//! Metrics, per query, averaged over queries:
//! - nDCG@10 with gains `2^grade − 1` and the ideal order of every graded product in the
//!   catalog (Järvelin and Kekäläinen 2002);
//! - MRR: `1 / rank` of the first result with the best grade any product has for the query
//!   (0 if none in the top 10);
//! - recall@10: graded (≥ 1) products in the top 10 over `min(10, graded products)`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocular_search::fusion::{Fusion, Pool, fuse};
use ocular_search::import::{Format, ImportOptions, Progress, import_file};
use ocular_search::query::Timings;
use ocular_search::{Catalog, EmbedderProvider, Embedders, ImageLoader, SearchOptions};
use ocular_store::ProductKey;

/// The depth every metric looks at.
pub const K: usize = 10;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Judgement {
    /// `demo` or `hard`.
    pub catalog: String,
    /// A text query, or for photo queries the photo file in `models/photos`.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub photo: Option<String>,
    /// How the query photo is changed ([`super::hard::transform`]).
    #[serde(default)]
    pub transform: Option<String>,
    /// Grades by concept (photo stem) or product id: 2 = what was asked for, 1 = related.
    pub relevant: BTreeMap<String, u8>,
    /// The answer shows only in the photo (no title or description says it).
    #[serde(default)]
    pub photo_only: bool,
}

pub fn load_judgements(path: &Path) -> Vec<Judgement> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let all: Vec<Judgement> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for j in &all {
        assert!(j.text.is_some() != j.photo.is_some(), "one of text or photo: {j:?}");
        assert!(!j.relevant.is_empty() && j.relevant.values().all(|g| (1..=2).contains(g)), "grades 1-2: {j:?}");
    }
    all
}

/// Train (even positions among a catalog's text queries) or held out (odd).
pub fn is_train(judgements: &[Judgement], index: usize) -> bool {
    let j = &judgements[index];
    let position = judgements[..index].iter().filter(|o| o.catalog == j.catalog && o.text.is_some()).count();
    position % 2 == 0
}

/// Scores of one ranked list of (product id, concept).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    pub ndcg: f64,
    pub mrr: f64,
    pub recall: f64,
}

impl Scores {
    pub fn mean(all: &[Scores]) -> Scores {
        let n = all.len().max(1) as f64;
        Scores {
            ndcg: all.iter().map(|s| s.ndcg).sum::<f64>() / n,
            mrr: all.iter().map(|s| s.mrr).sum::<f64>() / n,
            recall: all.iter().map(|s| s.recall).sum::<f64>() / n,
        }
    }
}

pub fn grade(j: &Judgement, id: &str, concept: &str) -> u8 {
    j.relevant.get(id).copied().unwrap_or(0).max(j.relevant.get(concept).copied().unwrap_or(0))
}

/// Scores `ranked` (ids best first) against every product's grade in the catalog.
pub fn score(j: &Judgement, ranked: &[String], concepts: &HashMap<String, String>) -> Scores {
    let g = |id: &str| grade(j, id, concepts.get(id).map_or("", String::as_str));
    let mut ideal: Vec<u8> = concepts.keys().map(|id| g(id)).filter(|&x| x > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let dcg = |grades: &mut dyn Iterator<Item = u8>| -> f64 {
        grades.take(K).enumerate().map(|(i, x)| (2f64.powi(x as i32) - 1.0) / ((i + 2) as f64).log2()).sum()
    };
    let got: Vec<u8> = ranked.iter().take(K).map(|id| g(id)).collect();
    let idcg = dcg(&mut ideal.iter().copied());
    let best = ideal.first().copied().unwrap_or(0);
    let first = got.iter().position(|&x| x == best && best > 0);
    let found = got.iter().filter(|&&x| x > 0).count();
    Scores {
        ndcg: if idcg > 0.0 { dcg(&mut got.iter().copied()) / idcg } else { 0.0 },
        mrr: first.map_or(0.0, |i| 1.0 / (i + 1) as f64),
        recall: if ideal.is_empty() { 0.0 } else { found as f64 / ideal.len().min(K) as f64 },
    }
}

/// A catalog imported into a temporary SQLite store, indexes loaded.
pub struct Built {
    pub catalog: Catalog,
    /// Product id -> concept.
    pub concepts: HashMap<String, String>,
    /// Store key -> product id.
    pub ids: HashMap<u64, String>,
    _dir: tempfile::TempDir,
}

struct Silent;

impl Progress for Silent {
    fn update(&mut self, _: u64, _: u64) {}
}

/// Imports `jsonl` (products and their concepts) the way `ocular import` does.
pub fn build(
    provider: Arc<dyn EmbedderProvider>,
    emb: &dyn Embedders,
    jsonl: &Path,
    concepts: Vec<(String, String)>,
) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ocular_store::open(&ocular_store::Location::Sqlite(dir.path().join("r.db")), true).expect("store");
    let catalog = Catalog::new(store.clone(), provider, Default::default()).expect("catalog");
    let loader = ImageLoader::local(Default::default());
    let options = ImportOptions { format: Format::Jsonl, batch_size: 16, shared: false };
    let report = import_file(&catalog, emb, &loader, jsonl, &options, &mut Silent).expect("import");
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    catalog.load_now().expect("load");
    let concepts: HashMap<String, String> = concepts.into_iter().collect();
    let mut ids = HashMap::new();
    let keys: Vec<ProductKey> = store.product_keys(&Default::default()).expect("keys");
    for p in store.get_products_by_keys(&keys).expect("products") {
        assert!(concepts.contains_key(&p.id), "{} has a concept", p.id);
        ids.insert(p.key.0, p.id);
    }
    Built { catalog, concepts, ids, _dir: dir }
}

/// The demo catalog's products and concepts (the stem of each product's photo).
pub fn demo_concepts(root: &Path) -> Vec<(String, String)> {
    let demo = std::fs::read_to_string(root.join("demo/catalog.jsonl")).expect("demo catalog");
    demo.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("demo line");
            (v["id"].as_str().unwrap_or_default().to_string(), super::hard::concept(v["image"].as_str().unwrap_or("")))
        })
        .collect()
}

/// One query's candidates, gathered once and fused many times.
pub struct TextCase {
    pub index: usize,
    pub pool: Pool,
}

pub fn options() -> SearchOptions {
    SearchOptions::new(K, -1.0)
}

/// Every text query of `catalog`'s judgements, as pools.
pub fn text_cases(b: &Built, emb: &dyn Embedders, judgements: &[Judgement], catalog: &str) -> Vec<TextCase> {
    judgements
        .iter()
        .enumerate()
        .filter(|(_, j)| j.catalog == catalog)
        .filter_map(|(index, j)| {
            let text = j.text.as_deref()?;
            let pool = b.catalog.text_pool(emb, text, &options(), &mut Timings::default()).expect("text pool");
            Some(TextCase { index, pool })
        })
        .collect()
}

/// The ranked product ids of a pool under `fusion`.
pub fn ranked(b: &Built, pool: &Pool, fusion: &Fusion) -> Vec<String> {
    fuse(pool, fusion).iter().take(K).filter_map(|c| b.ids.get(&c.id).cloned()).collect()
}

/// The ranked product ids of a photo query.
pub fn photo_ranked(b: &Built, emb: &dyn Embedders, root: &Path, j: &Judgement) -> (Vec<String>, Duration) {
    let file = j.photo.as_deref().unwrap_or_default();
    let img = super::hard::transform(
        &super::hard::decode(&root.join("models/photos").join(file)),
        j.transform.as_deref().unwrap_or("none"),
    );
    let jpeg = ocular_image::encode_jpeg(&img, 90).expect("jpeg");
    let started = Instant::now();
    let results = b.catalog.search_image(emb, &jpeg, &options()).expect("photo search");
    let took = started.elapsed();
    (results.results.into_iter().map(|h| h.product.id).collect(), took)
}
