//! Product rows: writes (create, replace, patch, batches), reads, listings and filters.
//!
//! A write happens in two steps so a batch can refuse one bad product without aborting the
//! others: [`prepare`] checks everything that can be the caller's fault (validation, a missing
//! image, a vector length that disagrees with stored ones) and writes nothing; [`commit`] then
//! writes, and any error it meets is the database's and aborts the whole transaction.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{count, embeddings, images, product_key, sql_count, sql_key};
use crate::StoreError;
use crate::types::{
    AttributeCondition, CategoryCount, EmbeddingUpdate, NewProduct, Page, Product, ProductFilter, ProductKey, Upserted,
    clamp_limit, from_micros, now, to_micros, validate,
};

pub(super) const COLUMNS: &str = "seq, id, title, description, category, price, currency, image_url, image_sha256, attributes, created_at, updated_at, images";

/// Reads a row selected with [`COLUMNS`] (optionally prefixed by a table alias).
pub(super) fn from_row(row: &Row<'_>) -> Result<Product, StoreError> {
    let attributes: String = row.get(9)?;
    Ok(Product {
        key: product_key(row.get(0)?)?,
        id: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        category: row.get(4)?,
        price: row.get(5)?,
        currency: row.get(6)?,
        image_url: row.get(7)?,
        image_sha256: row.get(8)?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|source| StoreError::Json { what: "attributes", source })?,
        created_at: from_micros(row.get(10)?)?,
        updated_at: from_micros(row.get(11)?)?,
        images: validate::images_from_json(&row.get::<_, String>(12)?)?,
    })
}

/// Collects the products of a query whose columns are [`COLUMNS`].
pub(super) fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Product>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

pub(super) fn by_id(c: &Connection, id: &str) -> Result<Option<Product>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(from_row).transpose()
}

pub(super) fn by_key(c: &Connection, key: ProductKey) -> Result<Option<Product>, StoreError> {
    let Some(seq) = sql_key(key) else { return Ok(None) };
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE seq = ?1"))?;
    let mut rows = stmt.query([seq])?;
    rows.next()?.map(from_row).transpose()
}

pub(super) fn key_of(c: &Connection, id: &str) -> Result<Option<ProductKey>, StoreError> {
    let seq: Option<i64> =
        c.prepare_cached("SELECT seq FROM products WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    seq.map(product_key).transpose()
}

/// A product write checked and ready to commit.
pub(super) struct Prepared<'a> {
    product: &'a NewProduct,
    attributes: String,
    images: String,
    embeddings: EmbeddingUpdate<'a>,
    /// The stored row when the id exists (a replace).
    existing: Option<Existing>,
}

/// What a replace needs of the row it replaces.
struct Existing {
    seq: i64,
    created_us: i64,
    updated_us: i64,
    image_sha256: Option<String>,
    /// The uploads its further photos showed.
    photo_images: Vec<String>,
}

/// Whether an existing id is an error (POST), replaced (PUT), or replaced only while it is
/// still the version the caller read (`updated_at` in microseconds; anything else is
/// [`StoreError::Stale`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Put,
    IfUnchanged(i64),
}

/// Checks one write against the rules and the stored data; writes nothing.
pub(super) fn prepare<'a>(
    c: &Connection,
    product: &'a NewProduct,
    embeddings: EmbeddingUpdate<'a>,
    mode: Mode,
) -> Result<Prepared<'a>, StoreError> {
    validate::new_product(product)?;
    let attributes = validate::attributes_json(product)?;
    let images = validate::images_json(product)?;
    let uploads = product.image_sha256.iter().map(|s| ("image_sha256", s));
    for (field, sha) in uploads.chain(product.images.iter().filter_map(|i| i.sha256.as_ref()).map(|s| ("images", s))) {
        let stored: bool = c
            .prepare_cached("SELECT count(*) > 0 FROM product_images WHERE sha256 = ?1")?
            .query_row([sha], |r| r.get(0))?;
        if !stored {
            return Err(StoreError::invalid(field, "no image with this digest has been stored"));
        }
    }
    // The write transaction is `IMMEDIATE` (one writer at a time), so this read and the write
    // in `commit` are one atomic step, for every process sharing the file.
    let existing = c
        .prepare_cached("SELECT seq, created_at, updated_at, image_sha256 FROM products WHERE id = ?1")?
        .query_row([&product.id], |r| {
            Ok(Existing {
                seq: r.get(0)?,
                created_us: r.get(1)?,
                updated_us: r.get(2)?,
                image_sha256: r.get(3)?,
                photo_images: Vec::new(),
            })
        })
        .optional()?;
    let existing = match existing {
        Some(mut e) => {
            e.photo_images = images::of_photos(c, e.seq)?;
            Some(e)
        }
        None => None,
    };
    match (mode, &existing) {
        (Mode::Create, Some(_)) => return Err(StoreError::Conflict(format!("product {}", product.id))),
        (Mode::IfUnchanged(expected), e) if e.as_ref().map(|e| e.updated_us) != Some(expected) => {
            return Err(StoreError::Stale(format!("product {}", product.id)));
        }
        _ => {}
    }
    if let EmbeddingUpdate::Merge(list) | EmbeddingUpdate::Replace(list) = embeddings {
        validate::embeddings(list)?;
        embeddings::check_dims(c, existing.as_ref().map(|e| e.seq), list)?;
    }
    Ok(Prepared { product, attributes, images, embeddings, existing })
}

/// Writes a prepared product and its embeddings.
pub(super) fn commit(c: &Connection, w: Prepared<'_>) -> Result<Upserted, StoreError> {
    let p = w.product;
    // Every write moves `updated_at` forward, even within one microsecond or on a replica whose
    // clock is behind: it is the version a conditional replace (`If-Match`) compares.
    let updated_us = match &w.existing {
        Some(e) => to_micros(now())?.max(e.updated_us.saturating_add(1)),
        None => to_micros(now())?,
    };
    let updated_at = from_micros(updated_us)?;
    let (seq, created_us) = match &w.existing {
        Some(Existing { seq, created_us, .. }) => {
            let (seq, created_us) = (*seq, *created_us);
            c.prepare_cached(
                "UPDATE products SET title = ?2, description = ?3, category = ?4, price = ?5, currency = ?6,
                     image_url = ?7, image_sha256 = ?8, attributes = ?9, updated_at = ?10, images = ?11
                 WHERE seq = ?1",
            )?
            .execute(params![
                seq,
                p.title,
                p.description,
                p.category,
                p.price,
                p.currency,
                p.image_url,
                p.image_sha256,
                w.attributes,
                updated_us,
                w.images
            ])?;
            (seq, created_us)
        }
        None => {
            let seq: i64 = c
                .prepare_cached(
                    "INSERT INTO products (id, title, description, category, price, currency, image_url,
                         image_sha256, attributes, created_at, updated_at, images)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11) RETURNING seq",
                )?
                .query_row(
                    params![
                        p.id,
                        p.title,
                        p.description,
                        p.category,
                        p.price,
                        p.currency,
                        p.image_url,
                        p.image_sha256,
                        w.attributes,
                        updated_us,
                        w.images
                    ],
                    |r| r.get(0),
                )?;
            (seq, updated_us)
        }
    };
    let key = product_key(seq)?;
    embeddings::apply(c, seq, w.embeddings)?;
    let now_shown: Vec<&str> = p.images.iter().filter_map(|i| i.sha256.as_deref()).collect();
    images::set_photos(c, seq, &now_shown)?;
    // A replaced photo goes with the version that used it (it may carry the owner's GPS).
    if let Some(e) = &w.existing {
        let shown = |sha: &str| p.image_sha256.as_deref() == Some(sha) || now_shown.contains(&sha);
        for old in e.image_sha256.iter().chain(&e.photo_images) {
            if !shown(old) {
                images::drop_if_orphan(c, old)?;
            }
        }
    }
    let product = Product {
        key,
        id: p.id.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        category: p.category.clone(),
        price: p.price,
        currency: p.currency.clone(),
        image_url: p.image_url.clone(),
        image_sha256: p.image_sha256.clone(),
        images: p.images.clone(),
        attributes: p.attributes.clone(),
        created_at: from_micros(created_us)?,
        updated_at,
    };
    Ok(Upserted { product, created: w.existing.is_none() })
}

/// Deletes by id; embeddings go by `ON DELETE CASCADE`, the text index entry by trigger, the
/// photo here unless another product shows it too.
pub(super) fn delete(c: &Connection, id: &str) -> Result<ProductKey, StoreError> {
    let Some(seq) = key_of(c, id)?.and_then(sql_key) else {
        return Err(StoreError::NotFound(format!("product {id}")));
    };
    let further = images::of_photos(c, seq)?;
    let image: Option<String> = c
        .prepare_cached("DELETE FROM products WHERE seq = ?1 RETURNING image_sha256")?
        .query_row([seq], |r| r.get(0))?;
    for sha in image.iter().chain(&further) {
        images::drop_if_orphan(c, sha)?;
    }
    product_key(seq)
}

/// One step of an attribute path as the SQLite JSON path `$."width"` (steps are validated
/// plain names, and a quoted step is always an object key, never an array index).
fn json_step(step: &str) -> SqlValue {
    SqlValue::Text(format!("$.\"{step}\""))
}

/// The `AND …` conditions of a filter on table alias `p`, with their parameters.
pub(super) fn filter_sql(f: &ProductFilter) -> Result<(String, Vec<SqlValue>), StoreError> {
    validate::filter(f)?;
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(c) = &f.category {
        sql.push_str(" AND p.category = ?");
        args.push(SqlValue::Text(c.clone()));
    }
    // `price >= NULL` is never true, so unpriced products drop out of any price bound.
    if let Some(min) = f.min_price {
        sql.push_str(" AND p.price >= ?");
        args.push(SqlValue::Real(min));
    }
    if let Some(max) = f.max_price {
        sql.push_str(" AND p.price <= ?");
        args.push(SqlValue::Real(max));
    }
    // A key is a dotted path of plain names (validated), each step an object-key lookup. A step
    // before the last fans out: an object there is looked into, an array of objects has each
    // object element looked into (`variants.size`), anything else (a scalar, an array inside
    // the array) ends that branch. The step's values go through json_each as a JSON array
    // (an object wrapped as `[{…}]`); `o{i}` holds the object the next step reads, or `{}`, so
    // json_type/json_each never see a bare scalar's text. At the last step the value passes
    // when it is the right JSON type and equal/in range, or an array one of whose elements is:
    // the type test keeps objects out (json_each would walk their members) and `"42"` from
    // matching 42 (and `true`, which SQLite reads as 1), so both backends agree on what
    // passes. Fan-out is bounded: at most MAX_ATTRIBUTE_DEPTH steps, and every branch reads a
    // different part of an attributes object of at most MAX_ATTRIBUTE_BYTES.
    for (key, condition) in &f.attributes {
        let (before, last): (Vec<&str>, &str) = match key.rsplit_once('.') {
            Some((before, last)) => (before.split('.').collect(), last),
            None => (Vec::new(), key.as_str()),
        };
        let mut from = Vec::new();
        let mut object = String::from("p.attributes");
        for (i, step) in before.iter().enumerate() {
            from.push(format!(
                "json_each(CASE json_type({object}, ?) WHEN 'array' THEN json_extract({object}, ?) \
                 WHEN 'object' THEN '[' || json_extract({object}, ?) || ']' END) o{i}"
            ));
            args.extend([json_step(step), json_step(step), json_step(step)]);
            object = format!("(CASE WHEN o{i}.type = 'object' THEN o{i}.value ELSE '{{}}' END)");
        }
        from.push(format!("json_each({object}, ?) j"));
        args.push(json_step(last));
        let (types, element) = match condition {
            AttributeCondition::Text(_) => ("'text', 'array'", "j.type = 'text'"),
            _ => ("'integer', 'real', 'array'", "j.type IN ('integer', 'real')"),
        };
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM {} WHERE json_type({object}, ?) IN ({types}) AND {element}",
            from.join(", ")
        ));
        args.push(json_step(last));
        match condition {
            AttributeCondition::Text(v) => {
                sql.push_str(" AND j.value = ?");
                args.push(SqlValue::Text(v.clone()));
            }
            AttributeCondition::Number(n) => {
                sql.push_str(" AND j.value = ?");
                args.push(SqlValue::Real(*n));
            }
            // Both bounds on the same element: [30, 50] is not "within 35 to 45".
            AttributeCondition::Range(r) => {
                for (op, bound) in [(">=", r.min), ("<=", r.max)] {
                    if let Some(b) = bound {
                        sql.push_str(&format!(" AND j.value {op} ?"));
                        args.push(SqlValue::Real(b));
                    }
                }
            }
        }
        sql.push(')');
    }
    Ok((sql, args))
}

pub(super) fn list(
    c: &Connection,
    f: &ProductFilter,
    offset: usize,
    limit: usize,
) -> Result<Page<Product>, StoreError> {
    let limit = clamp_limit(limit);
    let (cond, mut args) = filter_sql(f)?;
    let total: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM products p WHERE 1 = 1{cond}"))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    args.push(SqlValue::Integer(sql_count(limit + 1)));
    args.push(SqlValue::Integer(sql_count(offset)));
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM products p WHERE 1 = 1{cond} ORDER BY p.seq LIMIT ? OFFSET ?"
    ))?;
    let items = collect(stmt.query(rusqlite::params_from_iter(args.iter()))?)?;
    Ok(Page::from_probe(items, offset, limit, Some(count(total))))
}

pub(super) fn keys(c: &Connection, f: &ProductFilter) -> Result<Vec<ProductKey>, StoreError> {
    let (cond, args) = filter_sql(f)?;
    let mut stmt = c.prepare_cached(&format!("SELECT p.seq FROM products p WHERE 1 = 1{cond} ORDER BY p.seq"))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(product_key(row.get(0)?)?);
    }
    Ok(out)
}

/// Category counts of the products with these keys (see `CatalogStore::category_counts`). The
/// keys travel as one JSON array parameter (`json_each`), so a thousand keys are one
/// statement, not a thousand lookups nor a statement per list length.
pub(super) fn category_counts(c: &Connection, keys: &[ProductKey]) -> Result<Vec<CategoryCount>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = keys.iter().filter_map(|&k| sql_key(k)).collect();
    let list = serde_json::to_string(&seqs).map_err(|source| StoreError::Json { what: "keys", source })?;
    let mut stmt = c.prepare_cached(
        "SELECT p.category, count(*) FROM products p
         WHERE p.seq IN (SELECT value FROM json_each(?1)) AND p.category IS NOT NULL
         GROUP BY p.category",
    )?;
    let mut rows = stmt.query([list])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(CategoryCount { value: row.get(0)?, count: count(row.get(1)?) });
    }
    crate::types::sort_counts(&mut out);
    Ok(out)
}
