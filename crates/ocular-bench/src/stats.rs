//! Latency percentiles. Nearest-rank on the exact sorted sample (no histogram buckets): a
//! five-minute run at a few hundred requests per second is well under a million values.

use serde::Serialize;

/// The `p`-th percentile (0 < p <= 100) by nearest rank: the smallest value such that at least
/// `p`% of the sample is at or below it. `None` for an empty sample.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency over one group of responses, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Summarises a sample (sorted here); `None` when it is empty.
    pub fn of(mut values: Vec<f64>) -> Option<Latency> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |p| percentile(&values, p).unwrap_or_default();
        Some(Latency {
            count: values.len(),
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: values[values.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_a_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.5), Some(1.0));
    }

    #[test]
    fn small_samples_round_up() {
        // Ten values: p95 and p99 both need rank 10, the maximum; p50 is rank 5.
        let v: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 51.0), Some(60.0));
        assert_eq!(percentile(&v, 95.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts_and_averages() {
        let l = Latency::of(vec![30.0, 10.0, 20.0, 40.0]).unwrap();
        assert_eq!(l, Latency { count: 4, mean: 25.0, p50: 20.0, p95: 40.0, p99: 40.0, max: 40.0 });
        assert_eq!(Latency::of(Vec::new()), None);
    }

    #[test]
    fn a_slow_tail_shows_in_p99_not_p50() {
        let mut v = vec![5.0; 990];
        v.extend([500.0; 10]);
        let l = Latency::of(v).unwrap();
        assert_eq!((l.p50, l.p95, l.p99, l.max), (5.0, 5.0, 5.0, 500.0));
        let mut v = vec![5.0; 980];
        v.extend([500.0; 20]);
        assert_eq!(Latency::of(v).unwrap().p99, 500.0);
    }
}
