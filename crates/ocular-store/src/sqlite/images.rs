//! Uploaded product images, content-addressed by SHA-256.
//!
//! Addressing by content makes uploads idempotent (a retried upload stores nothing new) and lets
//! two products share one image. Images are rows, not files under the data directory: replicas
//! sharing a database then share images, and a write is transactional like everything else.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::sql_count;
use crate::StoreError;
use crate::types::{StoredImage, now, to_micros, validate};

/// Checks an upload and computes its address; done before taking the connection, since hashing
/// megabytes would otherwise hold up every other query.
pub(super) fn address(bytes: &[u8], content_type: &str) -> Result<String, StoreError> {
    validate::content_type(content_type)?;
    if bytes.is_empty() {
        return Err(StoreError::invalid("image", "is empty"));
    }
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(super) fn put(c: &Connection, sha256: &str, bytes: &[u8], content_type: &str) -> Result<(), StoreError> {
    // The first upload's content type wins; the bytes are the same by construction.
    c.prepare_cached(
        "INSERT INTO product_images (sha256, content_type, size, created_at, bytes) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (sha256) DO NOTHING",
    )?
    .execute(params![sha256, content_type, sql_count(bytes.len()), to_micros(now())?, bytes])?;
    Ok(())
}

pub(super) fn get(c: &Connection, sha256: &str) -> Result<Option<StoredImage>, StoreError> {
    Ok(c.prepare_cached("SELECT content_type, bytes FROM product_images WHERE sha256 = ?1")?
        .query_row([sha256], |r| {
            Ok(StoredImage { sha256: sha256.to_string(), content_type: r.get(0)?, bytes: r.get(1)? })
        })
        .optional()?)
}

pub(super) fn purge_unreferenced(c: &Connection, before: OffsetDateTime) -> Result<u64, StoreError> {
    let n = c
        .prepare_cached(
            "DELETE FROM product_images WHERE created_at < ?1
             AND NOT EXISTS (SELECT 1 FROM products p WHERE p.image_sha256 = product_images.sha256)
             AND NOT EXISTS (SELECT 1 FROM product_photo_images f WHERE f.sha256 = product_images.sha256)",
        )?
        .execute([to_micros(before)?])?;
    Ok(n as u64)
}

/// Deletes one image if no product shows it any more: called when a product is deleted or its
/// photo replaced, so a customer's photo does not outlive the product (the periodic
/// [`purge_unreferenced`] catches uploads whose product write never happened).
pub(super) fn drop_if_orphan(c: &Connection, sha256: &str) -> Result<(), StoreError> {
    c.prepare_cached(
        "DELETE FROM product_images WHERE sha256 = ?1
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.image_sha256 = ?1)
         AND NOT EXISTS (SELECT 1 FROM product_photo_images f WHERE f.sha256 = ?1)",
    )?
    .execute([sha256])?;
    Ok(())
}

/// The uploads product `seq`'s further photos show.
pub(super) fn of_photos(c: &Connection, seq: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT sha256 FROM product_photo_images WHERE product_seq = ?1")?;
    let rows = stmt.query_map([seq], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records which uploads product `seq`'s further photos show (replacing what it showed).
pub(super) fn set_photos(c: &Connection, seq: i64, shown: &[&str]) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM product_photo_images WHERE product_seq = ?1")?.execute([seq])?;
    let mut stmt = c.prepare_cached(
        "INSERT INTO product_photo_images (product_seq, sha256) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for sha in shown {
        stmt.execute(params![seq, sha])?;
    }
    Ok(())
}
