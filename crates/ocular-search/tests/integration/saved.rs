//! A compact space kept across starts (module `persist`): the saved index opens only while the
//! store is unchanged and its files check, and whatever it opens or rebuilds answers exactly
//! like a fresh build from the store.

use std::path::Path;
use std::sync::Arc;

use ocular_search::embed::{IMAGE, SpaceModel};
use ocular_search::persist::IndexDir;
use ocular_search::space::{Precision, SpaceIndex, SpaceState};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, Store};

use crate::common;

const DIM: usize = 24;

fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIM)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Four loose clusters, so centroids matter.
            (x % 1000) as f32 / 1000.0 - 0.5 + if i % 4 == (seed % 4) as usize { 2.0 } else { 0.0 }
        })
        .collect()
}

fn model() -> SpaceModel {
    SpaceModel { space: IMAGE, model: "m@1".into(), dim: DIM }
}

/// Loads a compact space over `store`, kept in `dir` when given, and saves it.
fn load(store: &Arc<dyn Store>, dir: Option<&Path>) -> SpaceIndex {
    let mut space = SpaceIndex::new(model(), store.clone(), Precision::Compact, 2).unwrap();
    if let Some(dir) = dir {
        space = space.saved_in(Arc::new(IndexDir::lock(dir).unwrap().expect("the directory is free")));
    }
    space.begin_loading().unwrap();
    let state = space.load();
    assert!(matches!(state, SpaceState::Ready { .. }), "{state:?}");
    // What `Catalog::load` does next: check an opened index's vector files, save a rebuilt one.
    space.verify_saved().unwrap();
    space.save();
    space
}

/// Ids and scores of a few plain and filtered searches.
fn answers(space: &SpaceIndex) -> Vec<(u64, f32)> {
    let even = |id: u64| id.is_multiple_of(2);
    let mut out = Vec::new();
    for q in 0..8 {
        let query = vector(10_000 + q);
        out.extend(space.search(&query, 10, None).unwrap().into_iter().map(|h| (h.id, h.score)));
        out.extend(space.search(&query, 5, Some(&even)).unwrap().into_iter().map(|h| (h.id, h.score)));
    }
    out
}

fn fresh(store: &Arc<dyn Store>) -> Vec<(u64, f32)> {
    answers(&load(store, None))
}

#[test]
fn a_saved_index_opens_only_over_the_catalog_it_was_built_from() {
    let (store, tmp) = common::store();
    let dir = tmp.path().join("t.db.index");
    for i in 0..400u64 {
        let id = format!("p{i}");
        store.create_product(&NewProduct::new(&id, &id), &[Embedding::new(IMAGE, "m@1", vector(i))]).unwrap();
    }
    let built = load(&store, Some(&dir));
    assert!(!built.from_snapshot());
    assert_eq!(answers(&built), fresh(&store));
    drop(built);

    let opened = load(&store, Some(&dir));
    assert!(opened.from_snapshot(), "nothing changed, so the saved index opens");
    assert_eq!(answers(&opened), fresh(&store));
    // The directory is this process's while the space lives.
    assert!(IndexDir::lock(&dir).unwrap().is_none());
    drop(opened);

    // Another process changes the catalog behind the saved index: a new vector, a replaced
    // one, a deleted product.
    store.create_product(&NewProduct::new("new", "new"), &[Embedding::new(IMAGE, "m@1", vector(10_003))]).unwrap();
    let key = store.product_key("p7").unwrap().unwrap();
    store.set_embeddings(key, EmbeddingUpdate::Replace(&[Embedding::new(IMAGE, "m@1", vector(10_001))])).unwrap();
    store.delete_product("p9").unwrap();
    let rebuilt = load(&store, Some(&dir));
    assert!(!rebuilt.from_snapshot(), "the store moved on");
    assert_eq!(answers(&rebuilt), fresh(&store));
    drop(rebuilt);
    assert!(load(&store, Some(&dir)).from_snapshot(), "saved again after the rebuild");

    // Damaged files are rebuilt, never searched.
    let snapshot = dir.join("image.0.snap");
    let vectors = dir.join("image.1.f32");
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&Path, Damage); 3] = [
        (&snapshot, |b| b.truncate(b.len() - 9)),
        (&vectors, |b| b[4 * DIM * 3 + 2] ^= 0x40),
        (&vectors, |b| b.truncate(4 * DIM * 10)),
    ];
    for (path, damage) in damages {
        let mut bytes = std::fs::read(path).unwrap();
        damage(&mut bytes);
        std::fs::write(path, bytes).unwrap();
        let space = load(&store, Some(&dir));
        assert!(!space.from_snapshot(), "{} was damaged", path.display());
        assert_eq!(answers(&space), fresh(&store));
    }
}

#[test]
fn writes_while_a_saved_index_opens_are_not_lost() {
    let (store, tmp) = common::store();
    let dir = tmp.path().join("t.db.index");
    let mut keys = Vec::new();
    for i in 0..50u64 {
        let id = format!("p{i}");
        keys.push(
            store.create_product(&NewProduct::new(&id, &id), &[Embedding::new(IMAGE, "m@1", vector(i))]).unwrap().key,
        );
    }
    drop(load(&store, Some(&dir)));
    let space = SpaceIndex::new(model(), store.clone(), Precision::Compact, 2)
        .unwrap()
        .saved_in(Arc::new(IndexDir::lock(&dir).unwrap().unwrap()));
    space.begin_loading().unwrap();
    // Committed to the store, then told to the loading space, as the catalog's writes are.
    let moved = vector(20_000);
    store.set_embeddings(keys[3], EmbeddingUpdate::Replace(&[Embedding::new(IMAGE, "m@1", moved.clone())])).unwrap();
    space.apply(keys[3], Some(&moved)).unwrap();
    store.delete_product("p4").unwrap();
    space.apply(keys[4], None).unwrap();
    assert!(matches!(space.load(), SpaceState::Ready { vectors: 49, .. }));
    assert_eq!(space.search(&moved, 1, None).unwrap()[0].id, keys[3].0);
    assert!(space.search(&vector(4), 49, None).unwrap().iter().all(|h| h.id != keys[4].0));
}
