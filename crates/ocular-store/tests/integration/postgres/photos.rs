//! A photo search on PostgreSQL matches a product by its best photo (the largest cosine over
//! its photos' rows), says which photo it was, and keeps `k` products when their photos crowd
//! the nearest rows: the same answer, through HNSW and through an exact scan.

use ocular_index::Hit;
use ocular_store::postgres::{PgIndexConfig, PgSearchMode, PgVectorIndex};
use ocular_store::{Embedding, NewProduct};

use super::{Schema, url};
use crate::conformance::{product, vector};

const DIM: usize = 32;
const MODEL: &str = "test-embedder@1";

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[test]
fn a_product_is_found_by_its_best_photo() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let store = schema.open(true);
    let pg = store.as_postgres().expect("a PostgreSQL store").clone();
    let query = unit(&vector(1, DIM));
    // "many": eight photos, all near the query (they fill the nearest rows); "best": a far
    // main photo and a further photo equal to the query; the rest: one photo each, in between.
    let near = |seed: u64, how: f32| -> Vec<f32> {
        let noise = vector(seed, DIM);
        unit(&query.iter().zip(&noise).map(|(q, n)| q + how * n).collect::<Vec<f32>>())
    };
    let many: Vec<Embedding> =
        (0..8).map(|p| Embedding::new("image", MODEL, near(100 + p, 0.3)).of_photo(p as u16)).collect();
    let best =
        vec![Embedding::new("image", MODEL, vector(7, DIM)), Embedding::new("image", MODEL, query.clone()).of_photo(1)];
    let url = |u: &str| ocular_store::ProductImage { url: Some(u.into()), sha256: None };
    let with = |id: &str, n: usize| NewProduct {
        images: (1..n).map(|i| url(&format!("https://shop.example/{id}/{i}.jpg"))).collect(),
        ..product(id, "Item", "", None, None)
    };
    store.create_product(&with("many", 8), &many).unwrap();
    let best_key = store.create_product(&with("best", 2), &best).unwrap().key.0;
    for i in 0..20u64 {
        let e = [Embedding::new("image", MODEL, near(500 + i, 0.8))];
        store.create_product(&product(&format!("one{i}"), "Item", "", None, None), &e).unwrap();
    }

    for mode in [PgSearchMode::Hnsw, PgSearchMode::Exact] {
        let index =
            PgVectorIndex::new(pg.clone(), "image", MODEL, DIM, PgIndexConfig { mode, ..PgIndexConfig::default() })
                .unwrap();
        index.ensure_index().unwrap();
        let hits = index.search_photos(&query, 3, None).unwrap();
        assert_eq!(hits.len(), 3, "{mode:?}: three products, though one product's photos fill the nearest rows");
        let keys: Vec<u64> = hits.iter().map(|(h, _)| h.id).collect();
        assert_eq!(keys.iter().collect::<std::collections::HashSet<_>>().len(), 3, "{mode:?}: each product once");
        let (Hit { id, score }, photo) = hits[0];
        assert_eq!((id, photo), (best_key, 1), "{mode:?}: found by its further photo");
        assert!(score > 0.999, "{mode:?}: the best photo's cosine, {score}");
        // A filter on product keys applies to products, not to rows.
        let others = index.search_photos(&query, 2, Some(&|k: u64| k != best_key)).unwrap();
        assert!(others.iter().all(|(h, _)| h.id != best_key) && others.len() == 2, "{mode:?}: {others:?}");
    }
}
