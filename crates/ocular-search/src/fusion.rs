//! Reciprocal rank fusion: one ranking from several, without comparing their scores.
//!
//! Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
//! Rank Learning Methods" (SIGIR 2009): a document's fused score is `Σ_r 1 / (k + rank_r)`
//! over the rankings `r` that contain it, ranks counted from 1, with `k = 60`.
//!
//! Why ranks and not scores: text search combines MiniLM cosines (about 0.1–0.8), ConSE
//! cosines (another distribution entirely) and BM25 (unbounded, query-dependent). Any weighted
//! sum of those would need tuning per catalog; ranks need none. `k = 60` damps the difference
//! between the very top ranks, so a product that two signals place 3rd beats one that a single
//! signal places 1st (2/63 ≈ 0.032 > 1/61 ≈ 0.016).

/// The constant of the paper, used by Elasticsearch, OpenSearch and Azure AI Search alike.
pub const RRF_K: f32 = 60.0;

/// A fused result: `score` is the RRF sum; `ranks[r]` the 1-based rank in ranking `r`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: u64,
    pub score: f32,
    pub ranks: Vec<Option<usize>>,
}

/// Fuses rankings (ids best first; an id appearing twice in one ranking counts once, at its
/// best rank). Ties go to the better best-rank, then the smaller id, so results are stable.
pub fn reciprocal_rank_fusion(rankings: &[&[u64]], k: f32) -> Vec<Fused> {
    let mut fused: Vec<Fused> = Vec::new();
    let mut position: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (r, ranking) in rankings.iter().enumerate() {
        for (i, &id) in ranking.iter().enumerate() {
            let at = *position.entry(id).or_insert_with(|| {
                fused.push(Fused { id, score: 0.0, ranks: vec![None; rankings.len()] });
                fused.len() - 1
            });
            let entry = &mut fused[at];
            if entry.ranks[r].is_none() {
                entry.ranks[r] = Some(i + 1);
                entry.score += 1.0 / (k + (i + 1) as f32);
            }
        }
    }
    let best_rank = |f: &Fused| f.ranks.iter().flatten().min().copied().unwrap_or(usize::MAX);
    fused.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| best_rank(a).cmp(&best_rank(b))).then_with(|| a.id.cmp(&b.id))
    });
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_a_single_first_place() {
        let a: &[u64] = &[1, 2, 3];
        let b: &[u64] = &[9, 3, 2];
        let c: &[u64] = &[8, 3];
        let fused = reciprocal_rank_fusion(&[a, b, c], RRF_K);
        let ids: Vec<u64> = fused.iter().map(|f| f.id).collect();
        // 3: 1/63 + 1/62 + 1/62; 2: 1/62 + 1/63; 1, 9, 8: 1/61 each.
        assert_eq!(ids, [3, 2, 1, 8, 9]);
        assert_eq!(fused[0].ranks, [Some(3), Some(2), Some(2)]);
        assert!((fused[0].score - (1.0 / 63.0 + 2.0 / 62.0)).abs() < 1e-7);
        assert_eq!(fused[2].ranks, [Some(1), None, None]);
    }

    #[test]
    fn ties_are_stable_and_duplicates_count_once() {
        let a: &[u64] = &[5, 5, 4];
        let b: &[u64] = &[4, 5];
        let fused = reciprocal_rank_fusion(&[a, b], RRF_K);
        // 5: ranks 1 and 2; 4: ranks 3 and 1: 1/61 + 1/62 > 1/63 + 1/61.
        assert_eq!(fused.iter().map(|f| f.id).collect::<Vec<_>>(), [5, 4]);
        assert_eq!(fused[0].ranks, [Some(1), Some(2)]);
        // Exact ties: equal scores and best ranks fall back to the smaller id.
        let x: &[u64] = &[7];
        let y: &[u64] = &[6];
        let tied = reciprocal_rank_fusion(&[x, y], RRF_K);
        assert_eq!(tied.iter().map(|f| f.id).collect::<Vec<_>>(), [6, 7]);
        assert!(reciprocal_rank_fusion(&[], RRF_K).is_empty());
    }
}
