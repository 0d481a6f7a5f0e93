//! The index/store race at start-up: a write made while the index streams in from an older
//! snapshot must win over the snapshot.

use ocular_search::embed::{IMAGE, SpaceModel};
use ocular_search::space::{Precision, SpaceIndex, SpaceState};
use ocular_store::{Embedding, NewProduct, ProductKey};

use crate::common;

fn unit(dim: usize, hot: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[hot] = 1.0;
    v
}

#[test]
fn writes_during_loading_beat_the_loaders_snapshot() {
    let (store, _dir) = common::store();
    let model = SpaceModel { space: IMAGE, model: "m@1".into(), dim: 8 };
    let mut keys = Vec::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let p = store.create_product(&NewProduct::new(*id, *id), &[Embedding::new(IMAGE, "m@1", unit(8, i))]).unwrap();
        keys.push(p.key);
    }
    let space = SpaceIndex::new(model, store.clone(), Precision::F16, 2).unwrap();
    assert!(matches!(space.search(&unit(8, 0), 1, None), Err(ocular_search::SearchError::IndexLoading { .. })));
    space.begin_loading().unwrap();
    // While loading: product a gets a new vector, c is deleted. The store still holds the old
    // ones (as a snapshot taken before these writes would).
    space.apply(keys[0], Some(&unit(8, 5))).unwrap();
    space.apply(keys[2], None).unwrap();
    let state = space.load();
    assert!(matches!(state, SpaceState::Ready { vectors: 2, .. }), "{state:?}");
    let hits = space.search(&unit(8, 5), 3, None).unwrap();
    assert_eq!((hits[0].id, hits[0].score), (keys[0].0, 1.0), "the write, not the snapshot");
    let all: Vec<u64> = space.search(&unit(8, 2), 3, None).unwrap().iter().map(|h| h.id).collect();
    assert!(!all.contains(&keys[2].0), "the deletion, not the snapshot");
    // After loading, writes go straight in.
    space.apply(ProductKey(keys[1].0), Some(&unit(8, 7))).unwrap();
    assert_eq!(space.search(&unit(8, 7), 1, None).unwrap()[0].id, keys[1].0);
}
