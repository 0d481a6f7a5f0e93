//! Reservation logic of the memory budget, with a usage function the tests control.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;

/// A budget of `limit` bytes over a process that uses whatever `usage` holds.
fn budget(limit: u64, usage: u64) -> (MemoryBudget, Arc<AtomicU64>) {
    let usage = Arc::new(AtomicU64::new(usage));
    let read = usage.clone();
    (MemoryBudget::new(Some(limit), LimitSource::Config, Arc::new(move || Some(read.load(Ordering::SeqCst)))), usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_exceed_the_budget() {
    let (budget, _) = budget(1_000, 100);
    let held = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let (budget, held, peak) = (budget.clone(), held.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let bytes = 50 + (i * 37) % 250;
            let r = budget.reserve(bytes, Duration::from_secs(30)).await.expect("fits eventually");
            let now = held.fetch_add(bytes, Ordering::SeqCst) + bytes;
            peak.fetch_max(now, Ordering::SeqCst);
            for _ in 0..(i % 5) {
                tokio::task::yield_now().await;
            }
            held.fetch_sub(bytes, Ordering::SeqCst);
            drop(r);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 900, "reservations reached {peak} bytes of a 900-byte headroom");
    assert!(peak > 300, "several requests ran at once ({peak})");
    assert_eq!(budget.status().reserved_bytes, 0);
}

#[tokio::test]
async fn a_request_larger_than_the_idle_headroom_is_refused_at_once() {
    let (budget, _) = budget(1_000, 400);
    let started = std::time::Instant::now();
    let err = budget.reserve(601, Duration::from_secs(10)).await.expect_err("never fits");
    assert_eq!(err, BudgetError::TooLarge { needed: 601, capacity: 600, limit: 1_000 });
    assert!(started.elapsed() < Duration::from_secs(5), "refused without waiting");
    budget.reserve(600, Duration::ZERO).await.expect("exactly the headroom fits");
}

#[tokio::test]
async fn a_request_that_does_not_fit_now_waits_then_is_refused() {
    let (budget, _) = budget(1_000, 0);
    let _held = budget.reserve(700, Duration::ZERO).await.expect("first");
    let err = budget.reserve(400, Duration::from_millis(120)).await.expect_err("no room");
    match err {
        BudgetError::Exceeded { needed: 400, available: 300, waited_ms, retry_after_s: 1 } => {
            assert!(waited_ms >= 120, "{waited_ms}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_waiting_request_runs_once_another_releases() {
    let (budget, _) = budget(1_000, 0);
    let first = budget.reserve(700, Duration::ZERO).await.expect("first");
    let b = budget.clone();
    let waiting = tokio::spawn(async move { b.reserve(400, Duration::from_secs(30)).await.map(|r| r.bytes()) });
    tokio::task::yield_now().await;
    drop(first);
    assert_eq!(waiting.await.expect("join"), Ok(400));
}

#[tokio::test]
async fn panicking_and_cancelled_requests_give_their_share_back() {
    let (budget, _) = budget(1_000, 0);
    let b = budget.clone();
    let panicked = tokio::spawn(async move {
        let _r = b.reserve(500, Duration::ZERO).await.expect("fits");
        panic!("the model crashed");
    });
    assert!(panicked.await.is_err());
    assert_eq!(budget.status().reserved_bytes, 0, "released by unwinding");

    let b = budget.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cancelled = tokio::spawn(async move {
        let _r = b.reserve(800, Duration::ZERO).await.expect("fits");
        tx.send(()).ok();
        std::future::pending::<()>().await;
    });
    rx.await.expect("reserved");
    assert_eq!(budget.status().reserved_bytes, 800);
    cancelled.abort();
    assert!(cancelled.await.expect_err("aborted").is_cancelled());
    assert_eq!(budget.status().reserved_bytes, 0, "released when the request future is dropped");

    // A reservation still waiting when its request is dropped holds nothing.
    let _held = budget.reserve(900, Duration::ZERO).await.expect("fits");
    let waiting = budget.reserve(200, Duration::from_secs(30));
    assert!(tokio::time::timeout(Duration::from_millis(20), waiting).await.is_err());
    assert_eq!(budget.status().reserved_bytes, 900);
}

#[tokio::test]
async fn usage_beyond_the_reservations_counts_against_the_budget() {
    let (budget, usage) = budget(1_000, 200);
    let running = budget.reserve(100, Duration::ZERO).await.expect("fits");
    // The running request really uses 500 bytes, not the 100 it reserved.
    usage.store(200 + 500, Ordering::SeqCst);
    assert_eq!(budget.status().baseline_bytes, 600);
    // 1000 - 600 baseline - 100 reserved = 300 free, not 700.
    let err = budget.reserve(301, Duration::ZERO).await.expect_err("only 300 free");
    assert!(matches!(err, BudgetError::Exceeded { available: 300, .. }), "{err:?}");
    budget.reserve(300, Duration::ZERO).await.expect("300 fits");
    drop(running);
}

#[tokio::test]
async fn without_a_limit_reservations_are_only_counted() {
    let budget = MemoryBudget::unlimited();
    let r = budget.reserve(u64::MAX / 2, Duration::ZERO).await.expect("no limit");
    let status = budget.status();
    assert_eq!((status.limit_bytes, status.source, status.reserved_bytes), (None, LimitSource::None, u64::MAX / 2));
    drop(r);
    assert_eq!(budget.status().reserved_bytes, 0);
}

/// Under steady load nothing is ever unreserved for long, and the usage sampled in a busy
/// moment is high: a request that fits the quiet process must then wait (503, retry), not be
/// told it can never fit (413). Seen in a 256 MiB cgroup at 30 clients before the floor existed.
#[tokio::test]
async fn a_busy_moment_does_not_make_a_request_too_large_forever() {
    let (budget, usage) = budget(1_000, 300);
    drop(budget.reserve(100, Duration::ZERO).await.expect("quiet: fits")); // floor sampled at 300
    usage.store(750, Ordering::SeqCst); // busy: buffered bodies, allocator caches
    let err = budget.reserve(500, Duration::from_millis(60)).await.expect_err("not now");
    assert!(matches!(err, BudgetError::Exceeded { .. }), "{err:?}");
    usage.store(300, Ordering::SeqCst);
    budget.reserve(500, Duration::from_millis(200)).await.expect("fits once the burst is over");
    let err = budget.reserve(701, Duration::ZERO).await.expect_err("beyond the quiet headroom");
    assert!(matches!(err, BudgetError::TooLarge { .. }), "{err:?}");
}
