//! Product rows on PostgreSQL: writes (create, replace, patch, batches), reads, listings and
//! filters.
//!
//! As on SQLite, a write happens in two steps so a batch can refuse one bad product without
//! aborting the others: [`prepare`] checks everything that can be the caller's fault and writes
//! nothing; [`commit`] writes, and an error there is the database's and aborts the transaction
//! (PostgreSQL aborts the whole transaction on any failed statement anyway, which is why every
//! input check, NUL characters included, happens in `prepare`).
//!
//! Creation races between replicas are settled by the unique index, not by the read in
//! `prepare`: a create is `INSERT … ON CONFLICT DO NOTHING` (nothing inserted: a conflict), a
//! replace is `INSERT … ON CONFLICT DO UPDATE` (one atomic create-or-replace).

use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::pool::Db;
use time::OffsetDateTime;

use super::{count, embeddings, images, no_nul, product_key, sql_count, sql_key};
use crate::StoreError;
use crate::types::{
    AttributeCondition, CategoryCount, EmbeddingUpdate, NewProduct, Page, Product, ProductFilter, ProductKey, Upserted,
    clamp_limit, now, validate,
};

pub(super) const COLUMNS: &str = "p.seq, p.id, p.title, p.description, p.category, p.price, p.currency, p.image_url, p.image_sha256, p.attributes, p.created_at, p.updated_at, p.images";

/// Reads a row selected with [`COLUMNS`].
pub(super) fn from_row(row: &Row) -> Result<Product, StoreError> {
    Ok(Product {
        key: product_key(row.try_get(0)?)?,
        id: row.try_get(1)?,
        title: row.try_get(2)?,
        description: row.try_get(3)?,
        category: row.try_get(4)?,
        price: row.try_get(5)?,
        currency: row.try_get(6)?,
        image_url: row.try_get(7)?,
        image_sha256: row.try_get(8)?,
        attributes: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        images: serde_json::from_value(row.try_get(12)?)
            .map_err(|source| StoreError::Json { what: "images", source })?,
    })
}

pub(super) fn collect(rows: &[Row]) -> Result<Vec<Product>, StoreError> {
    rows.iter().map(from_row).collect()
}

pub(super) fn by_id(db: Db<'_>, id: &str) -> Result<Option<Product>, StoreError> {
    no_nul("id", id)?;
    db.query_opt(&format!("SELECT {COLUMNS} FROM products p WHERE p.id = $1"), &[&id])?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Like [`by_id`], locking the row until the transaction ends: a PATCH reads, merges and writes,
/// and two replicas patching one product must not both merge into the same old version.
pub(super) fn by_id_for_update(db: Db<'_>, id: &str) -> Result<Option<Product>, StoreError> {
    no_nul("id", id)?;
    db.query_opt(&format!("SELECT {COLUMNS} FROM products p WHERE p.id = $1 FOR UPDATE"), &[&id])?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(super) fn by_keys(db: Db<'_>, keys: &[ProductKey]) -> Result<Vec<Product>, StoreError> {
    let seqs: Vec<i64> = keys.iter().filter_map(|&k| sql_key(k)).collect();
    let rows = db.query(&format!("SELECT {COLUMNS} FROM products p WHERE p.seq = ANY($1)"), &[&seqs])?;
    let mut found: std::collections::HashMap<ProductKey, Product> =
        collect(&rows)?.into_iter().map(|p| (p.key, p)).collect();
    // The caller's order, as SQLite's point lookups give it; a repeated key repeats its product.
    let mut out = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let again = keys[i + 1..].contains(key);
        let product = if again { found.get(key).cloned() } else { found.remove(key) };
        out.extend(product);
    }
    Ok(out)
}

pub(super) fn key_of(db: Db<'_>, id: &str) -> Result<Option<ProductKey>, StoreError> {
    no_nul("id", id)?;
    db.query_opt("SELECT seq FROM products WHERE id = $1", &[&id])?.map(|r| product_key(r.try_get(0)?)).transpose()
}

/// A product write checked and ready to commit.
pub(super) struct Prepared<'a> {
    product: &'a NewProduct,
    embeddings: EmbeddingUpdate<'a>,
    mode: Mode,
    /// The photos of the row being replaced (main first), read under its row lock.
    old_images: Vec<String>,
}

/// Whether an existing id is an error (POST), replaced (PUT), or replaced only while it is
/// still the version the caller read (anything else is [`StoreError::Stale`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Put,
    IfUnchanged(OffsetDateTime),
}

/// The shared validation plus what only PostgreSQL refuses (NUL characters in text and JSON).
fn validate_for_postgres(p: &NewProduct) -> Result<(), StoreError> {
    validate::new_product(p)?;
    let json = validate::attributes_json(p)?;
    if json.contains("\\u0000") {
        return Err(StoreError::invalid("attributes", "must not contain the NUL character (U+0000)"));
    }
    no_nul("title", &p.title)?;
    no_nul("description", &p.description)?;
    for (field, v) in [("category", &p.category), ("image_url", &p.image_url)] {
        if let Some(v) = v {
            no_nul(field, v)?;
        }
    }
    for url in p.images.iter().filter_map(|i| i.url.as_deref()) {
        no_nul("images", url)?;
    }
    Ok(())
}

/// Checks one write against the rules and the stored data; writes nothing.
pub(super) fn prepare<'a>(
    db: Db<'_>,
    product: &'a NewProduct,
    embeddings: EmbeddingUpdate<'a>,
    mode: Mode,
) -> Result<Prepared<'a>, StoreError> {
    validate_for_postgres(product)?;
    let uploads = product.image_sha256.iter().map(|s| ("image_sha256", s));
    for (field, sha) in uploads.chain(product.images.iter().filter_map(|i| i.sha256.as_ref()).map(|s| ("images", s))) {
        let stored: bool =
            db.query_one("SELECT EXISTS (SELECT 1 FROM product_images WHERE sha256 = $1)", &[sha])?.try_get(0)?;
        if !stored {
            return Err(StoreError::invalid(field, "no image with this digest has been stored"));
        }
    }
    // A replace locks the row it replaces until the transaction ends: a replica writing the
    // same product waits here, then reads the version this one wrote (Read Committed takes a
    // fresh snapshot per statement), so the version check below cannot pass for both.
    let lock = if mode == Mode::Create { "" } else { " FOR UPDATE" };
    let existing = db
        .query_opt(&format!("SELECT seq, updated_at, image_sha256 FROM products WHERE id = $1{lock}"), &[&product.id])?
        .map(|r| -> Result<(i64, OffsetDateTime, Option<String>), StoreError> {
            Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
        })
        .transpose()?;
    match (mode, &existing) {
        (Mode::Create, Some(_)) => return Err(StoreError::Conflict(format!("product {}", product.id))),
        (Mode::IfUnchanged(expected), e) if e.as_ref().map(|e| e.1) != Some(expected) => {
            return Err(StoreError::Stale(format!("product {}", product.id)));
        }
        _ => {}
    }
    if let EmbeddingUpdate::Merge(list) | EmbeddingUpdate::Replace(list) = embeddings {
        validate::embeddings(list)?;
        embeddings::check_dims(db, existing.as_ref().map(|e| e.0), list)?;
    }
    let mut old_images: Vec<String> = existing.as_ref().and_then(|e| e.2.clone()).into_iter().collect();
    if let Some(e) = &existing {
        old_images.extend(images::of_photos(db, e.0)?);
    }
    Ok(Prepared { product, embeddings, mode, old_images })
}

/// Every write moves `updated_at` forward, even within one microsecond or on a replica whose
/// clock is behind: it is the version a conditional replace (`If-Match`) compares.
const BUMP: &str = "updated_at = GREATEST(excluded.updated_at, p.updated_at + interval '1 microsecond')";

const INSERT: &str = "INSERT INTO products AS p (id, title, description, category, price, currency, image_url,
         image_sha256, attributes, created_at, updated_at, images)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)";

/// Writes a prepared product and its embeddings.
pub(super) fn commit(db: Db<'_>, w: Prepared<'_>) -> Result<Upserted, StoreError> {
    let p = w.product;
    let updated_at = now();
    let images = serde_json::to_value(&p.images).map_err(|source| StoreError::Json { what: "images", source })?;
    let params: [&(dyn ToSql + Sync); 11] = [
        &p.id,
        &p.title,
        &p.description,
        &p.category,
        &p.price,
        &p.currency,
        &p.image_url,
        &p.image_sha256,
        &p.attributes,
        &updated_at,
        &images,
    ];
    let row = match w.mode {
        // A concurrent create of the same id on another replica may have won since `prepare`.
        Mode::Create => db
            .query_opt(&format!("{INSERT} ON CONFLICT (id) DO NOTHING RETURNING p.seq, p.created_at, true"), &params)?
            .ok_or_else(|| StoreError::Conflict(format!("product {}", p.id)))?,
        // `xmax = 0` holds for a freshly inserted row version, not for an updated one.
        Mode::Put => db.query_one(
            &format!(
                "{INSERT} ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
                     category = excluded.category, price = excluded.price, currency = excluded.currency,
                     image_url = excluded.image_url, image_sha256 = excluded.image_sha256,
                     attributes = excluded.attributes, images = excluded.images, {BUMP}
                 RETURNING p.seq, p.created_at, (p.xmax = 0), p.updated_at"
            ),
            &params,
        )?,
        // Checked under the row lock in `prepare`; the condition repeats it in the statement.
        Mode::IfUnchanged(expected) => db
            .query_opt(
                "UPDATE products AS p SET title = $2, description = $3, category = $4, price = $5,
                     currency = $6, image_url = $7, image_sha256 = $8, attributes = $9, images = $11,
                     updated_at = GREATEST($10, p.updated_at + interval '1 microsecond')
                 WHERE p.id = $1 AND p.updated_at = $12
                 RETURNING p.seq, p.created_at, false, p.updated_at",
                &[&params[..], &[&expected]].concat(),
            )?
            .ok_or_else(|| StoreError::Stale(format!("product {}", p.id)))?,
    };
    let seq: i64 = row.try_get(0)?;
    let created: bool = row.try_get(2)?;
    let updated_at: OffsetDateTime = if created { updated_at } else { row.try_get(3)? };
    embeddings::apply(db, seq, w.embeddings)?;
    let now_shown: Vec<&str> = p.images.iter().filter_map(|i| i.sha256.as_deref()).collect();
    images::set_photos(db, seq, &now_shown)?;
    // A replaced photo goes with the version that used it (it may carry the owner's GPS).
    for old in &w.old_images {
        if p.image_sha256.as_deref() != Some(old.as_str()) && !now_shown.contains(&old.as_str()) {
            images::drop_if_orphan(db, old)?;
        }
    }
    let product = Product {
        key: product_key(seq)?,
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
        created_at: row.try_get(1)?,
        updated_at,
    };
    Ok(Upserted { product, created })
}

/// Deletes by id; embeddings go by `ON DELETE CASCADE`, the text index with the row, the
/// photo here unless another product shows it too.
pub(super) fn delete(db: Db<'_>, id: &str) -> Result<ProductKey, StoreError> {
    no_nul("id", id)?;
    // The photo rows go with the product (cascade): read which uploads they showed first.
    let further: Vec<String> = db
        .query(
            "SELECT f.sha256 FROM product_photo_images f JOIN products p ON p.seq = f.product_seq WHERE p.id = $1",
            &[&id],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let row = db
        .query_opt("DELETE FROM products WHERE id = $1 RETURNING seq, image_sha256", &[&id])?
        .ok_or_else(|| StoreError::NotFound(format!("product {id}")))?;
    let main = row.try_get::<_, Option<String>>(1)?;
    for sha in main.iter().chain(&further) {
        images::drop_if_orphan(db, sha)?;
    }
    product_key(row.try_get(0)?)
}

/// SQL parameters collected while a statement is built, numbered `$1…` in order, with their
/// types so a one-off statement can run without a prepare round trip (`query_typed`).
#[derive(Default)]
pub(super) struct Args {
    values: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

/// The SQL type of a parameter value.
pub(super) trait SqlType: ToSql + Sync + Send + 'static {
    const TYPE: Type;
}

impl SqlType for String {
    const TYPE: Type = Type::TEXT;
}

impl SqlType for f64 {
    const TYPE: Type = Type::FLOAT8;
}

impl SqlType for i64 {
    const TYPE: Type = Type::INT8;
}

impl SqlType for Vec<f32> {
    const TYPE: Type = Type::FLOAT4_ARRAY;
}

impl SqlType for serde_json::Value {
    const TYPE: Type = Type::JSONB;
}

impl Args {
    /// Adds a parameter and returns its placeholder.
    pub(super) fn push<T: SqlType>(&mut self, v: T) -> String {
        self.values.push((Box::new(v), T::TYPE));
        format!("${}", self.values.len())
    }

    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|(v, _)| &**v as &(dyn ToSql + Sync)).collect()
    }

    pub(super) fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values.iter().map(|(v, t)| (&**v as &(dyn ToSql + Sync), t.clone())).collect()
    }
}

/// The `AND …` conditions of a filter on table alias `p`, their parameters added to `args`.
pub(super) fn filter_sql(f: &ProductFilter, args: &mut Args) -> Result<String, StoreError> {
    validate::filter(f)?;
    let mut sql = String::new();
    if let Some(c) = &f.category {
        no_nul("category", c)?;
        sql.push_str(&format!(" AND p.category = {}", args.push(c.clone())));
    }
    // `price >= NULL` is never true, so unpriced products drop out of any price bound.
    if let Some(min) = f.min_price {
        sql.push_str(&format!(" AND p.price >= {}", args.push(min)));
    }
    if let Some(max) = f.max_price {
        sql.push_str(&format!(" AND p.price <= {}", args.push(max)));
    }
    // Typed as on SQLite: jsonb equality compares a string with a string and a number with a
    // number (numerically: 42 = 42.0), never "42" with 42. Each step is `->` with a text key
    // (never `#>`, which would read `a.0` as an array index). Every step's value is walked as
    // an array (a scalar or object as a one-element one): before the last step, an object
    // element is looked into (`variants.size` reads each variant) and anything else gives NULL
    // (`->` with a text key on a scalar or an array), which matches nothing; at the last step
    // each element is tested (nested arrays and objects never equal a scalar). The range's cast
    // sits in a CASE because PostgreSQL does not promise to test `jsonb_typeof` before casting
    // "red". Fan-out is bounded by MAX_ATTRIBUTE_DEPTH steps over one bounded object.
    for (key, condition) in &f.attributes {
        let steps: Vec<&str> = key.split('.').collect();
        let mut from = Vec::new();
        let mut object = String::from("p.attributes");
        for (i, step) in steps.iter().enumerate() {
            let value = format!("{object} -> {}", args.push(step.to_string()));
            let name = if i + 1 == steps.len() { String::from("elem") } else { format!("attr_{i}") };
            from.push(format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof({value}) = 'array' THEN {value} \
                 ELSE jsonb_build_array({value}) END) AS attr_elems_{i}({name})"
            ));
            object = name;
        }
        let elements = from.join(" CROSS JOIN LATERAL ");
        let test = match condition {
            AttributeCondition::Text(v) => {
                no_nul("attributes", v)?;
                format!("elem = {}", args.push(serde_json::Value::String(v.clone())))
            }
            AttributeCondition::Number(n) => format!("elem = {}", args.push(serde_json::json!(n))),
            // Both bounds on the same element: [30, 50] is not "within 35 to 45".
            AttributeCondition::Range(r) => {
                let number = "(CASE WHEN jsonb_typeof(elem) = 'number' THEN (elem #>> '{}')::float8 END)";
                let mut test = String::from("jsonb_typeof(elem) = 'number'");
                for (op, bound) in [(">=", r.min), ("<=", r.max)] {
                    if let Some(b) = bound {
                        test.push_str(&format!(" AND {number} {op} {}", args.push(b)));
                    }
                }
                test
            }
        };
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM {elements} WHERE {test})"));
    }
    Ok(sql)
}

pub(super) fn list(db: Db<'_>, f: &ProductFilter, offset: usize, limit: usize) -> Result<Page<Product>, StoreError> {
    let limit = clamp_limit(limit);
    let mut args = Args::default();
    let cond = filter_sql(f, &mut args)?;
    let total: i64 =
        db.query_one(&format!("SELECT count(*) FROM products p WHERE true{cond}"), &args.refs())?.try_get(0)?;
    let (lim, off) = (args.push(sql_count(limit + 1)), args.push(sql_count(offset)));
    let rows = db.query(
        &format!("SELECT {COLUMNS} FROM products p WHERE true{cond} ORDER BY p.seq LIMIT {lim} OFFSET {off}"),
        &args.refs(),
    )?;
    Ok(Page::from_probe(collect(&rows)?, offset, limit, Some(count(total))))
}

pub(super) fn keys(db: Db<'_>, f: &ProductFilter) -> Result<Vec<ProductKey>, StoreError> {
    let mut args = Args::default();
    let cond = filter_sql(f, &mut args)?;
    let rows = db.query(&format!("SELECT p.seq FROM products p WHERE true{cond} ORDER BY p.seq"), &args.refs())?;
    rows.iter().map(|r| product_key(r.try_get(0)?)).collect()
}

/// Category counts of the products with these keys (see `CatalogStore::category_counts`), in
/// one round trip (`seq = ANY($1)`; `IN` over an array counts a repeated key once).
pub(super) fn category_counts(db: Db<'_>, keys: &[ProductKey]) -> Result<Vec<CategoryCount>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = keys.iter().filter_map(|&k| sql_key(k)).collect();
    let rows = db.query(
        "SELECT p.category, count(*) FROM products p
         WHERE p.seq = ANY($1) AND p.category IS NOT NULL GROUP BY p.category",
        &[&seqs],
    )?;
    let mut out = rows
        .iter()
        .map(|r| Ok(CategoryCount { value: r.try_get(0)?, count: count(r.try_get(1)?) }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    crate::types::sort_counts(&mut out);
    Ok(out)
}
