//! Fusing the rankings of a hybrid text search into one: score-aware by default, reciprocal
//! rank fusion for comparison.
//!
//! **Why not ranks alone.** Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009:
//! `Σ_r 1 / (60 + rank_r)`) throws the scores away, so a ranking that carries no information
//! gets the same vote as one that does. On a catalog whose titles say nothing ("Item 1042" and
//! one boilerplate description for every product) a query whose answer shows only in the photo
//! found it at `image_text` cosine 0.7 against 0.25–0.3 for every other product, and still
//! ranked it third: the MiniLM ranking of identical texts, ordered by noise, outvoted it.
//!
//! **What is done instead** ([`Weights`]): each signal's score is put on a per-query scale
//! before the weighted sum, and the scale is what lets a signal that does not discriminate
//! contribute little:
//!
//! - a cosine signal (`text`, `image_text`) becomes `(cos − mean) / max(std, floor)`, the mean
//!   and standard deviation taken over that signal's own candidate list for this query. The
//!   `floor` (in cosine units) is the point: twenty identical descriptions spread by 0.01 give
//!   their best at most `0.01 / floor` of a unit, while a photo cosine standing 0.4 above the
//!   rest gives several units. A z-score alone would blow the noise up to the same size as the
//!   evidence;
//! - BM25 (unbounded, and on PostgreSQL a `ts_rank_cd` of another scale) becomes its ratio to
//!   the best match of the query, 0 for products it did not match. A ratio, not min–max: when
//!   every candidate matches a word equally, every candidate gets the same ≈ 1 and the order is
//!   left to the other signals.
//!
//! A product missing from a cosine list ranked below its cut-off; it is given the list's lowest
//! cosine, an upper bound of its own. The weights and the floor are not chosen by hand: they
//! are the best of a grid on the train split of the relevance benchmark (`bench/relevance.sh`,
//! docs/BENCHMARKS.md), reported on its held-out split.

use std::collections::HashMap;

/// The constant of the RRF paper, used by Elasticsearch, OpenSearch and Azure AI Search alike.
pub const RRF_K: f32 = 60.0;

/// A fused result of [`reciprocal_rank_fusion`]: `score` is the RRF sum; `ranks[r]` the 1-based
/// rank in ranking `r`.
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
    let mut position: HashMap<u64, usize> = HashMap::new();
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

/// The candidates of one text query: each signal's ranking, best first, with its raw score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    /// `(id, cosine)` in the `text` space.
    pub text: Vec<(u64, f32)>,
    /// `(id, cosine)` in the `image_text` space.
    pub image_text: Vec<(u64, f32)>,
    /// `(id, score)` of full-text matches, higher is better.
    pub keyword: Vec<(u64, f32)>,
    /// Cosines computed for candidates missing from a cosine list (keyword-only matches):
    /// `(text, image_text)`.
    pub extra: HashMap<u64, (Option<f32>, Option<f32>)>,
    /// Which photo gave a candidate its `image_text` cosine, where it was not the main one
    /// (the evidence a result shows; fusion does not read it).
    pub photos: HashMap<u64, u16>,
}

/// Weights of the score-aware fusion (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub text: f32,
    pub image_text: f32,
    pub keyword: f32,
    /// The smallest spread a cosine signal is divided by, in cosine units.
    pub floor: f32,
}

impl Weights {
    /// Chosen on the relevance benchmark's train split (docs/BENCHMARKS.md, "Relevance").
    pub const TUNED: Weights = Weights { text: 1.0, image_text: 8.0, keyword: 6.0, floor: 0.1 };
}

/// How a text search's rankings become one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion with k = [`RRF_K`] (what ocular did before issue 19).
    Rrf,
    /// Weighted, per-query normalised scores.
    Scores(Weights),
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Scores(Weights::TUNED)
    }
}

/// One fused candidate with everything that ranked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: u64,
    /// What results are ordered by.
    pub score: f32,
    /// The cosines known for it (from a list or computed), `None` when it ranked below a list's
    /// cut-off.
    pub text: Option<f32>,
    pub image_text: Option<f32>,
    /// Its full-text score and 1-based rank, if it matched.
    pub keyword: Option<f32>,
    pub keyword_rank: Option<usize>,
}

/// Mean and standard deviation of a list's scores.
fn spread(list: &[(u64, f32)]) -> (f32, f32) {
    if list.is_empty() {
        return (0.0, 0.0);
    }
    let n = list.len() as f32;
    let mean = list.iter().map(|(_, s)| s).sum::<f32>() / n;
    let var = list.iter().map(|(_, s)| (s - mean) * (s - mean)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// Fuses a pool; ties go to the better best rank, then the smaller id, so results are stable.
pub fn fuse(pool: &Pool, fusion: &Fusion) -> Vec<Candidate> {
    let first = |list: &[(u64, f32)]| -> HashMap<u64, (usize, f32)> {
        let mut m = HashMap::with_capacity(list.len());
        for (i, &(id, s)) in list.iter().enumerate() {
            m.entry(id).or_insert((i + 1, s));
        }
        m
    };
    let (text, image_text, keyword) = (first(&pool.text), first(&pool.image_text), first(&pool.keyword));
    let mut ids: Vec<u64> = Vec::with_capacity(text.len() + image_text.len() + keyword.len());
    for list in [&pool.text, &pool.image_text, &pool.keyword] {
        ids.extend(list.iter().map(|(id, _)| *id));
    }
    ids.sort_unstable();
    ids.dedup();

    let (t_stats, i_stats) = (spread(&pool.text), spread(&pool.image_text));
    let lowest = |list: &[(u64, f32)]| list.iter().map(|(_, s)| *s).reduce(f32::min);
    let (t_low, i_low) = (lowest(&pool.text), lowest(&pool.image_text));
    let best_keyword = pool.keyword.iter().map(|(_, s)| *s).fold(0.0f32, f32::max);

    let mut out: Vec<(Candidate, usize)> = ids
        .into_iter()
        .map(|id| {
            let extra = pool.extra.get(&id).copied().unwrap_or_default();
            let (t_rank, t) = text.get(&id).map_or((None, extra.0), |&(r, s)| (Some(r), Some(s)));
            let (i_rank, i) = image_text.get(&id).map_or((None, extra.1), |&(r, s)| (Some(r), Some(s)));
            let (k_rank, k) = keyword.get(&id).map_or((None, None), |&(r, s)| (Some(r), Some(s)));
            let score = match fusion {
                Fusion::Rrf => [t_rank, i_rank, k_rank].iter().flatten().map(|&r| 1.0 / (RRF_K + r as f32)).sum(),
                Fusion::Scores(w) => {
                    let cosine = |value: Option<f32>, low: Option<f32>, (mean, std): (f32, f32)| {
                        value.or(low).map_or(0.0, |v| (v - mean) / std.max(w.floor))
                    };
                    let kw = match k {
                        Some(s) if best_keyword > 0.0 => (s / best_keyword).max(0.0),
                        _ => 0.0,
                    };
                    w.text * cosine(t, t_low, t_stats) + w.image_text * cosine(i, i_low, i_stats) + w.keyword * kw
                }
            };
            let best_rank = [t_rank, i_rank, k_rank].iter().flatten().min().copied().unwrap_or(usize::MAX);
            (Candidate { id, score, text: t, image_text: i, keyword: k, keyword_rank: k_rank }, best_rank)
        })
        .collect();
    out.sort_by(|(a, ra), (b, rb)| b.score.total_cmp(&a.score).then(ra.cmp(rb)).then(a.id.cmp(&b.id)));
    out.into_iter().map(|(c, _)| c).collect()
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

    /// The case: twenty products with one boilerplate text, so their MiniLM cosines
    /// differ by noise, and one (15) whose photo alone matches the query.
    fn boilerplate_pool() -> Pool {
        let text: Vec<(u64, f32)> = (1..=20).map(|id| (id, 0.30 - 0.001 * id as f32)).collect();
        let mut image_text: Vec<(u64, f32)> = (1..=20).map(|id| (id, 0.27 - 0.001 * id as f32)).collect();
        image_text.retain(|(id, _)| *id != 15);
        image_text.insert(0, (15, 0.7));
        Pool { text, image_text, ..Pool::default() }
    }

    #[test]
    fn a_signal_that_discriminates_outweighs_one_that_does_not() {
        let pool = boilerplate_pool();
        let rrf: Vec<u64> = fuse(&pool, &Fusion::Rrf).iter().map(|c| c.id).collect();
        let at = rrf.iter().position(|&id| id == 15);
        assert!(at.is_some_and(|at| at >= 2), "rank fusion puts noise first: {rrf:?}");
        let even = Weights { text: 1.0, image_text: 1.0, keyword: 1.0, floor: 0.05 };
        for fusion in [Fusion::Scores(even), Fusion::default()] {
            let fused = fuse(&pool, &fusion);
            assert_eq!(fused[0].id, 15, "{fusion:?}: {:?}", &fused[..3]);
            assert_eq!((fused[0].text, fused[0].image_text), (Some(0.30 - 0.015), Some(0.7)));
        }
        // With even weights the text noise (spread 0.006, under the 0.05 floor) adds at most
        // 0.2 of a unit, the photo's gap about 4.
        let fused = fuse(&pool, &Fusion::Scores(even));
        assert!(fused[0].score > 3.0 && fused[1].score < 0.5, "{:?}", &fused[..2]);
    }

    #[test]
    fn rrf_through_the_pool_matches_the_ranking_function() {
        let pool = Pool {
            text: vec![(1, 0.5), (2, 0.4), (3, 0.3)],
            image_text: vec![(9, 0.5), (3, 0.4), (2, 0.3)],
            keyword: vec![(8, 7.0), (3, 2.0)],
            ..Pool::default()
        };
        let ids: Vec<u64> = fuse(&pool, &Fusion::Rrf).iter().map(|c| c.id).collect();
        let direct: Vec<u64> =
            reciprocal_rank_fusion(&[&[1, 2, 3], &[9, 3, 2], &[8, 3]], RRF_K).iter().map(|f| f.id).collect();
        assert_eq!(ids, direct);
    }

    #[test]
    fn keyword_scores_are_relative_to_the_best_match_and_missing_cosines_are_bounded() {
        let pool = Pool {
            text: vec![(1, 0.6), (2, 0.2), (3, 0.1)],
            image_text: vec![(1, 0.3), (2, 0.3), (3, 0.3)],
            keyword: vec![(4, 10.0), (2, 5.0)],
            extra: HashMap::from([(4, (Some(0.05), None))]),
            ..Pool::default()
        };
        let w = Weights { text: 1.0, image_text: 1.0, keyword: 1.0, floor: 0.05 };
        let fused = fuse(&pool, &Fusion::Scores(w));
        let by_id = |id| fused.iter().find(|c| c.id == id).cloned().unwrap();
        assert_eq!((by_id(4).keyword, by_id(4).keyword_rank), (Some(10.0), Some(1)));
        assert_eq!((by_id(4).text, by_id(4).image_text), (Some(0.05), None));
        // Product 4 has no image_text cosine: it gets the list's lowest, 0.3, like everyone
        // there (a signal with no spread adds nothing); its text cosine 0.05 is below the mean.
        let (mean, std) = spread(&pool.text);
        let expected = (0.05 - mean) / std + 1.0;
        assert!((by_id(4).score - expected).abs() < 1e-5, "{:?} vs {expected}", by_id(4));
        let expected2 = (0.2 - mean) / std + 0.5;
        assert!((by_id(2).score - expected2).abs() < 1e-5);
        assert_eq!(fused[0].id, 1, "the clear text match still leads: {fused:?}");
        assert!(fuse(&Pool::default(), &Fusion::default()).is_empty());
    }
}
