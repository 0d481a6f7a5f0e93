//! [`ChangeFeed`] for SQLite: `product_changes`, written by triggers (migration 6), and
//! `PRAGMA data_version` on a connection of its own.
//!
//! `data_version` is per connection: it moves when *other* connections commit. The feed asks
//! on a dedicated connection so that the server's own writes move it as well as another
//! process's, and so that the poll never queues behind a long read on a shared reader.

use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, product_key, sql_count};
use crate::StoreError;
use crate::changes::{ChangeFeed, ProductChange};
use crate::types::to_micros;

impl ChangeFeed for SqliteStore {
    fn data_version(&self) -> Result<u64, StoreError> {
        let version: i64 = match &self.watch {
            Some(watch) => watch.lock().query_row("PRAGMA data_version", [], |r| r.get(0))?,
            // In memory, this connection is the only one: nothing else can commit.
            None => self.conn.lock().query_row("PRAGMA data_version", [], |r| r.get(0))?,
        };
        Ok(version.unsigned_abs())
    }

    fn change_cursor(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            // sqlite_sequence keeps the highest seq ever given, even after its row was pruned.
            let seq: Option<i64> = c
                .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'product_changes'", [], |r| r.get(0))
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            Ok(seq.map_or(0, i64::unsigned_abs))
        })
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ProductChange>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT seq, product_seq FROM product_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let mut rows = stmt.query(params![after, sql_count(limit)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                out.push(ProductChange { seq: seq.unsigned_abs(), key: product_key(row.get(1)?)? });
            }
            Ok(out)
        })
    }

    fn prune_changes(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = to_micros(before)?;
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM product_changes WHERE changed_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM products p WHERE p.seq = product_changes.product_seq)",
                [before],
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::catalog::CatalogStore;
    use crate::types::{Embedding, EmbeddingUpdate, NewProduct};

    fn product(id: &str) -> NewProduct {
        NewProduct::new(id, format!("product {id}"))
    }

    fn keys(changes: &[ProductChange]) -> Vec<u64> {
        changes.iter().map(|c| c.key.0).collect()
    }

    /// Every kind of vector write lands in the feed once per product, in commit order; a
    /// product deleted with its vectors too; writes without vector changes do not.
    #[test]
    fn every_vector_write_is_in_the_feed_once_per_product() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ocular.db")).unwrap();
        store.migrate().unwrap();
        assert_eq!(store.change_cursor().unwrap(), 0);
        let v = |x: f32| vec![Embedding::new("image", "m", vec![x, 1.0]), Embedding::new("text", "t", vec![1.0, x])];
        let a = store.create_product(&product("a"), &v(1.0)).unwrap().key;
        let b = store.create_product(&product("b"), &v(2.0)).unwrap().key;
        let start = store.change_cursor().unwrap();
        assert!(start >= 2);
        assert_eq!(keys(&store.changes_since(0, 100).unwrap()), vec![a.0, b.0], "one row per product");

        // Replacing a's vectors moves it after b; a price change alone touches no vector.
        store.put_product(&product("a"), EmbeddingUpdate::Replace(&v(3.0))).unwrap();
        let mut priced = product("b");
        priced.price = Some(9.0);
        store.put_product(&priced, EmbeddingUpdate::Keep).unwrap();
        let after = store.changes_since(start, 100).unwrap();
        assert_eq!(keys(&after), vec![a.0]);

        // Deleting b cascades to its vectors, and the feed says so.
        let cursor = store.change_cursor().unwrap();
        store.delete_product("b").unwrap();
        assert_eq!(keys(&store.changes_since(cursor, 100).unwrap()), vec![b.0]);
        // `limit` pages the feed.
        assert_eq!(store.changes_since(0, 1).unwrap().len(), 1);

        // Pruning forgets deleted products only, and the cursor never goes back.
        let before = store.change_cursor().unwrap();
        assert_eq!(store.prune_changes(OffsetDateTime::now_utc() + time::Duration::hours(1)).unwrap(), 1);
        assert_eq!(keys(&store.changes_since(0, 100).unwrap()), vec![a.0]);
        assert_eq!(store.change_cursor().unwrap(), before);
    }

    /// `data_version` moves when another connection commits: the server's own writes (its
    /// writer connection) and another process's (here a second store on the same file).
    #[test]
    fn data_version_moves_on_commits_from_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocular.db");
        let server = SqliteStore::open(&path).unwrap();
        server.migrate().unwrap();
        let v0 = server.data_version().unwrap();
        assert_eq!(server.data_version().unwrap(), v0, "nothing committed");
        server.create_product(&product("own"), &[Embedding::new("image", "m", vec![1.0])]).unwrap();
        let v1 = server.data_version().unwrap();
        assert_ne!(v1, v0, "own writer connection");
        let other = SqliteStore::open(&path).unwrap();
        other.create_product(&product("other"), &[Embedding::new("image", "m", vec![2.0])]).unwrap();
        assert_ne!(server.data_version().unwrap(), v1, "another process");
        let seen = server.changes_since(0, 10).unwrap();
        assert_eq!(seen.len(), 2);
    }
}
