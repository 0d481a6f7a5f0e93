//! The compact index: recall against an exact f32 scan on the bench-like and the clustered
//! catalogs (the statistical guarantee of `compact/mod.rs`, held at a small size), filters
//! applied inside the scan, and the bookkeeping of upserts, removals and ids.

use ocular_index::{CompactConfig, CompactIndex, Fault, IndexError, VectorIndex, train_centroids};

use crate::catalogs::{Catalog, ExactTopK, dot};

struct Measured {
    recall: f64,
    filtered_recall: f64,
}

/// Builds an index over `rows` rows of `catalog` (centroids from the first 512) and compares
/// `queries` searches, plain and filtered, with the exact top 10.
fn measure(mut catalog: Catalog, rows: usize, queries: usize, sample_from: Catalog) -> Measured {
    let dim = catalog.dim;
    let mut sample_source = sample_from;
    let sample: Vec<Vec<f32>> = (0..512.min(rows)).map(|i| sample_source.row(i)).collect();
    let index = CompactIndex::new(CompactConfig::new(dim).centroids(train_centroids(dim, &sample, 16, 5))).unwrap();
    let qs: Vec<Vec<f32>> = (0..queries).map(|i| catalog.query(i)).collect();
    let filter = |id: u64| id % 7 == 2;
    let mut exact: Vec<(ExactTopK, ExactTopK)> = qs.iter().map(|_| (ExactTopK::new(10), ExactTopK::new(10))).collect();
    for i in 0..rows {
        let v = catalog.row(i);
        // Sparse ids, not in storage order.
        let id = (i as u64) * 3 + 1;
        index.upsert(id, &v).unwrap();
        for (q, (all, some)) in qs.iter().zip(exact.iter_mut()) {
            let s = dot(q, &v);
            all.push(s, id);
            if filter(id) {
                some.push(s, id);
            }
        }
    }
    let (mut hit, mut fhit, mut total) = (0usize, 0usize, 0usize);
    for (q, (all, some)) in qs.iter().zip(&exact) {
        let hits = index.search(q, 10, None).unwrap();
        assert_eq!(hits.len(), 10);
        hit += all.ids().iter().filter(|id| hits.iter().any(|h| h.id == **id)).count();
        // Scores are cosines of the f32 copies.
        for h in &hits {
            let want = all.ids().iter().position(|id| *id == h.id).map(|p| all.scores()[p]);
            if let Some(want) = want {
                assert!((h.score - want).abs() < 1e-5, "{} vs {want}", h.score);
            }
        }
        let filtered = index.search(q, 10, Some(&filter)).unwrap();
        assert_eq!(filtered.len(), 10, "the filter runs inside the scan, so a page still fills");
        assert!(filtered.iter().all(|h| filter(h.id)));
        fhit += some.ids().iter().filter(|id| filtered.iter().any(|h| h.id == **id)).count();
        total += 10;
    }
    Measured { recall: hit as f64 / total as f64, filtered_recall: fhit as f64 / total as f64 }
}

#[test]
fn recall_at_10_holds_on_the_bench_catalog() {
    for (name, make) in [
        ("image", (|| Catalog::bench_image(1280, 11)) as fn() -> Catalog),
        ("image_text", || Catalog::bench_image_text(384, 12)),
        ("text", || Catalog::bench_text(384, 13)),
    ] {
        let m = measure(make(), 2000, 16, make());
        assert!(m.recall >= 0.98, "{name}: recall@10 {}", m.recall);
        assert!(m.filtered_recall >= 0.98, "{name}: filtered recall@10 {}", m.filtered_recall);
    }
}

#[test]
fn recall_at_10_holds_on_clusters_of_near_duplicates() {
    for dim in [384, 1280] {
        let make = || Catalog::clustered(dim, 2000, 50, 21);
        let m = measure(make(), 2000, 16, make());
        assert!(m.recall >= 0.98, "{dim}-d: recall@10 {}", m.recall);
        assert!(m.filtered_recall >= 0.98, "{dim}-d: filtered recall@10 {}", m.filtered_recall);
    }
}

fn small_index() -> CompactIndex {
    CompactIndex::new(CompactConfig::new(16)).unwrap()
}

fn axis(i: usize) -> Vec<f32> {
    (0..16).map(|j| if j == i { 1.0 } else { 0.01 * j as f32 }).collect()
}

#[test]
fn upserts_replace_and_removals_move_the_last_row() {
    let index = small_index();
    for id in 0..10u64 {
        index.upsert(id, &axis(id as usize)).unwrap();
    }
    assert_eq!(index.len(), 10);
    // Replace: id 3 now points where 7 does.
    index.upsert(3, &axis(7)).unwrap();
    assert_eq!(index.len(), 10);
    let hits = index.search(&axis(7), 2, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [3, 7]);
    // Remove a row from the middle: the last row (9) moves into its slot and stays findable.
    assert!(index.remove(2));
    assert!(!index.remove(2));
    assert_eq!(index.len(), 9);
    assert_eq!(index.search(&axis(9), 1, None).unwrap()[0].id, 9);
    assert!(index.search(&axis(2), 9, None).unwrap().iter().all(|h| h.id != 2));
    // Remove everything; the index answers empty.
    for id in 0..10 {
        index.remove(id);
    }
    assert!(index.is_empty());
    assert!(index.search(&axis(1), 5, None).unwrap().is_empty());
}

#[test]
fn bad_input_is_refused_as_the_callers_fault() {
    let index = small_index();
    let big = index.upsert(1 << 32, &axis(0)).unwrap_err();
    assert!(matches!(big, IndexError::IdOutOfRange { .. }) && big.fault() == Fault::Input);
    assert_eq!(index.upsert(1, &[1.0; 3]).unwrap_err().fault(), Fault::Input);
    assert_eq!(index.search(&[0.0; 16], 3, None).unwrap_err().fault(), Fault::Input);
    assert!(CompactIndex::new(CompactConfig::new(16).bits(100)).is_err());
    assert!(CompactIndex::new(CompactConfig::new(16).centroids(vec![vec![0.0; 3]])).is_err());
}

#[test]
fn a_shards_ids_share_a_residue_and_take_a_dense_table() {
    let index = CompactIndex::new(CompactConfig::new(16).id_stride(4)).unwrap();
    for id in (2..4000u64).step_by(4) {
        index.upsert(id, &axis((id % 16) as usize)).unwrap();
    }
    assert_eq!(index.len(), 1000);
    // An id of another residue that lands on a used table entry is refused, not mixed up.
    assert!(index.upsert(3, &axis(0)).is_err());
    assert!(!index.remove(3));
    assert_eq!(index.search(&axis(6), 1, None).unwrap()[0].id % 16, 6);
}

/// A distinct direction per `i`, away from every [`axis`].
fn far_row(i: u64) -> Vec<f32> {
    (0..16u64).map(|j| ((i * 7 + j * j * 3) % 11) as f32 - 5.0 + if j == i % 16 { 9.0 } else { 0.0 }).collect()
}

#[test]
fn ids_above_the_dense_limit_take_a_small_map_not_the_table() {
    // A shard (stride 2) of a catalog of keys 0..3000, and further photos at `key | p << 28`
    // (ocular-search's photo ids): the table must not stretch to 2^32 / 2 cells. 1500 + 50
    // rows stay inside two 1024-row segments, so no new segment adds to the growth measured.
    let config = || CompactConfig::new(16).id_stride(2);
    let (plain, index) = (CompactIndex::new(config()).unwrap(), CompactIndex::new(config()).unwrap());
    for id in (0..3000u64).step_by(2) {
        plain.upsert(id, &axis((id % 16) as usize)).unwrap();
        index.upsert(id, &axis((id % 16) as usize)).unwrap();
    }
    let before = index.memory_bytes();
    assert_eq!(before, plain.memory_bytes());
    let far: Vec<u64> = (0..50u64).map(|i| (4 * i) | ((1 + i % 15) << 28)).collect();
    for (i, &id) in far.iter().enumerate() {
        index.upsert(id, &far_row(i as u64)).unwrap();
    }
    assert_eq!(index.len(), 1550);
    // 64 buckets of (u32, u32) and a control byte: about 12 B per far id, not gigabytes.
    let grown = index.memory_bytes() - before;
    assert!((1..1024).contains(&grown), "{grown} B for 50 far ids");
    let only_far = |id: u64| id >= 1 << 28;
    let mut found: Vec<u64> = index.search(&axis(3), 100, Some(&only_far)).unwrap().iter().map(|h| h.id).collect();
    found.sort_unstable();
    let mut want = far.clone();
    want.sort_unstable();
    assert_eq!(found, want);
    for (i, &id) in far.iter().enumerate() {
        let best = index.search(&far_row(i as u64), 1, None).unwrap()[0];
        assert_eq!(best.id, id);
        assert!(best.score > 0.999);
    }
    // Overwrite a far id in place; then remove a dense row: the last row (a far id) moves
    // into its slot and stays findable.
    index.upsert(far[3], &far_row(3)).unwrap();
    assert_eq!(index.len(), 1550);
    assert!(index.remove(0));
    assert_eq!(index.search(&far_row(49), 1, None).unwrap()[0].id, far[49]);
    for &id in &far {
        assert!(index.remove(id));
        assert!(!index.remove(id));
    }
    assert_eq!(index.len(), 1499);
    assert!(index.search(&axis(3), 100, Some(&only_far)).unwrap().is_empty());
    assert!(index.upsert(1 << 32, &axis(0)).is_err(), "ids stay below 2^32");
}

#[test]
fn anonymous_memory_per_row_is_codes_plus_fifteen_bytes() {
    // 512 bits: 64 code bytes + centroid (1) + three f16 (6) + id (4) + id table (4).
    let index = CompactIndex::new(CompactConfig::new(1280).bits(512)).unwrap();
    // The projection and the centroid, whatever the rows.
    let fixed = CompactIndex::new(CompactConfig::new(1280).bits(512)).unwrap().memory_bytes();
    let v: Vec<f32> = (0..1280).map(|i| (i as f32 * 0.1).sin()).collect();
    let full = 1024 * 16;
    for id in 0..full as u64 {
        index.upsert(id, &v).unwrap();
    }
    // f32 rows, then the 4-bit refinement codes: scale and base (8 B) + 640 B (the files
    // double when they grow; 16384 rows fill them exactly).
    assert_eq!(index.mapped_bytes(), full * (1280 * 4 + 8 + 640));
    // One row past a whole number of segments: the last segment is (almost) all slack.
    index.upsert(full as u64, &v).unwrap();
    let rows = full + 1;
    let per_row = (index.memory_bytes() - fixed) as f64 / rows as f64;
    // Slack: at most one 1024-row segment of 75 B rows (4096-row segments failed this), the
    // id table's growth by 1/32 of its 4 B cells, and the list of segments itself (grown by
    // doubling).
    let slack = 1023.0 * 75.0 / rows as f64 + 4.0 / 32.0 + 0.3;
    assert!((79.0..=79.0 + slack).contains(&per_row), "{per_row} B per row");
}

#[test]
fn a_bounded_search_rescores_no_more_than_asked_and_still_fills_the_page() {
    // Random directions: the band covers most rows, so the bound is what limits the work.
    let mut catalog = Catalog::bench_text(384, 31);
    let index = CompactIndex::new(CompactConfig::new(384)).unwrap();
    for i in 0..1500 {
        index.upsert(i, &catalog.row(i as usize)).unwrap();
    }
    let q = catalog.query(0);
    // Without the refinement stage every row that may rank is read as f32.
    index.set_refine(false);
    let (full, full_stats) = index.search_with_stats(&q, 10, None).unwrap();
    assert!(full_stats.rescored > 56, "this data must need more than the bound: {full_stats:?}");
    let (bounded, stats) = index.search_bounded(&q, 10, None, 56).unwrap();
    assert_eq!(stats.rescored, 56);
    assert_eq!(bounded.len(), 10);
    let mut ids: Vec<u64> = bounded.iter().map(|h| h.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    let (unbounded, _) = index.search_bounded(&q, 10, None, usize::MAX).unwrap();
    assert_eq!(unbounded, full);
    // With it, the same ten from a small fraction of the f32 rows.
    index.set_refine(true);
    let (refined, stats) = index.search_with_stats(&q, 10, None).unwrap();
    assert_eq!(refined, full);
    assert!(stats.refined > 0 && stats.rescored * 4 < full_stats.rescored, "{stats:?} vs {full_stats:?}");
    let (bounded, stats) = index.search_bounded(&q, 10, None, 5).unwrap();
    assert!(stats.rescored <= 5 && stats.refined <= 40, "{stats:?}");
    assert_eq!(bounded.len(), 10);
}

#[test]
fn a_read_budget_bounds_the_bytes_a_search_reads_and_the_page_still_fills() {
    let mut catalog = Catalog::bench_text(384, 32);
    // Refinement rows of 384 dimensions are 8 + 192 B; f32 rows 1536 B, ten set aside for the
    // results.
    let budget = 300 * 200 + 10 * 1536;
    let index = CompactIndex::new(CompactConfig::new(384).read_budget(budget)).unwrap();
    for i in 0..3000 {
        index.upsert(i, &catalog.row(i as usize)).unwrap();
    }
    for i in 0..5 {
        let (hits, stats) = index.search_with_stats(&catalog.query(i), 10, None).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(stats.shortlisted > 300, "the budget must be what stops the work: {stats:?}");
        assert_eq!(stats.refined, 300);
        assert!(stats.refined * 200 + stats.rescored * 1536 <= budget, "{stats:?}");
    }
}
