//! Bounded top-k selection ([`TopK`]) and its error-tolerant sibling ([`Band`]), after qdrant's `lib/common/common/src/top_k.rs` (the "median"
//! algorithm of <https://quickwit.io/blog/top-k-complexity>): keep up to `2k` candidates and,
//! when full, cut back to the best `k` with one `select_nth_unstable`. Amortised O(1) per
//! push and, unlike a binary heap, no sift on every accepted element.
//!
//! Unlike qdrant's, the order is total: a higher score ranks first and equal scores rank by
//! the smaller id, so results do not depend on scan order, and the threshold test compares
//! the full key (an element tying the threshold score with a smaller id still gets in).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A scored vector: `slot` is its storage position, valid while the index lock is held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub score: f32,
    pub id: u64,
    pub slot: u32,
}

/// Rank order: `Less` means `a` ranks before `b`.
pub(crate) fn rank(a: &Scored, b: &Scored) -> Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

/// Whether (`score`, `id`) ranks strictly before `other`.
#[inline]
pub(crate) fn ranks_before(score: f32, id: u64, other: &Scored) -> bool {
    score > other.score || (score == other.score && id < other.id)
}

pub(crate) struct TopK {
    k: usize,
    elements: Vec<Scored>,
    /// The worst element kept after the last cut; nothing ranking after it can be in the top
    /// `k`. `None` until the first cut.
    threshold: Option<Scored>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self { k, elements: Vec::with_capacity(k.saturating_mul(2)), threshold: None }
    }

    /// Cheap pre-check on the score alone, before the id is even looked up: `false` means the
    /// element certainly cannot enter.
    #[inline]
    pub(crate) fn may_accept_score(&self, score: f32) -> bool {
        self.threshold.is_none_or(|t| score >= t.score)
    }

    /// Whether an element with this key would be kept now. Checked before running a filter so
    /// that the (dynamic, possibly slow) filter only sees ids that could still rank.
    #[inline]
    pub(crate) fn accepts(&self, score: f32, id: u64) -> bool {
        self.k > 0 && self.threshold.is_none_or(|t| ranks_before(score, id, &t))
    }

    pub(crate) fn push(&mut self, element: Scored) {
        if !self.accepts(element.score, element.id) {
            return;
        }
        self.elements.push(element);
        if self.elements.len() >= self.k.saturating_mul(2) {
            let (_, kth, _) = self.elements.select_nth_unstable_by(self.k - 1, rank);
            self.threshold = Some(*kth);
            self.elements.truncate(self.k);
        }
    }

    /// The best `k` (or fewer) in rank order.
    pub(crate) fn into_sorted_vec(mut self) -> Vec<Scored> {
        self.elements.sort_unstable_by(rank);
        self.elements.truncate(self.k);
        self.elements
    }
}

/// Everything that may still belong to the exact top-k when scores carry an error of up to
/// `margin / 2`: all elements scoring at least `margin` below the k-th best so far.
///
/// As the k-th best rises during a scan the floor rises with it, and a cut (amortised like
/// [`TopK`]'s) drops what fell below it.
pub(crate) struct Band {
    k: usize,
    margin: f32,
    elements: Vec<Scored>,
    floor: f32,
    /// Length at which the next cut happens; doubles when cuts stop shrinking the band.
    limit: usize,
}

impl Band {
    pub(crate) fn new(k: usize, margin: f32) -> Self {
        Self { k, margin, elements: Vec::new(), floor: f32::NEG_INFINITY, limit: k.saturating_mul(4).max(64) }
    }

    /// `false` means the element is certainly out of the band.
    #[inline]
    pub(crate) fn accepts(&self, score: f32) -> bool {
        self.k > 0 && score >= self.floor
    }

    pub(crate) fn push(&mut self, element: Scored) {
        if !self.accepts(element.score) {
            return;
        }
        self.elements.push(element);
        if self.elements.len() >= self.limit {
            self.cut();
            self.limit = self.limit.max(self.elements.len().saturating_mul(2));
        }
    }

    fn cut(&mut self) {
        if self.k == 0 || self.elements.len() < self.k {
            return;
        }
        let (_, kth, _) = self.elements.select_nth_unstable_by(self.k - 1, rank);
        self.floor = kth.score - self.margin;
        let floor = self.floor;
        self.elements.retain(|e| e.score >= floor);
    }

    /// The band, unordered.
    pub(crate) fn finish(mut self) -> Vec<Scored> {
        self.cut();
        self.elements
    }
}

/// The k-th best of the scores pushed so far (a size-k min-heap of scores only): lets the
/// rescoring loop stop as soon as no remaining candidate can reach it.
pub(crate) struct KthBest {
    k: usize,
    heap: BinaryHeap<Reverse<TotalF32>>,
}

/// `f32` ordered by `total_cmp`, so it can live in a heap (scores are never NaN anyway).
#[derive(Debug, Clone, Copy, PartialEq)]
struct TotalF32(f32);

impl Eq for TotalF32 {}

impl PartialOrd for TotalF32 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TotalF32 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl KthBest {
    pub(crate) fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    pub(crate) fn push(&mut self, score: f32) {
        self.heap.push(Reverse(TotalF32(score)));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// `None` until k scores were pushed.
    pub(crate) fn get(&self) -> Option<f32> {
        (self.heap.len() == self.k).then(|| self.heap.peek().map(|r| r.0.0)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f32, id: u64) -> Scored {
        Scored { score, id, slot: 0 }
    }

    fn ids(v: &[Scored]) -> Vec<u64> {
        v.iter().map(|e| e.id).collect()
    }

    #[test]
    fn keeps_best_k_in_order() {
        let mut top = TopK::new(3);
        for (i, score) in [1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 0.5, 5.5].into_iter().enumerate() {
            top.push(s(score, i as u64));
        }
        assert_eq!(ids(&top.into_sorted_vec()), vec![5, 7, 3]);
    }

    #[test]
    fn ties_rank_by_smaller_id_regardless_of_arrival() {
        for order in [[9u64, 4, 7, 1, 3, 8], [1, 3, 4, 7, 8, 9], [8, 9, 7, 4, 3, 1]] {
            let mut top = TopK::new(2);
            for id in order {
                top.push(s(1.0, id));
            }
            assert_eq!(ids(&top.into_sorted_vec()), vec![1, 3], "arrival order {order:?}");
        }
    }

    #[test]
    fn fewer_than_k_and_zero_k() {
        let mut top = TopK::new(5);
        top.push(s(0.1, 1));
        top.push(s(0.2, 2));
        assert_eq!(top.into_sorted_vec(), vec![s(0.2, 2), s(0.1, 1)]);

        // More than k but fewer than 2k: nothing was cut yet, the result still has k.
        let mut some = TopK::new(2);
        for id in 0..3 {
            some.push(s(id as f32, id));
        }
        assert_eq!(some.into_sorted_vec(), vec![s(2.0, 2), s(1.0, 1)]);

        let mut none = TopK::new(0);
        none.push(s(1.0, 1));
        assert!(none.into_sorted_vec().is_empty());
    }

    #[test]
    fn band_keeps_exactly_what_lies_within_margin_of_the_kth() {
        let mut x = 99u64;
        let mut all = Vec::new();
        let mut band = Band::new(5, 2.5);
        for id in 0..3000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = s((x % 1000) as f32 / 10.0, id);
            all.push(e);
            band.push(e);
        }
        all.sort_by(rank);
        let floor = all[4].score - 2.5;
        let mut expected: Vec<Scored> = all.into_iter().filter(|e| e.score >= floor).collect();
        let mut got = band.finish();
        got.sort_by(rank);
        expected.sort_by(rank);
        assert_eq!(got, expected);
        assert!(got.len() > 5);
    }

    #[test]
    fn kth_best_tracks_the_kth_largest() {
        let mut kth = KthBest::new(3);
        for (i, v) in [5.0, 1.0, 7.0].into_iter().enumerate() {
            assert_eq!(kth.get(), None, "after {i}");
            kth.push(v);
        }
        assert_eq!(kth.get(), Some(1.0));
        kth.push(6.0);
        assert_eq!(kth.get(), Some(5.0));
        kth.push(0.0);
        assert_eq!(kth.get(), Some(5.0));
    }

    #[test]
    fn band_with_fewer_than_k_keeps_everything() {
        let mut band = Band::new(10, 0.0);
        for id in 0..4 {
            band.push(s(-(id as f32), id));
        }
        assert_eq!(band.finish().len(), 4);
        let mut empty = Band::new(0, 1.0);
        empty.push(s(1.0, 1));
        assert!(empty.finish().is_empty());
    }

    #[test]
    fn matches_a_full_sort_on_many_elements() {
        let mut x = 12345u64;
        let mut all = Vec::new();
        let mut top = TopK::new(10);
        for id in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct scores, so ties are common.
            let e = s((x % 50) as f32, id);
            all.push(e);
            top.push(e);
        }
        all.sort_by(rank);
        assert_eq!(top.into_sorted_vec(), all[..10].to_vec());
    }
}
