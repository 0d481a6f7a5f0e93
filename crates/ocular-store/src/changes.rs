//! The change feed: which products' vectors changed since a point, whichever process wrote them.
//!
//! A server keeps every space's vectors in memory (module `space` of ocular-search) and keeps
//! them in step with its own writes. Another process writing the same SQLite file (`ocular
//! import` next to `ocular serve`, a script, a second server) used to stay invisible to its
//! searches until a restart. The SQLite backend therefore records, by triggers in the same
//! transaction as the vectors, the newest change per product with an increasing sequence
//! number (migration 6); a server polls [`ChangeFeed::data_version`] (SQLite's `PRAGMA
//! data_version`: one integer, no table read) and, when it moved, reads the products changed
//! after the last sequence it applied and re-reads their vectors.
//!
//! PostgreSQL has no feed ([`crate::Store::change_feed`] is `None`): its vectors are searched
//! in the database (pgvector), so every replica sees every write at once with nothing to apply.

use time::OffsetDateTime;

use crate::StoreError;
use crate::types::ProductKey;

/// One entry of the feed: the product whose vectors changed (written, replaced or deleted,
/// possibly with the product itself) at sequence `seq`. What changed is not recorded: the
/// reader re-reads the product's vectors, which are the truth whatever happened in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductChange {
    pub seq: u64,
    pub key: ProductKey,
}

/// Reading the change feed of a backend whose writes other processes can make.
pub trait ChangeFeed: Send + Sync {
    /// A number that differs from the previous call's whenever another connection, in this
    /// process or another, committed a write in between: the cheap "anything new?" test.
    fn data_version(&self) -> Result<u64, StoreError>;

    /// The sequence of the newest change (0 for none). A reader that takes it *before* loading
    /// its vectors and then applies [`Self::changes_since`] it misses no write.
    fn change_cursor(&self) -> Result<u64, StoreError>;

    /// The changes after `after`, by ascending sequence, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ProductChange>, StoreError>;

    /// Forgets entries of products that no longer exist and changed before `before`; returns how
    /// many. Entries of live products are bounded by the catalog and kept. A reader more than
    /// that far behind would miss deletions (and search hits of deleted products are dropped
    /// when their rows are read anyway).
    fn prune_changes(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
