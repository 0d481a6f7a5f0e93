//! Uploaded product images on PostgreSQL: `bytea` rows addressed by SHA-256, shared by every
//! replica. Hashing happens before a connection is taken: it would otherwise hold one while
//! it reads megabytes.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::no_nul;
use super::pool::Db;
use crate::StoreError;
use crate::types::{StoredImage, now, validate};

/// Checks an upload and computes its address.
pub(super) fn address(bytes: &[u8], content_type: &str) -> Result<String, StoreError> {
    validate::content_type(content_type)?;
    if bytes.is_empty() {
        return Err(StoreError::invalid("image", "is empty"));
    }
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(super) fn put(db: Db<'_>, sha256: &str, bytes: &[u8], content_type: &str) -> Result<(), StoreError> {
    // The first upload's content type wins; the bytes are the same by construction. Two
    // replicas storing the same image at once both succeed: one inserts, one does nothing.
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    db.execute(
        "INSERT INTO product_images (sha256, content_type, size, created_at, bytes) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sha256) DO NOTHING",
        &[&sha256, &content_type, &size, &now(), &bytes],
    )?;
    Ok(())
}

pub(super) fn get(db: Db<'_>, sha256: &str) -> Result<Option<StoredImage>, StoreError> {
    no_nul("sha256", sha256)?;
    db.query_opt("SELECT content_type, bytes FROM product_images WHERE sha256 = $1", &[&sha256])?
        .map(|r| Ok(StoredImage { sha256: sha256.to_string(), content_type: r.try_get(0)?, bytes: r.try_get(1)? }))
        .transpose()
}

pub(super) fn purge_unreferenced(db: Db<'_>, before: OffsetDateTime) -> Result<u64, StoreError> {
    db.execute(
        "DELETE FROM product_images i WHERE i.created_at < $1
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.image_sha256 = i.sha256)
         AND NOT EXISTS (SELECT 1 FROM product_photo_images f WHERE f.sha256 = i.sha256)",
        &[&before],
    )
}

/// Deletes one image if no product shows it any more: called when a product is deleted or its
/// photo replaced, so a customer's photo does not outlive the product (the periodic
/// [`purge_unreferenced`] catches uploads whose product write never happened).
///
/// `SKIP LOCKED` leaves the image alone while another transaction is writing a product that
/// references it (its foreign-key check holds a lock on the image row): deleting it then
/// would fail this transaction on the foreign key. The periodic purge takes it later if it is
/// still unused.
pub(super) fn drop_if_orphan(db: Db<'_>, sha256: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM product_images i
         WHERE i.sha256 = (SELECT sha256 FROM product_images WHERE sha256 = $1 FOR UPDATE SKIP LOCKED)
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.image_sha256 = i.sha256)
         AND NOT EXISTS (SELECT 1 FROM product_photo_images f WHERE f.sha256 = i.sha256)",
        &[&sha256],
    )?;
    Ok(())
}

/// The uploads product `seq`'s further photos show.
pub(super) fn of_photos(db: Db<'_>, seq: i64) -> Result<Vec<String>, StoreError> {
    db.query("SELECT sha256 FROM product_photo_images WHERE product_seq = $1", &[&seq])?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

/// Records which uploads product `seq`'s further photos show (replacing what it showed).
pub(super) fn set_photos(db: Db<'_>, seq: i64, shown: &[&str]) -> Result<(), StoreError> {
    db.execute("DELETE FROM product_photo_images WHERE product_seq = $1", &[&seq])?;
    if !shown.is_empty() {
        db.execute(
            "INSERT INTO product_photo_images (product_seq, sha256) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            &[&seq, &shown],
        )?;
    }
    Ok(())
}
