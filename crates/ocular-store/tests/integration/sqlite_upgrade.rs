//! Upgrading a populated SQLite database from schema version 7 to 8 (several photos per
//! product): migration 8 makes `product_embeddings` again under a (product, space, photo) key
//! and copies every vector as photo 0. Products and vectors written under version 7 must come
//! through intact, bit for bit, and stay searchable, and the new table must behave like one
//! made fresh (change feed, cascade on delete, further photos).

use std::ops::ControlFlow;

use ocular_store::sqlite::SqliteStore;
use ocular_store::{CatalogStore, ChangeFeed, Embedding, EmbeddingUpdate, ProductFilter, ProductKey, Store};
use rusqlite::params;

use crate::conformance::bits;

/// A distinct, non-trivial vector per (seed, dim): no two products' vectors alike.
fn vector(seed: u32, dim: usize) -> Vec<f32> {
    (0..dim).map(|i| ((seed as f32 + 1.0) * (i as f32 + 0.5)).sin() / (1.0 + i as f32)).collect()
}

fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Version 7, made by the released migrations 1 to 7, holding two products with photo and
/// text vectors and one without any, written as version 7 wrote them.
fn version_7(path: &std::path::Path) {
    let old = SqliteStore::open(path).unwrap();
    old.with(|c| {
        let tx = c.transaction()?;
        tx.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )?;
        for m in ocular_store::migrations::SQLITE.iter().filter(|m| m.version <= 7) {
            tx.execute_batch(m.sql)?;
            tx.execute("INSERT INTO schema_migrations VALUES (?1, ?2, 'then')", params![m.version, m.name])?;
        }
        let t = 1_700_000_000_000_000i64;
        tx.execute(
            "INSERT INTO product_images (sha256, content_type, size, created_at, bytes) VALUES (?1, 'image/png', 3, ?2, x'010203')",
            params!["a".repeat(64), t],
        )?;
        tx.execute(
            "INSERT INTO products (id, title, description, category, price, currency, image_url, image_sha256, attributes, created_at, updated_at)
             VALUES ('mug', 'Enamel camping mug', 'Holds hot coffee', 'kitchen', 12.5, 'EUR', 'https://shop.example/mug.png', ?1, '{\"colour\":\"blue\"}', ?2, ?2)",
            params!["a".repeat(64), t],
        )?;
        tx.execute(
            "INSERT INTO products (id, title, description, created_at, updated_at) VALUES ('tent', 'Two-person tent', 'Waterproof', ?1, ?1)",
            [t],
        )?;
        tx.execute("INSERT INTO products (id, title, created_at, updated_at) VALUES ('bare', 'No vectors', ?1, ?1)", [t])?;
        for (seq, seed) in [(1i64, 1u32), (2, 2)] {
            for (space, model, dim) in [("image", "effnet-lite0@1", 1280usize), ("text", "minilm@1", 384)] {
                let v = vector(seed * 10 + dim as u32, dim);
                tx.execute(
                    "INSERT INTO product_embeddings (product_seq, space, model, dim, created_at, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![seq, space, model, dim as i64, t, encode(&v)],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn upgrading_a_populated_version_7_database_keeps_products_and_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    version_7(&path);

    let s = SqliteStore::open(&path).unwrap();
    let cursor = s.change_cursor().unwrap();
    assert_eq!(s.migrate().unwrap(), [8]);
    assert_eq!(s.schema_version().unwrap(), 8);

    // The products, field for field, with no further photos.
    let mug = s.get_product("mug").unwrap().expect("mug");
    assert_eq!((mug.title.as_str(), mug.description.as_str()), ("Enamel camping mug", "Holds hot coffee"));
    assert_eq!(
        (mug.category.as_deref(), mug.price, mug.currency.as_deref()),
        (Some("kitchen"), Some(12.5), Some("EUR"))
    );
    assert_eq!(mug.image_url.as_deref(), Some("https://shop.example/mug.png"));
    assert_eq!(mug.image_sha256, Some("a".repeat(64)));
    assert_eq!(mug.attributes, serde_json::json!({"colour": "blue"}));
    assert!(mug.images.is_empty());
    let tent = s.get_product("tent").unwrap().expect("tent");
    assert_eq!(s.list_products(&ProductFilter::default(), 0, 10).unwrap().total, Some(3));

    // Every vector is photo 0 of its product, bit for bit, streamed and counted as before.
    for (p, seed) in [(&mug, 1u32), (&tent, 2)] {
        let back = s.embeddings_of(p.key).unwrap();
        let got: Vec<(&str, u16, &str)> = back.iter().map(|e| (e.space.as_str(), e.photo, e.model.as_str())).collect();
        assert_eq!(got, [("image", 0, "effnet-lite0@1"), ("text", 0, "minilm@1")], "{}", p.id);
        for e in &back {
            assert_eq!(bits(&e.vector), bits(&vector(seed * 10 + e.vector.len() as u32, e.vector.len())), "{}", p.id);
        }
    }
    let mut streamed = Vec::new();
    s.for_each_embedding("image", &mut |e| {
        streamed.push((e.key, e.photo, e.model.to_string(), bits(e.vector)));
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), [(mug.key, 0), (tent.key, 0)]);
    assert_eq!(streamed[1].3, bits(&vector(2 * 10 + 1280, 1280)));
    let census: Vec<(String, String, u64)> =
        s.embedding_models().unwrap().into_iter().map(|c| (c.space, c.model, c.count)).collect();
    assert_eq!(census, [("image".into(), "effnet-lite0@1".into(), 2), ("text".into(), "minilm@1".into(), 2)]);
    // Nothing to reindex for the configured models but the product that never had vectors.
    let needing = s.products_needing_embeddings("image", "effnet-lite0@1", None, 10).unwrap();
    assert_eq!(needing.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["bare"]);

    // Still found by text, and its photo is still kept from the sweep.
    let hits = s.search_text("camping mug", &ProductFilter::default(), 10).unwrap();
    assert_eq!(hits.first().map(|h| h.key), Some(mug.key), "{hits:?}");
    assert_eq!(s.purge_unreferenced_images(time::OffsetDateTime::now_utc() + time::Duration::days(1)).unwrap(), 0);
    assert!(s.get_image(&"a".repeat(64)).unwrap().is_some());
    // Copying the rows into the new table told no follower anything changed: the vectors are the same.
    assert!(s.changes_since(cursor, 10).unwrap().is_empty());

    // The new table works as one made fresh: a further photo's vector, the change feed's
    // triggers, and the cascade when a product goes.
    let photos: Vec<Embedding> = (0..2)
        .map(|photo| Embedding::new("image", "effnet-lite0@1", vector(90 + u32::from(photo), 1280)).of_photo(photo))
        .collect();
    s.set_embeddings(tent.key, EmbeddingUpdate::Merge(&photos)).unwrap();
    let back = s.embeddings_of(tent.key).unwrap();
    assert_eq!(
        back.iter().map(|e| (e.space.as_str(), e.photo)).collect::<Vec<_>>(),
        [("image", 0), ("image", 1), ("text", 0)]
    );
    let changed: Vec<ProductKey> = s.changes_since(cursor, 10).unwrap().into_iter().map(|c| c.key).collect();
    assert_eq!(changed, [tent.key]);
    s.delete_product("mug").unwrap();
    assert!(s.embeddings_of(mug.key).unwrap().is_empty());
    let count: i64 = s.with(|c| Ok(c.query_row("SELECT count(*) FROM product_embeddings", [], |r| r.get(0))?)).unwrap();
    assert_eq!(count, 3, "the tent's three vectors are all that is left");
}
