//! At most N fetches in flight per host.
//!
//! A bulk import of 10 000 products usually points at one image host; firing all of them at
//! once looks like an attack to that host (and gets the importer rate-limited or banned) and
//! ties up this process's sockets. Each host gets a semaphore; fetches to different hosts do
//! not wait on each other.
//!
//! The map is bounded by construction: it holds `Weak` references, so a host's semaphore is
//! freed when its last fetch (or waiter) finishes, and dead entries are swept whenever the map
//! grows past a threshold. Its size is therefore about the number of hosts with fetches in
//! flight, not the number of hosts ever seen.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Sweep dead entries when the map reaches this many (and then at twice the survivors).
const SWEEP_AT: usize = 1024;

pub(crate) struct HostLimits {
    per_host: usize,
    state: Mutex<State>,
}

struct State {
    hosts: HashMap<String, Weak<Semaphore>>,
    sweep_at: usize,
}

/// Held for the duration of one hop; dropping it lets the next fetch to the host start.
pub(crate) struct HostPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl HostLimits {
    pub(crate) fn new(per_host: usize) -> Self {
        let state = State { hosts: HashMap::new(), sweep_at: SWEEP_AT };
        Self { per_host: per_host.max(1), state: Mutex::new(state) }
    }

    /// Waits for a slot on `host` (cancel-safe: dropping the future gives up the wait).
    pub(crate) async fn acquire(&self, host: &str) -> HostPermit {
        let semaphore = self.semaphore(host);
        // `acquire_owned` fails only on a closed semaphore, and these are never closed.
        HostPermit { _permit: semaphore.acquire_owned().await.ok() }
    }

    fn semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut state = self.state.lock();
        if let Some(live) = state.hosts.get(host).and_then(Weak::upgrade) {
            return live;
        }
        if state.hosts.len() >= state.sweep_at {
            state.hosts.retain(|_, weak| weak.strong_count() > 0);
            state.sweep_at = SWEEP_AT.max(state.hosts.len() * 2);
        }
        let semaphore = Arc::new(Semaphore::new(self.per_host));
        state.hosts.insert(host.to_owned(), Arc::downgrade(&semaphore));
        semaphore
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().hosts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_each_host_separately() {
        let limits = HostLimits::new(2);
        let a1 = limits.acquire("a.example").await;
        let _a2 = limits.acquire("a.example").await;
        // A third permit for `a` must wait; `b` is independent.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), limits.acquire("a.example")).await;
        assert!(waiting.is_err(), "third fetch to the same host must wait");
        let _b = limits.acquire("b.example").await;
        drop(a1);
        let third = tokio::time::timeout(std::time::Duration::from_secs(1), limits.acquire("a.example")).await;
        assert!(third.is_ok(), "a released slot is handed on");
    }

    #[tokio::test]
    async fn the_map_does_not_grow_with_hosts_seen() {
        let limits = HostLimits::new(1);
        for i in 0..10 * SWEEP_AT {
            let _permit = limits.acquire(&format!("host{i}.example")).await;
        }
        assert!(limits.tracked() <= SWEEP_AT, "tracked {} hosts", limits.tracked());
    }

    #[tokio::test]
    async fn a_zero_limit_still_allows_one() {
        let limits = HostLimits::new(0);
        let permit = tokio::time::timeout(std::time::Duration::from_secs(1), limits.acquire("a.example")).await;
        assert!(permit.is_ok());
    }
}
