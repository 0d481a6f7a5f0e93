//! Lazy model loads inside the memory budget (issue 16, finding #14).
//!
//! Each slot already loads its own model once (single flight), but different models used to
//! load side by side: the first search and the first analysis after a lazy start load three
//! graphs at once, outside the request budget, and the team measured 474–488 MiB for that
//! against a 512 MiB deployment. Now every slot of one registry passes one [`LoadGate`]: loads
//! run one at a time (the peak is the resident set plus the largest single load, as with
//! `Registry::preload_all`), and each reserves [`load_cost`] in the request memory budget
//! before it starts, so requests admitted meanwhile see the load's memory as taken. The
//! reservation ends with the load; what the model keeps becomes part of the budget's measured
//! baseline.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::budget::{MemoryBudget, Reservation};
use crate::error::ModelError;

/// How long a load waits for the budget to have room before the request that asked for it
/// gets 503: long enough for the running requests to finish, short of a client's timeout.
pub const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// Peak extra memory of loading a model whose weight files hold `weight_bytes`: the resident
/// weights plus the file buffer and the optimiser's copies that exist only while loading.
/// From the README's measurement of the fp32 skin model (86 MB of weights): idle 244 MB, load
/// peak 370 MB, so a load adds ~211 MB before it settles, 2.5 times its weights.
pub fn load_cost(weight_bytes: u64) -> u64 {
    (weight_bytes.saturating_mul(5) / 2).saturating_add(16 << 20)
}

/// Shared by every slot of one registry.
#[derive(Default)]
pub struct LoadGate {
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    budget: Mutex<Option<MemoryBudget>>,
}

/// Held while a load runs: the turn and the reservation, both given back on drop.
pub struct LoadTurn {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    _reservation: Option<Reservation>,
}

impl LoadGate {
    /// Makes every later load reserve its memory in `budget` (the server's request budget).
    pub fn set_budget(&self, budget: MemoryBudget) {
        *self.budget.lock() = Some(budget);
    }

    /// Waits for this registry's turn to load, then reserves `cost` bytes (at most all the room
    /// the budget has). A budget that has no room within [`BUDGET_WAIT`] is
    /// [`ModelError::Memory`]: the request fails with 503, the model is not marked failed, and
    /// the next request tries again.
    pub async fn enter(&self, model: &str, cost: u64) -> Result<LoadTurn, ModelError> {
        let turn = self.one_at_a_time.clone().lock_owned().await;
        let budget = self.budget.lock().clone();
        let reservation = match budget {
            Some(b) => {
                // A load larger than all the room the budget has even when idle would be refused
                // forever and the model never served: it takes all that room instead, i.e. it
                // waits until no request holds memory and runs alone.
                // The room is a snapshot of measured usage, which the reservation measures
                // again: asking for all of it would fail on the next page the process touches
                // and wait out BUDGET_WAIT, so 1/16 of it is left as slack.
                let st = b.status();
                let room = st.limit_bytes.map_or(cost, |l| l.saturating_sub(st.baseline_bytes));
                let room = room - room / 16;
                Some(
                    b.reserve(cost.min(room), BUDGET_WAIT)
                        .await
                        .map_err(|source| ModelError::Memory { model: model.to_string(), source })?,
                )
            }
            None => None,
        };
        Ok(LoadTurn { _turn: turn, _reservation: reservation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::LimitSource;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_models_never_load_at_once_and_each_holds_its_reservation() {
        let budget = MemoryBudget::new(Some(10 << 30), LimitSource::Config, Arc::new(|| Some(0)));
        let gate = Arc::new(LoadGate::default());
        gate.set_budget(budget.clone());
        let first = gate.enter("a", 300 << 20).await.expect("first turn");
        assert_eq!(budget.status().reserved_bytes, 300 << 20, "reserved before the load runs");
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter("b", 200 << 20).await.map(|_turn| ()) }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished(), "model b waits while model a loads");
        assert_eq!(budget.status().reserved_bytes, 300 << 20, "b reserved nothing yet");
        drop(first);
        second.await.expect("join").expect("b's turn");
        assert_eq!(budget.status().reserved_bytes, 0, "both reservations given back");
    }

    #[test]
    fn a_load_costs_its_weights_two_and_a_half_times_over() {
        assert_eq!(load_cost(86 << 20), (215 << 20) + (16 << 20));
        assert!(load_cost(u64::MAX) >= u64::MAX / 2, "saturates, never wraps");
    }
}
