//! Product embeddings: little-endian f32 blobs, one per (product, space, photo).
//!
//! Raw f32 bytes, not JSON or f16: a vector reads back bit-exact, and decoding is a copy rather
//! than parsing, which is what makes streaming 100k vectors into the index at start-up fast.

use std::ops::ControlFlow;

use rusqlite::{Connection, OptionalExtension, params};

use super::products::{COLUMNS, collect};
use super::{count, product_key, sql_count, sql_key};
use crate::StoreError;
use crate::types::{
    Embedding, EmbeddingRef, EmbeddingUpdate, ModelCount, Product, ProductKey, clamp_limit, now, to_micros,
};

pub(super) fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes into `out`, reusing its allocation.
pub(super) fn decode_into(bytes: &[u8], out: &mut Vec<f32>) -> Result<(), StoreError> {
    let (words, rest) = bytes.as_chunks::<4>();
    if !rest.is_empty() {
        return Err(StoreError::Corrupt {
            what: "embedding",
            detail: format!("{} bytes is not whole f32s", bytes.len()),
        });
    }
    out.clear();
    out.extend(words.iter().map(|w| f32::from_le_bytes(*w)));
    Ok(())
}

/// Refuses vectors whose length differs from the stored vectors of the same (space, model),
/// ignoring the product's own vectors (which the write replaces).
pub(super) fn check_dims(c: &Connection, own: Option<i64>, list: &[Embedding]) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT dim FROM product_embeddings WHERE space = ?1 AND model = ?2 AND product_seq != ?3 LIMIT 1",
    )?;
    for e in list {
        let stored: Option<i64> =
            stmt.query_row(params![e.space, e.model, own.unwrap_or(-1)], |r| r.get(0)).optional()?;
        if let Some(dim) = stored.map(count)
            && dim != e.vector.len() as u64
        {
            return Err(StoreError::DimensionMismatch {
                space: e.space.clone(),
                model: e.model.clone(),
                expected: usize::try_from(dim).unwrap_or(usize::MAX),
                got: e.vector.len(),
            });
        }
    }
    Ok(())
}

/// Applies an update to product `seq`; the caller validated and checked it.
pub(super) fn apply(c: &Connection, seq: i64, update: EmbeddingUpdate<'_>) -> Result<(), StoreError> {
    let list = match update {
        EmbeddingUpdate::Keep => return Ok(()),
        EmbeddingUpdate::Merge(list) => {
            // A merged space gets exactly the photos listed: a product that lost photos must
            // not keep their vectors.
            let mut stmt = c.prepare_cached("DELETE FROM product_embeddings WHERE product_seq = ?1 AND space = ?2")?;
            for (i, e) in list.iter().enumerate() {
                if !list[..i].iter().any(|o| o.space == e.space) {
                    stmt.execute(params![seq, e.space])?;
                }
            }
            list
        }
        EmbeddingUpdate::Replace(list) => {
            c.prepare_cached("DELETE FROM product_embeddings WHERE product_seq = ?1")?.execute([seq])?;
            list
        }
    };
    let created_at = to_micros(now())?;
    let mut stmt = c.prepare_cached(
        "INSERT INTO product_embeddings (product_seq, space, photo, model, dim, created_at, vector)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in list {
        stmt.execute(params![
            seq,
            e.space,
            e.photo,
            e.model,
            sql_count(e.vector.len()),
            created_at,
            encode(&e.vector)
        ])?;
    }
    Ok(())
}

pub(super) fn of(c: &Connection, key: ProductKey) -> Result<Vec<Embedding>, StoreError> {
    let Some(seq) = sql_key(key) else { return Ok(Vec::new()) };
    let mut stmt = c.prepare_cached(
        "SELECT space, model, vector, photo FROM product_embeddings WHERE product_seq = ?1 ORDER BY space, photo",
    )?;
    let mut rows = stmt.query([seq])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut vector = Vec::new();
        decode_into(row.get_ref(2)?.as_blob()?, &mut vector)?;
        out.push(Embedding { space: row.get(0)?, photo: row.get(3)?, model: row.get(1)?, vector });
    }
    Ok(out)
}

pub(super) fn for_each(
    c: &Connection,
    space: &str,
    visit: &mut dyn FnMut(EmbeddingRef<'_>) -> ControlFlow<()>,
) -> Result<u64, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT product_seq, model, vector, photo FROM product_embeddings WHERE space = ?1 ORDER BY product_seq, photo",
    )?;
    let mut rows = stmt.query([space])?;
    let mut buf = Vec::new();
    let mut visited = 0;
    while let Some(row) = rows.next()? {
        let key = product_key(row.get(0)?)?;
        // Borrowed straight from SQLite's row buffer: no String or Vec per row.
        let model = row.get_ref(1)?.as_str()?;
        decode_into(row.get_ref(2)?.as_blob()?, &mut buf)?;
        let photo = row.get(3)?;
        visited += 1;
        if visit(EmbeddingRef { key, photo, model, vector: &buf }).is_break() {
            break;
        }
    }
    Ok(visited)
}

pub(super) fn models(c: &Connection) -> Result<Vec<ModelCount>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT space, model, dim, count(*) FROM product_embeddings GROUP BY space, model, dim ORDER BY space, model, dim",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let dim: i64 = row.get(2)?;
        out.push(ModelCount {
            space: row.get(0)?,
            model: row.get(1)?,
            dim: usize::try_from(dim).unwrap_or(0),
            count: count(row.get(3)?),
        });
    }
    Ok(out)
}

pub(super) fn needing(
    c: &Connection,
    space: &str,
    model: &str,
    after: Option<ProductKey>,
    limit: usize,
) -> Result<Vec<Product>, StoreError> {
    let after = after.map_or(Some(0), sql_key);
    let Some(after) = after else { return Ok(Vec::new()) };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM products p WHERE p.seq > ?1 AND NOT EXISTS (
             SELECT 1 FROM product_embeddings e WHERE e.product_seq = p.seq AND e.space = ?2 AND e.model = ?3)
         ORDER BY p.seq LIMIT ?4"
    ))?;
    collect(stmt.query(params![after, space, model, sql_count(clamp_limit(limit))])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_bit_exact() {
        let v = vec![0.0, -0.0, 1.5, f32::MIN_POSITIVE, f32::MAX, -1e-42, std::f32::consts::PI];
        let mut back = vec![9.0; 3];
        decode_into(&encode(&v), &mut back).unwrap();
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(matches!(decode_into(&[0, 1, 2], &mut back), Err(StoreError::Corrupt { .. })));
    }
}
