//! The closed loop: `concurrency` clients, each sending its next request when the previous one
//! ends, until a deadline or a request budget runs out. Kinds, photos and queries are drawn
//! from a per-client generator seeded from `--seed`, so runs are repeatable request for request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Client, Outcome};
use crate::mix::{Mix, Rng};
use crate::payload::Payloads;
use crate::report::Sample;

/// What every client shares.
pub struct Ctx {
    pub authority: String,
    pub timeout: Duration,
    pub mix: Mix,
    pub payloads: Payloads,
    pub seed: u64,
}

/// When a phase ends: at its limit, or early when `cancel` is set (SIGINT/SIGTERM), in which
/// case requests in flight still finish and the report covers what was done.
#[derive(Clone)]
pub struct Stop {
    pub limit: Limit,
    pub cancel: Arc<AtomicBool>,
}

#[derive(Clone)]
pub enum Limit {
    /// No new request starts after this instant (requests in flight finish and count).
    At(Instant),
    /// This many requests in all, shared by the clients.
    Requests(Arc<AtomicU64>),
}

impl Stop {
    pub fn at(deadline: Instant, cancel: Arc<AtomicBool>) -> Stop {
        Stop { limit: Limit::At(deadline), cancel }
    }

    pub fn requests(n: u64, cancel: Arc<AtomicBool>) -> Stop {
        Stop { limit: Limit::Requests(Arc::new(AtomicU64::new(n))), cancel }
    }

    /// Whether the client may start another request (and, for a request count, takes one).
    fn claim(&self) -> bool {
        if self.cancel.load(Ordering::Relaxed) {
            return false;
        }
        match &self.limit {
            Limit::At(deadline) => Instant::now() < *deadline,
            Limit::Requests(left) => {
                left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
            }
        }
    }
}

/// Live counters for the progress line on stderr.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub ok: AtomicU64,
    pub unavailable: AtomicU64,
    pub other: AtomicU64,
    pub errors: AtomicU64,
}

impl Progress {
    fn count(&self, outcome: &Outcome) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Response { status: 200..=299, .. } => &self.ok,
            Outcome::Response { status: 503, .. } => &self.unavailable,
            Outcome::Response { .. } => &self.other,
            _ => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn line(&self, elapsed: Duration) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{:>6.0} s: {} done, 2xx {}, 503 {}, other {}, errors {}",
            elapsed.as_secs_f64(),
            get(&self.done),
            get(&self.ok),
            get(&self.unavailable),
            get(&self.other),
            get(&self.errors)
        )
    }
}

/// Runs one phase with `concurrency` clients; returns every sample (in no particular order).
/// `stream` separates the warm-up's random sequence from the measured run's.
pub async fn phase(ctx: Arc<Ctx>, progress: Arc<Progress>, concurrency: usize, stop: Stop, stream: u64) -> Vec<Sample> {
    let mut tasks = Vec::with_capacity(concurrency);
    for id in 0..concurrency as u64 {
        let (ctx, progress, stop) = (ctx.clone(), progress.clone(), stop.clone());
        let seed = ctx.seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (id + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.push(tokio::spawn(client_loop(ctx, progress, stop, Rng::new(seed))));
    }
    let mut samples = Vec::new();
    for task in tasks {
        // A client task only ends by returning (none is ever aborted); a panic there is a bug
        // worth surfacing, with its own message.
        match task.await {
            Ok(client) => samples.extend(client),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    samples
}

async fn client_loop(ctx: Arc<Ctx>, progress: Arc<Progress>, stop: Stop, mut rng: Rng) -> Vec<Sample> {
    let mut client = Client::new(&ctx.authority, ctx.timeout);
    let mut samples = Vec::new();
    while stop.claim() {
        let kind = ctx.mix.pick(&mut rng);
        let request = ctx.payloads.prepare(kind, &mut rng);
        let (outcome, latency) = client.send(&request).await;
        progress.count(&outcome);
        if outcome == Outcome::Connect {
            // The server is down or not listening: do not spin on refused connections.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        samples.push(Sample { kind, outcome, latency_ms: latency.as_secs_f64() * 1e3 });
    }
    samples
}
