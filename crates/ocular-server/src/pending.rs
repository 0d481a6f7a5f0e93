//! Analyses answered before their images exist (issue 15).
//!
//! Drawing the stored photo and the Grad-CAM overlay and encoding both as JPEG is about a third
//! of an analysis (26 of 85.5 ms on the benchmark machine), and the answer needs none of it: the
//! classes and the heatmap grid are the result. So `POST /api/v1/analyze` stores the analysis
//! without images, answers, and renders them afterwards on a blocking thread that still holds the
//! request's admission permit (the concurrency slot and the memory reserved for the decoded
//! photo), so deferring the work never lets more of it run than admission allows.
//!
//! A client may ask for an image the moment it has the answer. This registry makes that GET wait
//! for the render instead of finding no image: a render registers its analysis before the answer
//! leaves, and unregisters (waking every waiter) only after its images are in the store. Another
//! replica behind the same PostgreSQL has no entry for it; [`RENDER_GRACE`] covers that case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// How long after its creation an analysis's missing image is taken for one still being drawn
/// (by another replica, whose renders this process cannot see) rather than one never stored or
/// purged: an image GET polls the store for at most that long before answering 404. A render
/// takes tens of milliseconds; the margin is for a loaded machine. (An image purged within
/// this window by a direct `ocular purge` is answered 404 only after the wait.)
pub const RENDER_GRACE: Duration = Duration::from_secs(3);

/// The analyses whose images this process is still rendering.
#[derive(Clone, Default)]
pub struct PendingRenders {
    inner: Arc<Mutex<HashMap<String, watch::Receiver<()>>>>,
}

/// Held by a render while it runs; dropping it (done, failed or panicked) wakes the waiters.
pub struct RenderGuard {
    id: String,
    renders: PendingRenders,
    // Dropped after `drop` below has unregistered: a waiter that cloned the receiver before
    // that wakes on the closed channel, and a later one finds no entry and reads the store.
    _done: watch::Sender<()>,
}

impl Drop for RenderGuard {
    fn drop(&mut self) {
        self.renders.inner.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl PendingRenders {
    /// Registers a render of analysis `id`'s images; call before its answer leaves.
    pub fn begin(&self, id: &str) -> RenderGuard {
        let (tx, rx) = watch::channel(());
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_string(), rx);
        RenderGuard { id: id.to_string(), renders: self.clone(), _done: tx }
    }

    /// Waits until this process's render of `id` (if any) has stored its images or given up.
    /// Returns whether there was one to wait for.
    pub async fn wait(&self, id: &str) -> bool {
        let rx = self.inner.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned();
        match rx {
            Some(mut rx) => {
                // Nothing is ever sent: the only event is the sender's drop, which is an `Err`.
                let _ = rx.changed().await;
                true
            }
            None => false,
        }
    }

    /// Waits, at most `limit`, until no render is in flight, so that a shutdown does not lose
    /// the images of analyses already answered: once the process exits (or the runtime drops
    /// its blocking tasks still queued) a render never finishes, and the client holds an id
    /// whose images are missing for good. Returns how many were still running at the deadline.
    pub async fn drain(&self, limit: Duration) -> usize {
        let all_done = async {
            loop {
                // A snapshot: renders that begin meanwhile (a connection still finishing its
                // request) are picked up by the next round.
                let pending: Vec<watch::Receiver<()>> =
                    self.inner.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
                if pending.is_empty() {
                    return;
                }
                for mut rx in pending {
                    // As in `wait`: the only event is the sender's drop.
                    let _ = rx.changed().await;
                }
            }
        };
        let _ = tokio::time::timeout(limit, all_done).await;
        self.in_flight()
    }

    /// How many renders are in flight (tests, metrics).
    pub fn in_flight(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_the_render_ends_and_not_before() {
        let renders = PendingRenders::default();
        assert!(!renders.wait("a").await, "nothing pending: no wait");
        let guard = renders.begin("a");
        let waiter = tokio::spawn({
            let renders = renders.clone();
            async move { renders.wait("a").await }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "woke before the render ended");
        assert_eq!(renders.in_flight(), 1);
        drop(guard);
        assert!(waiter.await.unwrap());
        assert_eq!(renders.in_flight(), 0);
    }

    #[tokio::test]
    async fn drain_waits_for_every_render_and_gives_up_at_its_limit() {
        let renders = PendingRenders::default();
        assert_eq!(renders.drain(Duration::from_secs(5)).await, 0, "nothing pending: returns at once");
        let (a, b) = (renders.begin("a"), renders.begin("b"));
        let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let render = |guard: RenderGuard, after: u64| {
            let finished = finished.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(after));
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(guard);
            })
        };
        let (ta, tb) = (render(a, 50), render(b, 150));
        assert_eq!(renders.drain(Duration::from_secs(30)).await, 0);
        assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 2, "drain returned before a render ended");
        ta.join().unwrap();
        tb.join().unwrap();

        // A render that never ends does not hold shutdown past the limit.
        let _stuck = renders.begin("stuck");
        assert_eq!(renders.drain(Duration::from_millis(50)).await, 1);
    }

    #[tokio::test]
    async fn a_panicking_render_still_wakes_its_waiters() {
        let renders = PendingRenders::default();
        let guard = renders.begin("b");
        let waiter = tokio::spawn({
            let renders = renders.clone();
            async move { renders.wait("b").await }
        });
        // Let the waiter find the entry first (this runtime has one thread).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        let failed = std::thread::spawn(move || {
            let _guard = guard;
            panic!("render failed");
        })
        .join();
        assert!(failed.is_err());
        assert!(waiter.await.unwrap());
        assert_eq!(renders.in_flight(), 0);
    }
}
