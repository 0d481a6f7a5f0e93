//! Aggregation of a run's samples into the report: counts by status and error, latency
//! overall, per kind and per status class, printed as a table and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::client::Outcome;
use crate::mix::Kind;
use crate::stats::Latency;

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: Kind,
    pub outcome: Outcome,
    pub latency_ms: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Errors {
    pub connect: u64,
    pub timeout: u64,
    pub broken: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.broken
    }
}

/// Latency over every response (errors excluded: they have no status) and over 2xx only.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Latencies {
    pub all: Option<Latency>,
    pub ok_2xx: Option<Latency>,
}

/// Counts and latency of one group of samples (the whole run or one kind).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Group {
    pub requests: u64,
    pub status_counts: BTreeMap<String, u64>,
    pub errors: Errors,
    /// 503 responses that carried `Retry-After`.
    pub retry_after_on_503: u64,
    /// Fraction of requests answered 503.
    pub rate_503: f64,
    /// Non-2xx responses by `"STATUS code"`, e.g. `"503 overloaded"`.
    pub error_codes: BTreeMap<String, u64>,
    pub latency_ms: Latencies,
}

impl Group {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Group {
        let mut g = Group::default();
        let (mut all, mut ok) = (Vec::new(), Vec::new());
        for s in samples {
            g.requests += 1;
            match &s.outcome {
                Outcome::Response { status, retry_after, error_code } => {
                    *g.status_counts.entry(status.to_string()).or_default() += 1;
                    g.retry_after_on_503 += u64::from(*retry_after);
                    all.push(s.latency_ms);
                    if (200..300).contains(status) {
                        ok.push(s.latency_ms);
                    } else {
                        let key = format!("{status} {}", error_code.as_deref().unwrap_or("-"));
                        *g.error_codes.entry(key).or_default() += 1;
                    }
                }
                Outcome::Connect => g.errors.connect += 1,
                Outcome::Timeout => g.errors.timeout += 1,
                Outcome::Broken => g.errors.broken += 1,
            }
        }
        let n503 = g.status_counts.get("503").copied().unwrap_or_default();
        g.rate_503 = if g.requests == 0 { 0.0 } else { n503 as f64 / g.requests as f64 };
        g.latency_ms = Latencies { all: Latency::of(all), ok_2xx: Latency::of(ok) };
        g
    }

    fn count_class(&self, class: char) -> u64 {
        self.status_counts.iter().filter(|(s, _)| s.starts_with(class)).map(|(_, n)| n).sum()
    }
}

/// The whole report; the run-wide group's fields sit at the top level.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub url: String,
    pub concurrency: usize,
    pub seed: u64,
    pub mix: BTreeMap<String, u32>,
    pub elapsed_s: f64,
    /// Whether a signal ended the run before its duration or request count.
    pub cancelled: bool,
    pub throughput_rps: f64,
    pub ok_throughput_rps: f64,
    #[serde(flatten)]
    pub overall: Group,
    pub by_kind: BTreeMap<String, Group>,
    /// Latency by status class (`2xx`, `4xx`, `5xx`).
    pub by_status_class: BTreeMap<String, Latency>,
}

/// What the report says about the run besides its samples.
pub struct RunInfo {
    pub label: String,
    pub url: String,
    pub concurrency: usize,
    pub seed: u64,
    pub mix: Vec<(Kind, u32)>,
    pub elapsed_s: f64,
    pub cancelled: bool,
}

impl Report {
    pub fn build(info: RunInfo, samples: &[Sample]) -> Report {
        let overall = Group::of(samples.iter());
        let mut by_kind = BTreeMap::new();
        for (kind, _) in &info.mix {
            by_kind.insert(kind.name().to_string(), Group::of(samples.iter().filter(|s| s.kind == *kind)));
        }
        let mut classes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in samples {
            if let Outcome::Response { status, .. } = s.outcome {
                classes.entry(format!("{}xx", status / 100)).or_default().push(s.latency_ms);
            }
        }
        let per_s = |n: u64| if info.elapsed_s > 0.0 { n as f64 / info.elapsed_s } else { 0.0 };
        Report {
            throughput_rps: per_s(overall.requests),
            ok_throughput_rps: per_s(overall.count_class('2')),
            by_status_class: classes.into_iter().filter_map(|(c, v)| Some((c, Latency::of(v)?))).collect(),
            mix: info.mix.iter().map(|(k, w)| (k.name().to_string(), *w)).collect(),
            label: info.label,
            url: info.url,
            concurrency: info.concurrency,
            seed: info.seed,
            elapsed_s: info.elapsed_s,
            cancelled: info.cancelled,
            overall,
            by_kind,
        }
    }

    /// The human summary printed on stdout.
    pub fn table(&self) -> String {
        let o = &self.overall;
        let mut out = String::new();
        let label = if self.label.is_empty() { String::new() } else { format!(" [{}]", self.label) };
        let _ = writeln!(
            out,
            "ocular-load{label}: {} requests in {:.1} s, {} clients: {:.2} req/s ({:.2} 2xx/s)",
            o.requests, self.elapsed_s, self.concurrency, self.throughput_rps, self.ok_throughput_rps
        );
        let statuses: Vec<String> = o.status_counts.iter().map(|(s, n)| format!("{s}={n}")).collect();
        let _ = writeln!(
            out,
            "status: {}; 503 rate {:.1}%, Retry-After on {} of them; errors: connect {}, timeout {}, broken {}",
            if statuses.is_empty() { "none".into() } else { statuses.join(" ") },
            o.rate_503 * 100.0,
            o.retry_after_on_503,
            o.errors.connect,
            o.errors.timeout,
            o.errors.broken
        );
        for (code, n) in &o.error_codes {
            let _ = writeln!(out, "  {code}: {n}");
        }
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>7} {:>6} {:>6} {:>6} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8}   (ms)",
            "kind", "n", "2xx", "503", "other", "err", "p50", "p95", "p99", "max", "2xx p50", "2xx p99"
        );
        let mut rows: Vec<(&str, &Group)> = self.by_kind.iter().map(|(k, g)| (k.as_str(), g)).collect();
        rows.push(("all", o));
        for (name, g) in rows {
            let ok = g.count_class('2');
            let n503 = g.status_counts.get("503").copied().unwrap_or_default();
            let other = g.requests - ok - n503 - g.errors.total();
            let ms =
                |l: &Option<Latency>, f: fn(&Latency) -> f64| l.as_ref().map_or("-".into(), |l| format!("{:.1}", f(l)));
            let (all, okl) = (&g.latency_ms.all, &g.latency_ms.ok_2xx);
            let _ = writeln!(
                out,
                "{:<16} {:>7} {:>7} {:>6} {:>6} {:>6} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8}",
                name,
                g.requests,
                ok,
                n503,
                other,
                g.errors.total(),
                ms(all, |l| l.p50),
                ms(all, |l| l.p95),
                ms(all, |l| l.p99),
                ms(all, |l| l.max),
                ms(okl, |l| l.p50),
                ms(okl, |l| l.p99),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind, status: Option<u16>, ms: f64) -> Sample {
        let outcome = match status {
            Some(status) => Outcome::Response {
                status,
                retry_after: status == 503,
                error_code: (status >= 300).then(|| "overloaded".into()),
            },
            None => Outcome::Timeout,
        };
        Sample { kind, outcome, latency_ms: ms }
    }

    #[test]
    fn groups_count_statuses_errors_and_latency() {
        let samples = vec![
            sample(Kind::Analyze, Some(200), 100.0),
            sample(Kind::Analyze, Some(503), 1.0),
            sample(Kind::SearchText, Some(200), 10.0),
            sample(Kind::SearchText, None, 30_000.0),
        ];
        let info = RunInfo {
            label: "t".into(),
            url: "http://127.0.0.1:1".into(),
            concurrency: 2,
            seed: 42,
            mix: vec![(Kind::Analyze, 1), (Kind::SearchText, 1)],
            elapsed_s: 2.0,
            cancelled: false,
        };
        let r = Report::build(info, &samples);
        assert_eq!(r.overall.requests, 4);
        assert_eq!(r.overall.status_counts, BTreeMap::from([("200".into(), 2), ("503".into(), 1)]));
        assert_eq!(r.overall.errors.timeout, 1);
        assert_eq!(r.overall.retry_after_on_503, 1);
        assert_eq!(r.overall.rate_503, 0.25);
        assert_eq!(r.overall.error_codes, BTreeMap::from([("503 overloaded".into(), 1)]));
        // The timeout has no response, so it is in no latency group.
        assert_eq!(r.overall.latency_ms.all.as_ref().unwrap().count, 3);
        assert_eq!(r.overall.latency_ms.ok_2xx.as_ref().unwrap().max, 100.0);
        assert_eq!((r.throughput_rps, r.ok_throughput_rps), (2.0, 1.0));
        assert_eq!(r.by_kind["analyze"].requests, 2);
        assert_eq!(r.by_kind["search_text"].latency_ms.ok_2xx.as_ref().unwrap().p50, 10.0);
        assert_eq!(r.by_status_class["5xx"].p99, 1.0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["requests"], 4, "the run-wide group is flattened to the top level");
        assert!(r.table().contains("503 rate 25.0%"));
    }
}
