//! Admission control: refuse work that cannot start soon instead of queueing without bound.
//!
//! The services ocular replaces had no bound: a burst queued requests until memory ran out
//! and the kernel killed the process, taking every client with it. Here each inference first
//! takes a *queue* permit with `try_acquire` (no waiting: a full queue is an immediate
//! `Overloaded`, answered 503 + `Retry-After`), then waits a bounded time for one of
//! `max_concurrency` *run* permits. Admitted requests therefore see bounded latency and the
//! process's peak memory is bounded by the number of permits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::budget::{BudgetError, MemoryBudget, Reservation};

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("the server is at capacity; retry in {retry_after_s} s")]
    Overloaded { retry_after_s: u64 },
    #[error("no inference slot became free within {waited_ms} ms; retry in {retry_after_s} s")]
    QueueTimeout { waited_ms: u64, retry_after_s: u64 },
    #[error(transparent)]
    Memory(#[from] BudgetError),
}

impl AdmissionError {
    /// Seconds to wait before retrying; `None` when retrying cannot help.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            AdmissionError::Overloaded { retry_after_s }
            | AdmissionError::QueueTimeout { retry_after_s, .. }
            | AdmissionError::Memory(BudgetError::Exceeded { retry_after_s, .. }) => Some(*retry_after_s),
            AdmissionError::Memory(BudgetError::TooLarge { .. }) => None,
        }
    }

    /// Stable code for the API's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::Overloaded { .. } | AdmissionError::QueueTimeout { .. } => "overloaded",
            AdmissionError::Memory(BudgetError::Exceeded { .. }) => "memory_budget_exceeded",
            AdmissionError::Memory(BudgetError::TooLarge { .. }) => "image_exceeds_memory_budget",
        }
    }

    /// The request itself is at fault (it can never fit), rather than the current load.
    pub fn is_client_error(&self) -> bool {
        matches!(self, AdmissionError::Memory(BudgetError::TooLarge { .. }))
    }
}

/// Shared admission gate for all inference work.
#[derive(Debug, Clone)]
pub struct Admission {
    queue: Arc<Semaphore>,
    run: Arc<Semaphore>,
    max_wait: Duration,
    max_concurrency: usize,
    max_queue: usize,
    memory: MemoryBudget,
}

/// Held for the duration of one admitted inference. Fields drop in order: the memory goes
/// back before the slot, so the next request admitted sees it free.
#[derive(Debug)]
pub struct Permit {
    _memory: Reservation,
    _run: OwnedSemaphorePermit,
    _queue: OwnedSemaphorePermit,
}

impl Admission {
    /// `max_concurrency` inferences run at once; up to `max_queue` more wait at most `max_wait`.
    pub fn new(max_concurrency: usize, max_queue: usize, max_wait: Duration) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Self {
            queue: Arc::new(Semaphore::new(max_concurrency + max_queue)),
            run: Arc::new(Semaphore::new(max_concurrency)),
            max_wait,
            max_concurrency,
            max_queue,
            memory: MemoryBudget::unlimited(),
        }
    }

    /// The same gate, also reserving each request's memory from `memory`.
    pub fn with_memory_budget(mut self, memory: MemoryBudget) -> Self {
        self.memory = memory;
        self
    }

    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    /// Admits a request that needs no memory reservation (tests, tiny models).
    pub async fn admit(&self) -> Result<Permit, AdmissionError> {
        self.admit_reserving(0).await
    }

    /// Admits a request whose peak extra memory is estimated at `bytes` (see
    /// [`crate::estimate`]). The slot and the memory are both waited for within one
    /// `max_wait`, so a request never waits longer than a queued one.
    pub async fn admit_reserving(&self, bytes: u64) -> Result<Permit, AdmissionError> {
        let retry_after_s = 1;
        let started = tokio::time::Instant::now();
        let queue = self.queue.clone().try_acquire_owned().map_err(|_| AdmissionError::Overloaded { retry_after_s })?;
        let run = tokio::time::timeout(self.max_wait, self.run.clone().acquire_owned())
            .await
            .map_err(|_| AdmissionError::QueueTimeout { waited_ms: self.max_wait.as_millis() as u64, retry_after_s })?
            // The semaphores are never closed, so acquire cannot fail; treat it as overload anyway.
            .map_err(|_| AdmissionError::Overloaded { retry_after_s })?;
        let left = self.max_wait.saturating_sub(started.elapsed());
        let memory = self.memory.reserve(bytes, left).await?;
        Ok(Permit { _memory: memory, _run: run, _queue: queue })
    }

    /// Refuses at once, as [`Self::admit_reserving`] would, when the queue is full right now;
    /// takes nothing. Handlers call it before reading an upload, so a server at capacity
    /// answers 503 without first receiving 20 MB it would refuse anyway. (Holding a queue slot
    /// through the upload instead would let slow uploaders block inference.)
    pub fn check_room(&self) -> Result<(), AdmissionError> {
        if self.queue.available_permits() == 0 {
            return Err(AdmissionError::Overloaded { retry_after_s: 1 });
        }
        Ok(())
    }

    /// Requests running plus waiting right now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrency + self.max_queue - self.queue.available_permits()
    }

    pub fn capacity(&self) -> (usize, usize) {
        (self.max_concurrency, self.max_queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_seen_before_admission() {
        let gate = Admission::new(1, 0, Duration::from_secs(5));
        assert!(gate.check_room().is_ok());
        let running = gate.admit().await.expect("runs");
        assert_eq!(gate.check_room().map_err(|e| e.code()), Err("overloaded"));
        drop(running);
        assert!(gate.check_room().is_ok());
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let gate = Admission::new(1, 1, Duration::from_secs(5));
        let running = gate.admit().await.expect("first runs");
        let gate2 = gate.clone();
        let waiting = tokio::spawn(async move { gate2.admit().await.map(|_| ()) });
        tokio::task::yield_now().await;
        while gate.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let third = gate.admit().await;
        assert!(matches!(third, Err(AdmissionError::Overloaded { .. })));
        assert!(started.elapsed() < Duration::from_secs(1), "refusal must not wait");
        drop(running);
        waiting.await.expect("join").expect("second is admitted once the first ends");
    }

    #[tokio::test]
    async fn waiting_too_long_times_out() {
        let gate = Admission::new(1, 4, Duration::from_millis(20));
        let _running = gate.admit().await.expect("first runs");
        let second = gate.admit().await;
        assert!(matches!(second, Err(AdmissionError::QueueTimeout { .. })));
        assert_eq!(gate.in_flight(), 1, "a timed-out request gives its queue place back");
    }

    #[tokio::test]
    async fn memory_is_reserved_after_the_slot_and_given_back_with_it() {
        let budget = MemoryBudget::new(Some(1_000), crate::budget::LimitSource::Config, Arc::new(|| Some(0)));
        let gate = Admission::new(4, 4, Duration::from_millis(30)).with_memory_budget(budget.clone());
        let big = gate.admit_reserving(800).await.expect("fits");
        let err = gate.admit_reserving(300).await.expect_err("only 200 bytes left");
        assert_eq!((err.code(), err.retry_after_s()), ("memory_budget_exceeded", Some(1)));
        assert_eq!(gate.in_flight(), 1, "the refused request left its slot");
        let err = gate.admit_reserving(1_001).await.expect_err("larger than the budget");
        assert_eq!(
            (err.code(), err.retry_after_s(), err.is_client_error()),
            ("image_exceeds_memory_budget", None, true)
        );
        drop(big);
        assert_eq!(budget.status().reserved_bytes, 0);
        gate.admit_reserving(300).await.expect("fits once the first is done");
    }
}
