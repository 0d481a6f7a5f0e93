//! Readers and a writer on one shared index: no panics, and every answer is well-formed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ocular_index::{QuantizedConfig, QuantizedIndex, VectorIndex};

use crate::data::{Rng, random_unit};

#[test]
fn concurrent_readers_and_writer() {
    let dim = 48;
    let index = Arc::new(QuantizedIndex::new(QuantizedConfig::new(dim)).unwrap());
    let mut rng = Rng::new(20);
    for id in 0..2_000 {
        index.upsert(id, &random_unit(&mut rng, dim)).unwrap();
    }
    let writer_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for reader in 0..3u64 {
            let index = Arc::clone(&index);
            let writer_done = &writer_done;
            s.spawn(move || {
                let mut rng = Rng::new(100 + reader);
                let even = |id: u64| id.is_multiple_of(2);
                let mut searches = 0u32;
                // At least 50 searches, and keep going while the writer runs (bounded).
                while searches < 50 || (!writer_done.load(Ordering::Relaxed) && searches < 5_000) {
                    let query = random_unit(&mut rng, dim);
                    let filter: Option<&dyn Fn(u64) -> bool> =
                        if searches.is_multiple_of(2) { Some(&even) } else { None };
                    let hits = index.search(&query, 10, filter).unwrap();
                    assert!(!hits.is_empty() && hits.len() <= 10);
                    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{hits:?}");
                    let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
                    if filter.is_some() {
                        assert!(ids.iter().all(|&id| even(id)));
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), hits.len(), "duplicate ids");
                    searches += 1;
                }
            });
        }
        let index = Arc::clone(&index);
        let writer_done = &writer_done;
        s.spawn(move || {
            let mut rng = Rng::new(30);
            for i in 0..3_000u64 {
                let id = rng.next_u64() % 3_000;
                if i.is_multiple_of(3) {
                    index.remove(id);
                } else {
                    index.upsert(id, &random_unit(&mut rng, dim)).unwrap();
                }
            }
            writer_done.store(true, Ordering::Relaxed);
        });
    });
    assert!(index.len() > 1_000);
}
