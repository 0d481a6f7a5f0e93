//! The memory budget: admit a request only if the memory it will need is there.
//!
//! Bounding concurrency bounds memory only in the average case: ten 12-megapixel uploads at once
//! need far more than ten thumbnails, and the services ocular replaces were killed by the kernel
//! exactly then. So each request states its peak extra cost before it runs (see [`crate::estimate`],
//! derived from the code and measured by `examples/request_peak.rs`) and reserves it here. A
//! request fits when
//!
//! `baseline + reserved + cost <= limit`
//!
//! where `reserved` is the sum of the running requests' reservations and `baseline` is what the
//! process uses besides them, measured rather than assumed (model weights, indexes, buffered
//! upload bodies, allocator free lists): the larger of the usage sampled the last time nothing
//! was reserved and `usage now − reserved`. The second term catches estimates that were too low
//! and memory the allocator keeps after requests end, so the budget holds even when the
//! estimates are off. A request that does not fit waits (bounded, like the queue) for
//! reservations to be released, then gets [`BudgetError::Exceeded`] (503 + Retry-After);
//! one that could not fit even in an idle process gets [`BudgetError::TooLarge`] at once.
//!
//! Reservations are released by `Drop`, so a panicking or cancelled request gives its share
//! back too. Without a limit the budget only counts (for `/health` and `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Where the limit came from, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitSource {
    /// `--memory-budget` / `OCULAR_MEMORY_BUDGET`.
    Config,
    /// The process's cgroup memory limit, minus a margin.
    Cgroup,
    /// No limit: reservations are only counted.
    None,
}

/// Current memory use of the process in bytes (RSS in production; anything in tests).
pub type UsageFn = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "not enough memory for this request now: it needs {needed} bytes, {available} are free within the \
         memory budget after waiting {waited_ms} ms; retry in {retry_after_s} s"
    )]
    Exceeded { needed: u64, available: u64, waited_ms: u64, retry_after_s: u64 },
    #[error(
        "this request needs about {needed} bytes of memory, more than the {capacity} bytes this server can ever \
         give one request (memory budget {limit} bytes); send a smaller image"
    )]
    TooLarge { needed: u64, capacity: u64, limit: u64 },
}

struct Inner {
    limit: Option<u64>,
    source: LimitSource,
    reserved: Mutex<u64>,
    /// Usage sampled the last time `reserved` was zero.
    idle_usage: AtomicU64,
    /// The lowest of those samples (`u64::MAX` before the first): what the process needs with
    /// no request running. Whether a request could *ever* fit is judged against this, not the
    /// latest sample: under steady load `reserved` rarely returns to zero, and a sample taken
    /// in a busy moment would otherwise turn "not now" (503, retry) into "never" (413).
    floor_usage: AtomicU64,
    released: Notify,
    usage: UsageFn,
    /// When a refused request last made malloc give its free pages back (see [`MemoryBudget::reserve`]).
    last_trim: Mutex<Option<Instant>>,
}

/// Shared byte budget; cheap to clone.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget").field("limit", &self.inner.limit).field("source", &self.inner.source).finish()
    }
}

/// Bytes held for one running request; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// What `/health` and `/metrics` show.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    pub limit_bytes: Option<u64>,
    pub source: LimitSource,
    pub reserved_bytes: u64,
    pub usage_bytes: Option<u64>,
    /// What admission assumes the process uses besides reservations.
    pub baseline_bytes: u64,
}

/// How often a waiting request looks again even without a release: memory can also free up
/// outside the budget (an import ending, the allocator returning pages).
const RECHECK: Duration = Duration::from_millis(50);

/// Shortest interval between two trims asked for by refused requests.
const TRIM_EVERY: Duration = Duration::from_millis(250);

impl MemoryBudget {
    pub fn new(limit: Option<u64>, source: LimitSource, usage: UsageFn) -> Self {
        let idle = usage().unwrap_or(0);
        let source = if limit.is_none() { LimitSource::None } else { source };
        Self {
            inner: Arc::new(Inner {
                limit,
                source,
                reserved: Mutex::new(0),
                idle_usage: AtomicU64::new(idle),
                floor_usage: AtomicU64::new(u64::MAX),
                released: Notify::new(),
                usage,
                last_trim: Mutex::new(None),
            }),
        }
    }

    /// A budget that only counts.
    pub fn unlimited() -> Self {
        Self::new(None, LimitSource::None, Arc::new(|| None))
    }

    pub fn limit(&self) -> Option<u64> {
        self.inner.limit
    }

    fn baseline(&self, reserved: u64) -> u64 {
        let idle = self.inner.idle_usage.load(Ordering::Relaxed);
        let now = (self.inner.usage)().unwrap_or(0);
        idle.max(now.saturating_sub(reserved))
    }

    pub fn status(&self) -> BudgetStatus {
        let reserved = *self.inner.reserved.lock();
        BudgetStatus {
            limit_bytes: self.inner.limit,
            source: self.inner.source,
            reserved_bytes: reserved,
            usage_bytes: (self.inner.usage)(),
            baseline_bytes: self.baseline(reserved),
        }
    }

    /// Reserves `bytes` now, or says why not. `Err(Ok(available))` means "not now".
    fn try_reserve(&self, bytes: u64) -> Result<Reservation, Result<u64, BudgetError>> {
        let mut reserved = self.inner.reserved.lock();
        if *reserved == 0
            && let Some(u) = (self.inner.usage)()
        {
            // Nothing is reserved: what the process uses now is its idle usage.
            self.record_idle(u);
        }
        if let Some(limit) = self.inner.limit {
            let floor = self.inner.floor_usage.load(Ordering::Relaxed);
            let idle = if floor == u64::MAX { self.inner.idle_usage.load(Ordering::Relaxed) } else { floor };
            let capacity = limit.saturating_sub(idle);
            if bytes > capacity {
                return Err(Err(BudgetError::TooLarge { needed: bytes, capacity, limit }));
            }
            let available = limit.saturating_sub(self.baseline(*reserved)).saturating_sub(*reserved);
            if bytes > available {
                return Err(Ok(available));
            }
        }
        *reserved += bytes;
        Ok(Reservation { budget: self.clone(), bytes })
    }

    /// Reserves `bytes`, waiting at most `max_wait` for other requests to release theirs.
    pub async fn reserve(&self, bytes: u64, max_wait: Duration) -> Result<Reservation, BudgetError> {
        let started = Instant::now();
        let deadline = started + max_wait;
        loop {
            // Registered before trying, so a release between the try and the wait is not missed.
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let available = match self.try_reserve(bytes) {
                Ok(r) => return Ok(r),
                Err(_) if self.reclaim() => continue,
                Err(Err(e)) => return Err(e),
                Err(Ok(available)) => available,
            };
            let now = Instant::now();
            if now >= deadline {
                let waited_ms = now.duration_since(started).as_millis() as u64;
                return Err(BudgetError::Exceeded { needed: bytes, available, waited_ms, retry_after_s: 1 });
            }
            let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), released).await;
        }
    }

    /// Before refusing, hand malloc's free pages back to the system and let the caller look
    /// again. Usage is measured, so memory the allocator keeps after earlier requests counts
    /// against the budget: under a 256 MiB cgroup it grew the baseline by ~60 MiB within a minute
    /// of load and refused every analysis. At most every [`TRIM_EVERY`], so a burst of refusals
    /// does not turn into a burst of `malloc_trim` calls; true when the caller should retry.
    fn reclaim(&self) -> bool {
        {
            let mut last = self.inner.last_trim.lock();
            if last.is_some_and(|t| t.elapsed() < TRIM_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        crate::session::release_free_memory();
        true
    }

    fn record_idle(&self, usage: u64) {
        self.inner.idle_usage.store(usage, Ordering::Relaxed);
        self.inner.floor_usage.fetch_min(usage, Ordering::Relaxed);
    }

    fn release(&self, bytes: u64) {
        let mut reserved = self.inner.reserved.lock();
        *reserved = reserved.saturating_sub(bytes);
        if *reserved == 0 {
            // The only moment "usage" means "everything but requests": remember it.
            if let Some(u) = (self.inner.usage)() {
                self.record_idle(u);
            }
        }
        drop(reserved);
        self.inner.released.notify_waiters();
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
