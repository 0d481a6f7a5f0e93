//! Following writes made by other processes: what keeps a server's in-memory indexes in step
//! with a SQLite file that `ocular import`, `ocular reindex` or a second server also writes.
//!
//! A server's own writes reach its indexes at once (module `ingest`). Another process's did
//! not, until a restart: its searches kept missing imported products and finding deleted
//! ones. The store's change feed ([`ocular_store::ChangeFeed`]) lists, per product, the newest
//! vector change with an increasing sequence number, written by triggers in the same
//! transaction. [`Catalog::follow_changes`], called every [`INTERVAL`] by [`follow`], asks
//! SQLite's `data_version` whether anything committed (one integer, no table read) and, if so,
//! re-reads the stored vectors of every product changed since the last sequence it applied and
//! applies them through `sync_index`, the code path of the HTTP product routes.
//!
//! Why re-read rather than replay: the stored vectors are the truth whatever happened in
//! between, so a product changed five times is applied once, and the order of this server's
//! writes and the feed never matters. Reading and applying run under the catalog's write lock,
//! the one an HTTP write holds from its store write to its index update, so the feed can never
//! put back an older state over a newer one. The server's own writes appear in the feed too
//! and are applied a second time, with the same result.
//!
//! The cursor is taken when loading begins, before the load's snapshot: a write committed
//! while the vectors stream in is both skipped by the loader (the index records it as
//! `touched`) and applied from the feed. PostgreSQL has no feed: its vectors are searched in
//! the database, so every replica sees every write at once.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::error::SearchError;

/// How often a server checks for other processes' writes: twice a second, well inside the
/// two seconds a write may take to become searchable. An idle check is one `PRAGMA`.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Products re-read per batch (one write-lock hold; an import of 100k products catches up in
/// batches, so HTTP writes never wait long).
const BATCH: usize = 256;

/// How long feed entries of deleted products are kept: far longer than any server lags.
const KEEP_DELETED: time::Duration = time::Duration::hours(1);

/// Where the follower is: the last sequence applied and the last `data_version` seen.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// `None` until loading began: nothing to keep in step yet.
    pub(crate) seq: Option<u64>,
    data_version: Option<u64>,
}

impl Catalog {
    /// Takes the feed's cursor: call before the indexes' load snapshot (`begin_loading`).
    pub(crate) fn mark_cursor(&self) -> Result<(), SearchError> {
        if let Some(feed) = self.store.change_feed() {
            let seq = feed.change_cursor()?;
            *self.cursor.lock() = Cursor { seq: Some(seq), data_version: None };
        }
        Ok(())
    }

    /// Applies every change committed since the last call, by any process, to the indexes;
    /// returns how many products were re-read. Cheap when nothing changed. Blocking.
    pub fn follow_changes(&self) -> Result<usize, SearchError> {
        let Some(feed) = self.store.change_feed() else { return Ok(0) };
        let Some(mut seq) = self.cursor.lock().seq else { return Ok(0) };
        // Read before the feed: a commit after this point moves it again and is seen next time.
        let version = feed.data_version()?;
        if self.cursor.lock().data_version == Some(version) {
            return Ok(0);
        }
        let mut applied = 0;
        loop {
            let batch = feed.changes_since(seq, BATCH)?;
            let Some(last) = batch.last().map(|c| c.seq) else { break };
            {
                let _guard = self.write_lock.lock();
                for change in &batch {
                    let vectors = self.store.embeddings_of(change.key)?;
                    self.sync_index(change.key, &vectors, true)?;
                }
            }
            applied += batch.len();
            seq = last;
            self.cursor.lock().seq = Some(seq);
        }
        self.cursor.lock().data_version = Some(version);
        Ok(applied)
    }

    /// Forgets feed entries of products deleted more than an hour ago (see
    /// [`ocular_store::ChangeFeed::prune_changes`]).
    pub fn prune_changes(&self) -> Result<u64, SearchError> {
        let Some(feed) = self.store.change_feed() else { return Ok(0) };
        Ok(feed.prune_changes(OffsetDateTime::now_utc() - KEEP_DELETED)?)
    }
}

/// Runs [`Catalog::follow_changes`] every [`INTERVAL`] for as long as the process lives, and
/// prunes the feed hourly. Errors are logged (once per streak) and retried on the next tick.
pub async fn follow(catalog: Arc<Catalog>) {
    if catalog.store().change_feed().is_none() {
        return;
    }
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut ticks: u64 = 0;
    let prune_every = (KEEP_DELETED.whole_seconds().unsigned_abs() * 1000 / INTERVAL.as_millis() as u64).max(1);
    loop {
        tick.tick().await;
        ticks += 1;
        let c = catalog.clone();
        let prune = ticks.is_multiple_of(prune_every);
        let result = tokio::task::spawn_blocking(move || {
            let applied = c.follow_changes()?;
            let pruned = if prune { c.prune_changes()? } else { 0 };
            Ok::<_, SearchError>((applied, pruned))
        })
        .await;
        match result {
            Ok(Ok((applied, pruned))) => {
                if applied > 0 || pruned > 0 {
                    tracing::debug!(products = applied, pruned, "applied changes committed by other writers");
                }
                if failing {
                    tracing::info!("following the change feed again");
                }
                failing = false;
            }
            Ok(Err(e)) if !failing => {
                failing = true;
                tracing::error!(error = %ocular_models::registry::error_chain(&e), "cannot follow the change feed; retrying");
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "change feed follower panicked"),
        }
    }
}
