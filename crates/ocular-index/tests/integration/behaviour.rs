//! The `VectorIndex` contract: upsert, remove, filters, edge cases, errors, memory.

use ocular_index::{Fault, IndexError, QuantizedConfig, QuantizedIndex, Rescore, VectorIndex};

use crate::data::{Rng, brute_force, random_unit};

fn ids(index: &QuantizedIndex, query: &[f32], k: usize, filter: Option<&dyn Fn(u64) -> bool>) -> Vec<u64> {
    index.search(query, k, filter).unwrap().iter().map(|h| h.id).collect()
}

fn reference_ids(data: &[(u64, Vec<f32>)], query: &[f32], k: usize, filter: Option<&dyn Fn(u64) -> bool>) -> Vec<u64> {
    brute_force(data, query, k, filter).iter().map(|r| r.0).collect()
}

fn random_index(n: usize, dim: usize, seed: u64) -> (QuantizedIndex, Vec<(u64, Vec<f32>)>) {
    let mut rng = Rng::new(seed);
    let index = QuantizedIndex::new(QuantizedConfig::new(dim).rescore(Rescore::F32)).unwrap();
    let data: Vec<(u64, Vec<f32>)> = (0..n as u64).map(|id| (id, random_unit(&mut rng, dim))).collect();
    for (id, v) in &data {
        index.upsert(*id, v).unwrap();
    }
    (index, data)
}

#[test]
fn upsert_replaces_the_previous_vector() {
    let (index, mut data) = random_index(500, 32, 10);
    let mut rng = Rng::new(11);
    let query = random_unit(&mut rng, 32);
    // Move id 7 to exactly the query's direction (scaled: the index normalises).
    let moved: Vec<f32> = query.iter().map(|x| x * 3.0).collect();
    index.upsert(7, &moved).unwrap();
    data[7].1 = moved;
    assert_eq!(index.len(), 500);
    let hits = index.search(&query, 5, None).unwrap();
    assert_eq!(hits[0].id, 7);
    assert!((hits[0].score - 1.0).abs() < 1e-6, "{hits:?}");
    assert_eq!(ids(&index, &query, 20, None), reference_ids(&data, &query, 20, None));
}

#[test]
fn remove_deletes_and_keeps_the_rest_searchable() {
    // More than one 4096-row segment, so removals move rows across segments.
    let (index, mut data) = random_index(9_000, 16, 12);
    let mut rng = Rng::new(13);
    for _ in 0..3_000 {
        let pos = (rng.next_u64() % data.len() as u64) as usize;
        let (id, _) = data.swap_remove(pos);
        assert!(index.remove(id));
        assert!(!index.remove(id), "second removal of {id}");
    }
    assert_eq!(index.len(), 6_000);
    for _ in 0..5 {
        let query = random_unit(&mut rng, 16);
        assert_eq!(ids(&index, &query, 30, None), reference_ids(&data, &query, 30, None));
    }
    // Remove everything: memory is released and search is empty.
    let full = index.memory_bytes();
    for (id, _) in &data {
        assert!(index.remove(*id));
    }
    assert!(index.is_empty());
    assert!(index.memory_bytes() < full / 10);
    assert!(index.search(&data[0].1, 5, None).unwrap().is_empty());
}

#[test]
fn filters_still_fill_k_when_enough_pass() {
    let (index, data) = random_index(5_000, 64, 14);
    let mut rng = Rng::new(15);
    let one_in_ten = |id: u64| id % 10 == 3;
    let three: &dyn Fn(u64) -> bool = &|id: u64| id < 3;
    let none = |_: u64| false;
    for _ in 0..5 {
        let query = random_unit(&mut rng, 64);
        let found = ids(&index, &query, 20, Some(&one_in_ten));
        assert_eq!(found.len(), 20);
        assert!(found.iter().all(|&id| one_in_ten(id)));
        assert_eq!(found, reference_ids(&data, &query, 20, Some(&one_in_ten)));
        // Fewer pass than k: all of them, in order.
        assert_eq!(ids(&index, &query, 20, Some(three)), reference_ids(&data, &query, 20, Some(three)));
        assert_eq!(ids(&index, &query, 20, Some(three)).len(), 3);
        assert!(ids(&index, &query, 20, Some(&none)).is_empty());
    }
}

#[test]
fn empty_index_k_zero_and_k_beyond_len() {
    let index = QuantizedIndex::new(QuantizedConfig::new(8)).unwrap();
    assert!(index.is_empty());
    assert!(index.search(&[1.0; 8], 10, None).unwrap().is_empty());

    let (index, data) = random_index(7, 8, 16);
    let query = random_unit(&mut Rng::new(17), 8);
    assert!(index.search(&query, 0, None).unwrap().is_empty());
    let all = ids(&index, &query, usize::MAX, None);
    assert_eq!(all, reference_ids(&data, &query, 100, None));
    assert_eq!(all.len(), 7);
}

#[test]
fn equal_scores_rank_by_smaller_id() {
    let index = QuantizedIndex::new(QuantizedConfig::new(4)).unwrap();
    for id in [50, 3, 17, 9] {
        index.upsert(id, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    }
    index.upsert(1, &[-1.0, 0.0, 0.0, 0.0]).unwrap();
    assert_eq!(ids(&index, &[1.0, 2.0, 3.0, 4.0], 5, None), vec![3, 9, 17, 50, 1]);
}

#[test]
fn invalid_input_is_rejected_with_input_fault() {
    let index = QuantizedIndex::new(QuantizedConfig::new(4)).unwrap();
    let err = index.upsert(1, &[1.0, 2.0, 3.0]).unwrap_err();
    assert!(matches!(err, IndexError::DimensionMismatch { expected: 4, got: 3 }), "{err}");
    assert_eq!(err.fault(), Fault::Input);
    assert!(matches!(index.search(&[1.0; 5], 3, None), Err(IndexError::DimensionMismatch { .. })));
    assert!(matches!(index.upsert(1, &[0.0; 4]), Err(IndexError::ZeroVector)));
    assert!(matches!(index.upsert(1, &[f32::INFINITY, 0.0, 0.0, 0.0]), Err(IndexError::NonFinite)));
    assert!(matches!(index.search(&[f32::NAN; 4], 3, None), Err(IndexError::NonFinite)));
    assert!(index.is_empty(), "failed upserts must not store anything");

    assert!(matches!(QuantizedIndex::new(QuantizedConfig::new(0)), Err(IndexError::InvalidConfig(_))));
}

#[test]
fn memory_per_vector_matches_the_documented_layout() {
    // (rescore, expected bytes per vector at d = 512 beyond the int8 codes)
    for (rescore, full_copy) in [(Rescore::Off, 0), (Rescore::F16, 1024), (Rescore::F32, 2048)] {
        let index = QuantizedIndex::new(QuantizedConfig::new(512).rescore(rescore.clone())).unwrap();
        let mut rng = Rng::new(18);
        let n = 8_192; // two full segments: no growth slack
        for id in 0..n {
            index.upsert(id, &random_unit(&mut rng, 512)).unwrap();
        }
        let per_vector = index.memory_bytes() as f64 / n as f64;
        // codes + full copy + id (8) + scale (4) + id map (16–40 with its load factor)
        let floor = (512 + full_copy + 12 + 16) as f64;
        assert!(per_vector >= floor && per_vector <= floor + 30.0, "{rescore:?}: {per_vector} bytes per vector");
    }
}

#[test]
fn trait_object_is_usable_behind_an_arc() {
    let index: std::sync::Arc<dyn VectorIndex> =
        std::sync::Arc::new(QuantizedIndex::new(QuantizedConfig::new(3)).unwrap());
    index.upsert(1, &[1.0, 0.0, 0.0]).unwrap();
    assert_eq!(index.dim(), 3);
    assert_eq!(index.len(), 1);
    assert_eq!(index.search(&[1.0, 0.0, 0.0], 1, None).unwrap()[0].id, 1);
}
