//! One synthetic catalog for both sides of `bench/run.sh` (ocular and its Python equivalents).
//!
//! ```text
//! cargo run --release -p ocular-search --example bench_catalog -- --products=100000 --out=DIR
//! ```
//!
//! Embedding 100k real photos would take longer than the whole benchmark, so the catalog is the
//! 21 demo products' real vectors plus deterministic synthetic neighbours, generated exactly as
//! `bench_search` does (same seed and noise). It writes:
//! - `DIR/ocular/ocular.db`: an SQLite store that `ocular serve` opens with
//!   `OCULAR_DATA_DIR=DIR/ocular` (vectors tagged with the installed models' `name@version`, so
//!   no reindex is asked for);
//! - `DIR/python/{image,text,image_text}.f32`: the very same vectors, row-major little-endian
//!   f32 (1280, 384 and 384 columns), and `products.jsonl` (id, title, description, category,
//!   price) in the same order, for `bench/python/search_app.py`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_search::Embedders;
use ocular_search::embed::default::DefaultProvider;
use ocular_search::embed::{IMAGE, IMAGE_TEXT, TEXT};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, ProductWrite, Store};

use common::{Rng, normalized, root};

/// Appends vectors to a raw f32 file for numpy (`np.fromfile(..., "<f4")`).
struct Matrix(std::io::BufWriter<std::fs::File>);

impl Matrix {
    fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self(std::io::BufWriter::new(std::fs::File::create(path)?)))
    }

    fn push(&mut self, v: &[f32]) -> std::io::Result<()> {
        v.iter().try_for_each(|x| self.0.write_all(&x.to_le_bytes()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut products = 100_000usize;
    let mut out = PathBuf::from("bench/out/catalog");
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("--products", v)) => products = v.parse()?,
            Some(("--out", v)) => out = v.into(),
            _ => return Err(format!("unknown option {arg}").into()),
        }
    }
    let models = root().join("models");
    let registry = Registry::discover(RegistryOptions {
        models_dir: models.clone(),
        ort_library: runtime::locate(None, &models).ok(),
        session: SessionOptions::default(),
        enabled: Some(vec!["efficientnet-lite0".into(), "minilm".into()]),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let provider = Arc::new(DefaultProvider::from_registry(&registry).ok_or("efficientnet-lite0 and minilm")?);
    let emb = rt.block_on(ocular_search::EmbedderProvider::load(provider.as_ref()))?;

    std::fs::create_dir_all(out.join("ocular"))?;
    std::fs::create_dir_all(out.join("python"))?;
    let db = out.join("ocular/ocular.db");
    for suffix in ["", "-wal", "-shm"] {
        // A fresh catalog every time: an old one could hold another seed or size.
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = ocular_store::open(&ocular_store::Location::Sqlite(db), true)?;
    populate(&store, emb.as_ref(), products, &out.join("python"))?;
    println!("catalog: {products} products in {}", out.display());
    Ok(())
}

/// The demo photos' real vectors, then synthetic neighbours (as `bench_search`), written to
/// the store in batches of 1000 and to the numpy files in the same order.
fn populate(
    store: &Arc<dyn Store>,
    emb: &dyn Embedders,
    n: usize,
    py: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let spaces = emb.spaces().to_vec();
    let model = |space: &str| spaces.iter().find(|s| s.space == space).map(|s| s.model.clone()).unwrap_or_default();
    let demo = std::fs::read_to_string(root().join("demo/catalog.jsonl"))?;
    let mut seeds: Vec<(NewProduct, [Vec<f32>; 3])> = Vec::new();
    for line in demo.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let path = root().join("demo").join(v["image"].as_str().ok_or("image")?);
        let img = ocular_image::decode(&std::fs::read(path)?, &Default::default(), Some((224, 224)))?;
        let iv = emb.embed_images(&[&img.image])?.remove(0);
        let mut p = NewProduct::new(v["id"].as_str().ok_or("id")?, v["title"].as_str().ok_or("title")?);
        p.description = v["description"].as_str().unwrap_or_default().into();
        p.category = v["category"].as_str().map(str::to_string);
        p.price = v["price"].as_f64();
        let text = emb.embed_texts(&[&ocular_search::embed::product_text(&p.title, &p.description)])?.remove(0);
        seeds.push((p, [iv.image, text, iv.image_text]));
    }
    let mut files = [IMAGE, TEXT, IMAGE_TEXT].map(|s| Matrix::create(&py.join(format!("{s}.f32"))));
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(py.join("products.jsonl"))?);
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
        for (file, v) in files.iter_mut().zip(&vectors) {
            file.as_mut().map_err(|e| e.to_string())?.push(v)?;
        }
        let line = serde_json::json!({
            "id": product.id, "title": product.title, "description": product.description,
            "category": product.category, "price": product.price,
        });
        writeln!(jsonl, "{line}")?;
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
            for r in store.put_products(&writes)? {
                r?;
            }
            batch.clear();
        }
    }
    for file in files {
        file.map_err(|e| e.to_string())?.0.flush()?;
    }
    jsonl.flush()?;
    Ok(())
}
