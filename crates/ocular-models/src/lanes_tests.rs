use std::sync::Arc;
use std::thread;

use super::*;

/// A job of `rows` rows whose input is `value`; `key` stands for the non-batch input shape.
struct Job {
    rows: usize,
    key: u32,
    value: i64,
}

impl Batchable for Job {
    /// (its own answer, size of the batch it ran in) or an error string.
    type Output = Result<(i64, usize), String>;
    fn rows(&self) -> usize {
        self.rows
    }
    fn joins(&self, first: &Self) -> bool {
        self.key == first.key
    }
}

/// Answers `value * 10 + key`, records every batch's keys, and panics on value 13.
#[derive(Default)]
struct Fake {
    batches: Vec<Vec<u32>>,
}

impl Runner for Fake {
    type Job = Job;
    fn run(&mut self, jobs: Vec<Job>) -> Vec<Result<(i64, usize), String>> {
        assert!(jobs.iter().all(|j| j.value != 13), "boom");
        self.batches.push(jobs.iter().map(|j| j.key).collect());
        let n = jobs.len();
        jobs.iter().map(|j| Ok((j.value * 10 + i64::from(j.key), n))).collect()
    }
    fn panicked(&self) -> Result<(i64, usize), String> {
        Err("panicked".into())
    }
}

fn job(key: u32, value: i64) -> Job {
    Job { rows: 1, key, value }
}

/// Submits `jobs` from one thread each while the runner is held, waits until all are queued,
/// releases the runner and returns each job's output in submission order.
fn submit_queued(lane: &Arc<Lane<Fake>>, jobs: Vec<Job>) -> Vec<Result<(i64, usize), String>> {
    let n = jobs.len();
    let guard = lane.hold();
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|j| {
            let lane = lane.clone();
            thread::spawn(move || lane.submit(j))
        })
        .collect();
    while lane.queued() < n {
        thread::yield_now();
    }
    drop(guard);
    handles.into_iter().map(|h| h.join().expect("submitter")).collect()
}

#[test]
fn a_lone_job_runs_at_once_as_a_batch_of_one() {
    let lane = Lane::new(Fake::default(), 16);
    // With nobody else queued, submit returns its own answer from a batch of one: it never
    // waits for company (if it did, this call would never return).
    assert_eq!(lane.submit(job(1, 4)), Ok((41, 1)));
    assert_eq!(lane.submit(job(2, 5)), Ok((52, 1)));
    assert_eq!(lane.counts(), LaneCounts { batches: 2, jobs: 2, largest: 1 });
    assert_eq!(lane.queued(), 0);
}

#[test]
fn queued_jobs_form_one_batch_and_each_gets_its_own_answer() {
    let lane = Arc::new(Lane::new(Fake::default(), 16));
    let out = submit_queued(&lane, (0..6).map(|v| job(7, v)).collect());
    for (v, o) in out.iter().enumerate() {
        assert_eq!(*o, Ok((v as i64 * 10 + 7, 6)), "job {v}");
    }
    assert_eq!(lane.counts(), LaneCounts { batches: 1, jobs: 6, largest: 6 });
}

#[test]
fn jobs_of_different_shapes_never_share_a_batch() {
    let lane = Arc::new(Lane::new(Fake::default(), 16));
    let keys = [1, 2, 1, 2, 1];
    let out = submit_queued(&lane, keys.iter().enumerate().map(|(v, &k)| job(k, v as i64)).collect());
    for (v, (o, k)) in out.iter().zip(keys).enumerate() {
        assert_eq!(o.as_ref().map(|(a, _)| *a), Ok(v as i64 * 10 + i64::from(k)));
    }
    let batches = lane.with_runner(|r| r.batches.clone());
    assert!(batches.iter().all(|b| b.iter().all(|k| *k == b[0])), "{batches:?}");
    let mut sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 3]);
}

#[test]
fn max_rows_bounds_a_batch_and_a_larger_job_runs_alone() {
    let lane = Arc::new(Lane::new(Fake::default(), 4));
    let mut jobs: Vec<Job> = (0..6).map(|v| job(3, v)).collect();
    jobs.push(Job { rows: 9, key: 3, value: 100 });
    let out = submit_queued(&lane, jobs);
    assert!(out.iter().all(|o| o.as_ref().is_ok_and(|(_, n)| *n <= 4)));
    assert_eq!(out[6], Ok((1003, 1)));
    let counts = lane.counts();
    assert_eq!((counts.jobs, counts.largest), (7, 4));
}

#[test]
fn a_panicking_batch_answers_every_job_and_the_lane_keeps_working() {
    let lane = Arc::new(Lane::new(Fake::default(), 16));
    let out = submit_queued(&lane, vec![job(1, 12), job(1, 13), job(1, 14)]);
    assert!(out.iter().all(|o| o.as_ref().err().map(String::as_str) == Some("panicked")), "{out:?}");
    assert_eq!(lane.submit(job(1, 2)), Ok((21, 1)));
}
