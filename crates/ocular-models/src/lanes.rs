//! Inference lanes: one model, one session, every request either running alone on all cores or
//! batched with whatever is already waiting — never waiting for a batch to fill.
//!
//! The services ocular replaces, and ocular before this module, put each session behind a
//! mutex: ten concurrent photo searches ran ten single-image inferences one after the other,
//! each paying the per-run overhead of ONNX Runtime (thread-pool wake-ups, small-matrix kernels
//! that cannot fill the cores) while nine requests sat in the lock. Several sessions per model
//! would hold the weights several times and fight over the same cores.
//!
//! A [`Lane`] is *flat combining* (Hendler, Incze, Shavit, Tzafrir, "Flat combining and the
//! synchronization-parallelism tradeoff", SPAA 2010) over the model's one runner: a request
//! enqueues its job and takes the runner's lock. Whoever holds the lock drains the queue — its
//! own job and every *compatible* job behind it (same input shapes but for the batch dimension,
//! up to `max_rows` rows) — runs them as one batch and hands each job its own result. So:
//!
//! - a lone request finds the lock free and the queue holding only itself: it runs at once, as
//!   a batch of one, with all of ONNX Runtime's intra-op threads (no timer, no batching window);
//! - under load, the requests that arrived while a batch was running form the next batch;
//! - the weights exist once, in the runner; there is no worker thread and no channel to size.
//!
//! Why not several `Run` calls on one session at once: `ort`'s `Session::run` takes `&mut self`,
//! its documentation says some ONNX Runtime internals behind `Run` are not thread-safe, and on
//! the few cores this service targets one batched run already keeps every core busy.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// A unit of work that can join a batch.
pub trait Batchable: Send {
    type Output: Send;
    /// Rows this job adds to a batch (its batch dimension).
    fn rows(&self) -> usize;
    /// Whether this job can run in one batch with `first` (equal shapes but for the rows).
    fn joins(&self, first: &Self) -> bool;
}

/// What runs a batch: owns the model (its weights) and is only ever used by one thread at a time.
pub trait Runner: Send {
    type Job: Batchable;
    /// Runs `jobs` as one batch; returns exactly one output per job, in order.
    fn run(&mut self, jobs: Vec<Self::Job>) -> Vec<<Self::Job as Batchable>::Output>;
    /// The output each job of a batch gets when [`Runner::run`] panicked.
    fn panicked(&self) -> <Self::Job as Batchable>::Output;
}

enum Ticket<J: Batchable> {
    Queued(J),
    Running,
    Done(J::Output),
}

/// Counters of what a lane ran: batches, rows, and the largest batch in jobs.
#[derive(Debug, Default)]
pub struct LaneStats {
    batches: AtomicU64,
    jobs: AtomicU64,
    largest: AtomicUsize,
}

/// A snapshot of [`LaneStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LaneCounts {
    /// Inference runs.
    pub batches: u64,
    /// Requests answered by them.
    pub jobs: u64,
    /// Most requests answered by one run.
    pub largest: usize,
}

type Shared<J> = Arc<Mutex<Ticket<J>>>;

/// Inference runs of every lane in the process, for "has the process been idle?" checks.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// How many batches all lanes of this process have run so far.
pub fn inference_runs() -> u64 {
    RUNS.load(Ordering::Relaxed)
}

pub struct Lane<R: Runner> {
    runner: Mutex<R>,
    queue: Mutex<VecDeque<Shared<R::Job>>>,
    /// Read at each batch, so a cap changed on a loaded model applies to the next batch.
    max_rows: AtomicUsize,
    stats: LaneStats,
}

impl<R: Runner> Lane<R> {
    /// A lane over `runner` whose batches hold at most `max_rows` rows (a single job larger than
    /// that still runs, alone).
    pub fn new(runner: R, max_rows: usize) -> Self {
        Self {
            runner: Mutex::new(runner),
            queue: Mutex::new(VecDeque::new()),
            max_rows: AtomicUsize::new(max_rows.max(1)),
            stats: LaneStats::default(),
        }
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows.load(Ordering::Relaxed)
    }

    /// Changes the most rows a batch may hold (at least 1).
    pub fn set_max_rows(&self, rows: usize) {
        self.max_rows.store(rows.max(1), Ordering::Relaxed);
    }

    /// Runs `job`, alone or batched with others, and returns its own output.
    pub fn submit(&self, job: R::Job) -> <R::Job as Batchable>::Output {
        let ticket = Arc::new(Mutex::new(Ticket::Queued(job)));
        self.queue.lock().push_back(ticket.clone());
        loop {
            let mut runner = self.runner.lock();
            // A leader fills every ticket of its batch before it lets the runner go, so with
            // the runner held a ticket is either done or still queued.
            if let Some(out) = take_done(&ticket) {
                return out;
            }
            let batch = self.take_batch();
            if batch.is_empty() {
                continue;
            }
            let (tickets, jobs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let n = jobs.len();
            let outputs = match std::panic::catch_unwind(AssertUnwindSafe(|| runner.run(jobs))) {
                Ok(outputs) if outputs.len() == n => outputs,
                _ => (0..n).map(|_| runner.panicked()).collect(),
            };
            for (t, out) in tickets.iter().zip(outputs) {
                *t.lock() = Ticket::Done(out);
            }
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            RUNS.fetch_add(1, Ordering::Relaxed);
            self.stats.jobs.fetch_add(n as u64, Ordering::Relaxed);
            self.stats.largest.fetch_max(n, Ordering::Relaxed);
            drop(runner);
        }
    }

    /// The first queued job and every later one that joins it, within `max_rows`.
    fn take_batch(&self) -> Vec<(Shared<R::Job>, R::Job)> {
        let mut queue = self.queue.lock();
        let Some(first) = queue.pop_front() else { return Vec::new() };
        let Some(first_job) = take_queued(&first) else { return Vec::new() };
        let mut rows = first_job.rows();
        let max_rows = self.max_rows();
        let mut rest = VecDeque::with_capacity(queue.len());
        let mut joined = Vec::new();
        while let Some(t) = queue.pop_front() {
            let fits = match &*t.lock() {
                Ticket::Queued(j) => rows + j.rows() <= max_rows && j.joins(&first_job),
                _ => false,
            };
            if fits && let Some(j) = take_queued(&t) {
                rows += j.rows();
                joined.push((t, j));
            } else {
                rest.push_back(t);
            }
        }
        *queue = rest;
        let mut batch = Vec::with_capacity(1 + joined.len());
        batch.push((first, first_job));
        batch.extend(joined);
        batch
    }

    /// Jobs waiting now.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    pub fn counts(&self) -> LaneCounts {
        LaneCounts {
            batches: self.stats.batches.load(Ordering::Relaxed),
            jobs: self.stats.jobs.load(Ordering::Relaxed),
            largest: self.stats.largest.load(Ordering::Relaxed),
        }
    }

    /// Holds the runner: while the guard lives, every submitted job queues. For tests and
    /// benchmarks that need to form a batch on purpose.
    #[doc(hidden)]
    pub fn hold(&self) -> impl Drop + '_ {
        self.runner.lock()
    }

    /// The runner, for work outside batching (warm-up, inspection); waits for a running batch.
    pub fn with_runner<T>(&self, f: impl FnOnce(&mut R) -> T) -> T {
        f(&mut self.runner.lock())
    }
}

fn take_queued<J: Batchable>(t: &Shared<J>) -> Option<J> {
    let mut state = t.lock();
    match std::mem::replace(&mut *state, Ticket::Running) {
        Ticket::Queued(j) => Some(j),
        other => {
            *state = other;
            None
        }
    }
}

fn take_done<J: Batchable>(t: &Shared<J>) -> Option<J::Output> {
    let mut state = t.lock();
    match std::mem::replace(&mut *state, Ticket::Running) {
        Ticket::Done(out) => Some(out),
        other => {
            *state = other;
            None
        }
    }
}

#[cfg(test)]
#[path = "lanes_tests.rs"]
mod tests;
