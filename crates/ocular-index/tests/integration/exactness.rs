//! Search results against the brute-force f64 reference: exact after rescoring, on random,
//! clustered and near-duplicate data, through every rescoring option and kernel.

use std::collections::HashMap;
use std::sync::Arc;

use ocular_index::{Hit, IndexError, Kernel, QuantizedConfig, QuantizedIndex, Rescore, Rescorer, VectorIndex};

use crate::data::{Clusters, Rng, brute_force, random_unit, recall};

type Data = Vec<(u64, Vec<f32>)>;

fn random_data(n: usize, dim: usize, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    // Sparse, shuffled ids so that id order is not storage order.
    (0..n as u64).map(|i| (i * 7919 % 1_000_003, random_unit(&mut rng, dim))).collect()
}

fn clustered_data(n: usize, dim: usize, seed: u64) -> (Data, Clusters, Rng) {
    let mut rng = Rng::new(seed);
    let clusters = Clusters::new(&mut rng, 20, dim, 0.6);
    let data = (0..n as u64).map(|i| (i, clusters.sample(&mut rng))).collect();
    (data, clusters, rng)
}

fn build(config: QuantizedConfig, data: &Data) -> QuantizedIndex {
    let index = QuantizedIndex::new(config).unwrap();
    for (id, v) in data {
        index.upsert(*id, v).unwrap();
    }
    index
}

/// Same ids in the same order, and scores within `tol` of the reference.
fn assert_exact(hits: &[Hit], reference: &[(u64, f64)], tol: f64, context: &str) {
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    let expected: Vec<u64> = reference.iter().map(|r| r.0).collect();
    assert_eq!(ids, expected, "{context}: ids differ from brute force\n{hits:?}\n{reference:?}");
    for (h, r) in hits.iter().zip(reference) {
        assert!((f64::from(h.score) - r.1).abs() <= tol, "{context}: score {h:?} vs {r:?}");
    }
}

/// Exact up to near-ties: at every rank the hit's true score is within `tol` of the
/// reference score at that rank (so a hit may only trade places with a neighbour scoring
/// within `tol`, as f16 rounding can make it), and no hit is missing unless the reference
/// has such a near-tie at the k-th place. Returns the strict recall.
fn assert_exact_up_to_ties(hits: &[Hit], data: &Data, query: &[f32], k: usize, tol: f64, context: &str) -> f64 {
    let reference = brute_force(data, query, k + 1, None);
    let truth: HashMap<u64, f64> = brute_force(data, query, data.len(), None).into_iter().collect();
    assert_eq!(hits.len(), k, "{context}");
    for (rank, h) in hits.iter().enumerate() {
        let true_score = truth[&h.id];
        assert!((true_score - reference[rank].1).abs() <= tol, "{context}: rank {rank}: {h:?}");
        assert!((f64::from(h.score) - true_score).abs() <= tol, "{context}: score of {h:?}");
    }
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    let strict = recall(&ids, &reference[..k]);
    let gap = reference[k - 1].1 - reference[k].1;
    if gap > 2.0 * tol {
        assert_eq!(strict, 1.0, "{context}: a clear top-{k} member is missing");
    } else if strict < 1.0 {
        println!("{context}: near-tie at rank {k} (true gap {gap:.2e}) resolved the other way");
    }
    strict
}

#[test]
fn random_20k_x_384_is_exact_after_f32_rescoring_and_reports_quantised_recall() {
    let data = random_data(20_000, 384, 1);
    let exact = build(QuantizedConfig::new(384).rescore(Rescore::F32), &data);
    let approx = build(QuantizedConfig::new(384).rescore(Rescore::Off), &data);
    let mut rng = Rng::new(99);
    let (mut quantised_recall, mut shortlisted, queries) = (0.0, 0, 20);
    for q in 0..queries {
        let query = random_unit(&mut rng, 384);
        let reference = brute_force(&data, &query, 10, None);
        let (hits, stats) = exact.search_with_stats(&query, 10, None).unwrap();
        assert_exact(&hits, &reference, 1e-5, &format!("query {q}"));
        shortlisted += stats.shortlisted;
        let ids: Vec<u64> = approx.search(&query, 10, None).unwrap().iter().map(|h| h.id).collect();
        quantised_recall += recall(&ids, &reference);
    }
    let quantised_recall = quantised_recall / f64::from(queries);
    println!(
        "random 20k x 384: quantised-only recall@10 = {quantised_recall:.3}, mean shortlist {}",
        shortlisted / queries as usize
    );
    // Random directions are the worst case for int8; it must still be a useful shortlist.
    assert!(quantised_recall >= 0.8, "quantised recall {quantised_recall}");
}

#[test]
fn clustered_20k_x_384_is_exact_after_rescoring() {
    let (data, clusters, mut rng) = clustered_data(20_000, 384, 2);
    let index = build(QuantizedConfig::new(384), &data);
    let exact = build(QuantizedConfig::new(384).rescore(Rescore::F32), &data);
    let approx = build(QuantizedConfig::new(384).rescore(Rescore::Off), &data);
    let (mut quantised_recall, mut rescored_recall) = (0.0, 0.0);
    for q in 0..20 {
        let query = clusters.sample(&mut rng);
        let reference = brute_force(&data, &query, 10, None);
        let hits = exact.search(&query, 10, None).unwrap();
        assert_exact(&hits, &reference, 1e-5, &format!("f32, query {q}"));
        let hits = index.search(&query, 10, None).unwrap();
        // f16 copies move a cosine by at most 2^-11 (see the rescore module docs).
        let tol = 2f64.powi(-11);
        rescored_recall += assert_exact_up_to_ties(&hits, &data, &query, 10, tol, &format!("f16, query {q}"));
        let ids: Vec<u64> = approx.search(&query, 10, None).unwrap().iter().map(|h| h.id).collect();
        quantised_recall += recall(&ids, &reference);
    }
    println!(
        "clustered 20k x 384: recall@10 quantised-only {:.3}, after f16 rescoring {:.3}",
        quantised_recall / 20.0,
        rescored_recall / 20.0
    );
    // Only near-ties (true gap below the f16 bound) may resolve the other way.
    assert!(rescored_recall >= 19.8, "f16 rescoring lost top-10 members: {rescored_recall}/20");
}

#[test]
fn near_duplicates_and_outliers_widen_the_shortlist_and_stay_exact() {
    // Tight clusters: hundreds of rows within the quantisation error of each other, so a
    // fixed k·4 shortlist would miss some; the band must grow to cover them.
    let mut rng = Rng::new(3);
    let clusters = Clusters::new(&mut rng, 5, 128, 0.05);
    let mut data: Data = (0..5_000u64).map(|i| (i, clusters.sample(&mut rng))).collect();
    // One spiky vector (a dominant component) has a large quantisation residual, which
    // raises the error bound for every query.
    let mut spiky = random_unit(&mut rng, 128);
    spiky[0] = 40.0;
    data.push((9_999, spiky));
    let index = build(QuantizedConfig::new(128).rescore(Rescore::F32), &data);
    let mut max_shortlist = 0;
    for q in 0..20 {
        let query = clusters.sample(&mut rng);
        let (hits, stats) = index.search_with_stats(&query, 10, None).unwrap();
        // Scores here differ in the 8th digit, below f32 resolution: allow such ties.
        assert_exact_up_to_ties(&hits, &data, &query, 10, 1e-6, &format!("query {q}"));
        max_shortlist = max_shortlist.max(stats.shortlisted);
    }
    assert!(max_shortlist > 40, "data no longer needs a long shortlist: {max_shortlist}");
}

#[test]
fn every_kernel_gives_identical_results() {
    let data = random_data(3_000, 200, 4);
    let mut rng = Rng::new(5);
    let queries: Vec<Vec<f32>> = (0..5).map(|_| random_unit(&mut rng, 200)).collect();
    let mut results = Vec::new();
    for kernel in Kernel::available() {
        let index = build(QuantizedConfig::new(200).rescore(Rescore::Off).kernel(kernel), &data);
        assert_eq!(index.kernel(), kernel);
        let hits: Vec<Vec<Hit>> = queries.iter().map(|q| index.search(q, 20, None).unwrap()).collect();
        results.push((kernel, hits));
    }
    for (kernel, hits) in &results[1..] {
        assert_eq!(hits, &results[0].1, "{} vs {}", kernel.name(), results[0].0.name());
    }
}

#[test]
fn high_dimensional_efficientnet_features_are_exact() {
    let (data, clusters, mut rng) = clustered_data(3_000, 1280, 6);
    let index = build(QuantizedConfig::new(1280).rescore(Rescore::F32), &data);
    for q in 0..5 {
        let query = clusters.sample(&mut rng);
        let reference = brute_force(&data, &query, 25, None);
        assert_exact(&index.search(&query, 25, None).unwrap(), &reference, 1e-5, &format!("{q}"));
    }
}

/// Full vectors kept "in a database": a map, optionally missing some ids.
struct MapRescorer(HashMap<u64, Vec<f32>>);

impl Rescorer for MapRescorer {
    fn fetch(
        &self,
        ids: &[u64],
        sink: &mut dyn FnMut(u64, &[f32]),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for id in ids {
            if let Some(v) = self.0.get(id) {
                sink(*id, v);
            }
        }
        Ok(())
    }
}

#[test]
fn external_rescorer_is_exact_and_its_failures_surface() {
    let (data, clusters, mut rng) = clustered_data(4_000, 64, 7);
    let map: HashMap<u64, Vec<f32>> = data.iter().cloned().collect();
    let rescorer = Arc::new(MapRescorer(map));
    let index = build(QuantizedConfig::new(64).rescore(Rescore::External(rescorer)), &data);
    for q in 0..10 {
        let query = clusters.sample(&mut rng);
        let reference = brute_force(&data, &query, 10, None);
        assert_exact(&index.search(&query, 10, None).unwrap(), &reference, 1e-5, &format!("{q}"));
    }

    struct Failing;
    impl Rescorer for Failing {
        fn fetch(
            &self,
            _: &[u64],
            _: &mut dyn FnMut(u64, &[f32]),
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Err("database unavailable".into())
        }
    }
    let failing = build(QuantizedConfig::new(64).rescore(Rescore::External(Arc::new(Failing))), &data);
    let err = failing.search(&data[0].1, 5, None).unwrap_err();
    assert!(matches!(err, IndexError::Rescorer(_)), "{err:?}");
    assert_eq!(err.fault(), ocular_index::Fault::Runtime);

    let wrong_dim = MapRescorer(data.iter().map(|(id, _)| (*id, vec![1.0; 3])).collect());
    let index = build(QuantizedConfig::new(64).rescore(Rescore::External(Arc::new(wrong_dim))), &data);
    let err = index.search(&data[0].1, 5, None).unwrap_err();
    assert!(matches!(err, IndexError::RescorerDimension { expected: 64, got: 3, .. }), "{err:?}");
}
