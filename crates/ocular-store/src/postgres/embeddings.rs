//! Product embeddings on PostgreSQL: pgvector `vector` values, one per (product, space).
//!
//! Vectors are stored as given (not normalised), so they read back bit-exact as on SQLite; the
//! HNSW index normalises inside its own expression (see `index`).

use std::ops::ControlFlow;

use super::pool::{Db, wait};
use super::products::{COLUMNS, collect};
use super::vector::{PgVector, RawVector};
use super::{count, lock, product_key, sql_count, sql_key};
use crate::StoreError;
use crate::types::{Embedding, EmbeddingRef, EmbeddingUpdate, ModelCount, Product, ProductKey, clamp_limit, now};

/// Rows fetched per round trip while streaming: 512 × 1280 floats is 2.6 MB in flight.
const STREAM_BATCH: i32 = 512;

fn stored_dim(db: Db<'_>, own: Option<i64>, e: &Embedding) -> Result<Option<i32>, StoreError> {
    Ok(db
        .query_opt(
            "SELECT dim FROM product_embeddings WHERE space = $1 AND model = $2 AND product_seq <> $3 LIMIT 1",
            &[&e.space, &e.model, &own.unwrap_or(-1)],
        )?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Refuses vectors whose length differs from the stored vectors of the same (space, model),
/// ignoring the product's own vectors (which the write replaces).
///
/// Once a (space, model) has a committed vector every writer checks against it. The one race
/// left is two replicas writing the first vectors of a new (space, model) with different
/// lengths: then the check takes an advisory lock for that pair and looks again, so the second
/// writer waits for the first to commit and sees its vector. Only that first write serialises.
pub(super) fn check_dims(db: Db<'_>, own: Option<i64>, list: &[Embedding]) -> Result<(), StoreError> {
    for e in list {
        let mut stored = stored_dim(db, own, e)?;
        if stored.is_none() {
            lock(db, &format!("ocular.dims:{}/{}", e.space, e.model))?;
            stored = stored_dim(db, own, e)?;
        }
        if let Some(dim) = stored
            && usize::try_from(dim).ok() != Some(e.vector.len())
        {
            return Err(StoreError::DimensionMismatch {
                space: e.space.clone(),
                model: e.model.clone(),
                expected: usize::try_from(dim).unwrap_or(0),
                got: e.vector.len(),
            });
        }
    }
    Ok(())
}

/// Applies an update to product `seq`; the caller validated and checked it.
pub(super) fn apply(db: Db<'_>, seq: i64, update: EmbeddingUpdate<'_>) -> Result<(), StoreError> {
    let list = match update {
        EmbeddingUpdate::Keep => return Ok(()),
        EmbeddingUpdate::Merge(list) => {
            // A merged space gets exactly the photos listed: a product that lost photos must
            // not keep their vectors.
            let spaces: Vec<&str> = list.iter().map(|e| e.space.as_str()).collect();
            db.execute("DELETE FROM product_embeddings WHERE product_seq = $1 AND space = ANY($2)", &[&seq, &spaces])?;
            list
        }
        EmbeddingUpdate::Replace(list) => {
            db.execute("DELETE FROM product_embeddings WHERE product_seq = $1", &[&seq])?;
            list
        }
    };
    let created_at = now();
    for e in list {
        let dim = i32::try_from(e.vector.len()).unwrap_or(i32::MAX);
        let photo = i16::try_from(e.photo).unwrap_or(i16::MAX);
        db.execute(
            "INSERT INTO product_embeddings (product_seq, space, photo, model, dim, created_at, vector)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&seq, &e.space, &photo, &e.model, &dim, &created_at, &PgVector(&e.vector)],
        )?;
    }
    Ok(())
}

pub(super) fn of(db: Db<'_>, key: ProductKey) -> Result<Vec<Embedding>, StoreError> {
    let Some(seq) = sql_key(key) else { return Ok(Vec::new()) };
    // `COLLATE "C"`: byte order, as SQLite sorts, whatever the database's collation.
    let rows = db.query(
        "SELECT space, model, vector, photo FROM product_embeddings WHERE product_seq = $1
         ORDER BY space COLLATE \"C\", photo",
        &[&seq],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Embedding {
                space: r.try_get(0)?,
                photo: u16::try_from(r.try_get::<_, i16>(3)?).unwrap_or(0),
                model: r.try_get(1)?,
                vector: r.try_get::<_, RawVector<'_>>(2)?.to_vec()?,
            })
        })
        .collect()
}

/// Streams a space in key order through a portal, `STREAM_BATCH` rows per round trip, in one
/// read-only transaction (one snapshot). Stopping early closes the portal: the server computes
/// and sends nothing more, which a plain streamed query could not promise.
pub(super) fn for_each(
    conn: &mut super::pool::Conn,
    space: &str,
    visit: &mut dyn FnMut(EmbeddingRef<'_>) -> ControlFlow<()>,
) -> Result<u64, StoreError> {
    let (client, stmts) = conn.parts();
    let tx = wait(client.build_transaction().read_only(true).start())?;
    let db = Db { client: tx.client(), stmts };
    let stmt = db.prepare(
        "SELECT product_seq, model, vector, photo FROM product_embeddings WHERE space = $1 ORDER BY product_seq, photo",
    )?;
    let portal = wait(tx.bind(&stmt, &[&space]))?;
    let mut buf = Vec::new();
    let mut visited = 0;
    'fetch: loop {
        let rows = wait(tx.query_portal(&portal, STREAM_BATCH))?;
        for row in &rows {
            let key = product_key(row.try_get(0)?)?;
            // Borrowed from the row buffer: no String or Vec per row.
            let model: &str = row.try_get(1)?;
            row.try_get::<_, RawVector<'_>>(2)?.decode_into(&mut buf)?;
            let photo = u16::try_from(row.try_get::<_, i16>(3)?).unwrap_or(0);
            visited += 1;
            if visit(EmbeddingRef { key, photo, model, vector: &buf }).is_break() {
                break 'fetch;
            }
        }
        if rows.len() < STREAM_BATCH as usize {
            break;
        }
    }
    drop(portal);
    wait(tx.commit())?;
    Ok(visited)
}

pub(super) fn models(db: Db<'_>) -> Result<Vec<ModelCount>, StoreError> {
    let rows = db.query(
        "SELECT space, model, dim, count(*) FROM product_embeddings GROUP BY space, model, dim
         ORDER BY space COLLATE \"C\", model COLLATE \"C\", dim",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let dim: i32 = r.try_get(2)?;
            Ok(ModelCount {
                space: r.try_get(0)?,
                model: r.try_get(1)?,
                dim: usize::try_from(dim).unwrap_or(0),
                count: count(r.try_get(3)?),
            })
        })
        .collect()
}

pub(super) fn needing(
    db: Db<'_>,
    space: &str,
    model: &str,
    after: Option<ProductKey>,
    limit: usize,
) -> Result<Vec<Product>, StoreError> {
    let Some(after) = after.map_or(Some(0), sql_key) else { return Ok(Vec::new()) };
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM products p WHERE p.seq > $1 AND NOT EXISTS (
                 SELECT 1 FROM product_embeddings e WHERE e.product_seq = p.seq AND e.space = $2 AND e.model = $3)
             ORDER BY p.seq LIMIT $4"
        ),
        &[&after, &space, &model, &sql_count(clamp_limit(limit))],
    )?;
    collect(&rows)
}
