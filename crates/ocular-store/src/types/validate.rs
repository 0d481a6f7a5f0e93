//! The rules every backend checks before writing, so all backends refuse the same inputs with
//! the same message, and a bad record is refused before any row of its batch is written.
//!
//! Limits are generous for real catalogs and small enough that one product cannot make a page of
//! results megabytes long.

use super::{Analysis, Embedding, NewImport, NewProduct, ProductFilter};
use crate::StoreError;

pub const MAX_ID_CHARS: usize = 128;
pub const MAX_TITLE_CHARS: usize = 1_000;
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
pub const MAX_CATEGORY_CHARS: usize = 200;
pub const MAX_URL_BYTES: usize = 2_048;
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
pub const MAX_DIM: usize = 8_192;

fn invalid(field: &str, reason: impl Into<String>) -> StoreError {
    StoreError::invalid(field, reason)
}

/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -`: safe in a URL path and a file name as is.
pub fn product_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_ID_CHARS {
        return Err(invalid("id", format!("must be 1 to {MAX_ID_CHARS} characters long")));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))) {
        return Err(invalid("id", format!("{c:?} is not allowed; use A-Z a-z 0-9 . _ : -")));
    }
    Ok(())
}

fn max_chars(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    // Byte length bounds char count from above, so most values skip the count.
    if value.len() > max && value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

pub fn sha256_hex(field: &str, v: &str) -> Result<(), StoreError> {
    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(invalid(field, "must be 64 lower-case hexadecimal digits"));
    }
    Ok(())
}

pub fn new_product(p: &NewProduct) -> Result<(), StoreError> {
    product_id(&p.id)?;
    if p.title.trim().is_empty() {
        return Err(invalid("title", "must not be empty"));
    }
    max_chars("title", &p.title, MAX_TITLE_CHARS)?;
    max_chars("description", &p.description, MAX_DESCRIPTION_CHARS)?;
    if let Some(c) = &p.category {
        if c.trim().is_empty() {
            return Err(invalid("category", "must not be empty; leave it out instead"));
        }
        max_chars("category", c, MAX_CATEGORY_CHARS)?;
    }
    if let Some(price) = p.price
        && !(price.is_finite() && price >= 0.0)
    {
        return Err(invalid("price", "must be a finite number, 0 or more"));
    }
    if let Some(c) = &p.currency
        && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(invalid("currency", "must be an ISO 4217 code such as USD"));
    }
    if let Some(url) = &p.image_url
        && (url.is_empty() || url.len() > MAX_URL_BYTES)
    {
        return Err(invalid("image_url", format!("must be 1 to {MAX_URL_BYTES} bytes long")));
    }
    if let Some(sha) = &p.image_sha256 {
        sha256_hex("image_sha256", sha)?;
    }
    if p.images.len() >= super::MAX_PHOTOS {
        return Err(invalid("images", format!("at most {} further photos", super::MAX_PHOTOS - 1)));
    }
    for image in &p.images {
        if image.url.is_none() && image.sha256.is_none() {
            return Err(invalid("images", "each photo needs a `url` or a `sha256`"));
        }
        if let Some(url) = &image.url
            && (url.is_empty() || url.len() > MAX_URL_BYTES)
        {
            return Err(invalid("images", format!("a `url` must be 1 to {MAX_URL_BYTES} bytes long")));
        }
        if let Some(sha) = &image.sha256 {
            sha256_hex("images", sha)?;
        }
    }
    if !p.attributes.is_object() {
        return Err(invalid("attributes", "must be a JSON object"));
    }
    Ok(())
}

/// Serialises attributes, refusing oversized ones.
pub fn attributes_json(p: &NewProduct) -> Result<String, StoreError> {
    let json =
        serde_json::to_string(&p.attributes).map_err(|source| StoreError::Json { what: "attributes", source })?;
    if json.len() > MAX_ATTRIBUTES_BYTES {
        return Err(invalid("attributes", format!("are larger than {MAX_ATTRIBUTES_BYTES} bytes")));
    }
    Ok(json)
}

/// Serialises further photos for their JSON column.
pub fn images_json(p: &NewProduct) -> Result<String, StoreError> {
    serde_json::to_string(&p.images).map_err(|source| StoreError::Json { what: "images", source })
}

/// Reads further photos back from their JSON column.
pub fn images_from_json(json: &str) -> Result<Vec<super::ProductImage>, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Json { what: "images", source })
}

/// `image`, `text`, `image_text`: short lower-case names, safe in metrics and table names.
pub fn space(space: &str) -> Result<(), StoreError> {
    if space.is_empty()
        || space.len() > 32
        || !space.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid("embedding space", "must be 1 to 32 characters of a-z 0-9 _"));
    }
    Ok(())
}

pub fn embeddings(list: &[Embedding]) -> Result<(), StoreError> {
    for (i, e) in list.iter().enumerate() {
        space(&e.space)?;
        if list[..i].iter().any(|o| o.space == e.space && o.photo == e.photo) {
            return Err(invalid("embeddings", format!("space {:?} photo {} is given twice", e.space, e.photo)));
        }
        if usize::from(e.photo) >= super::MAX_PHOTOS {
            return Err(invalid("embeddings", format!("photo must be below {}", super::MAX_PHOTOS)));
        }
        if e.model.is_empty() || e.model.len() > 128 || !e.model.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("embedding model", "must be 1 to 128 printable ASCII characters, no spaces"));
        }
        if e.vector.is_empty() || e.vector.len() > MAX_DIM {
            return Err(invalid("embedding vector", format!("must have 1 to {MAX_DIM} dimensions")));
        }
        if !e.vector.iter().all(|x| x.is_finite()) {
            return Err(invalid("embedding vector", "contains a NaN or infinite component"));
        }
    }
    Ok(())
}

pub fn filter(f: &ProductFilter) -> Result<(), StoreError> {
    for (field, v) in [("min_price", f.min_price), ("max_price", f.max_price)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(invalid(field, "must be a finite number"));
        }
    }
    attribute_filters(f)
}

/// Bounds attribute conditions: they come from requests and each becomes SQL (parameters,
/// never text), so their number, paths and values are capped, and a path is 1 to
/// [`MAX_ATTRIBUTE_DEPTH`] plain names joined by `.`, so each step is one object-key lookup on
/// both backends (no quoting, wildcards or array indexes to interpret differently; an array
/// of objects on the way is looked into element by element, bounded by the depth and by
/// [`MAX_ATTRIBUTES_BYTES`] of stored attributes).
///
/// [`MAX_ATTRIBUTE_DEPTH`]: super::product::MAX_ATTRIBUTE_DEPTH
pub fn attribute_filters(f: &ProductFilter) -> Result<(), StoreError> {
    use super::product::{
        AttributeCondition as C, MAX_ATTRIBUTE_DEPTH, MAX_ATTRIBUTE_FILTERS, MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE,
    };
    if f.attributes.len() > MAX_ATTRIBUTE_FILTERS {
        return Err(invalid("attributes", format!("at most {MAX_ATTRIBUTE_FILTERS} attribute filters")));
    }
    for (key, condition) in &f.attributes {
        let plain = |step: &str| {
            !step.is_empty()
                && step.len() <= MAX_ATTRIBUTE_KEY
                && step.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if key.split('.').count() > MAX_ATTRIBUTE_DEPTH || !key.split('.').all(plain) {
            return Err(invalid(
                "attributes",
                format!(
                    "attribute names must be 1 to {MAX_ATTRIBUTE_DEPTH} names joined by `.`, \
                     each 1 to {MAX_ATTRIBUTE_KEY} characters of A-Z a-z 0-9 _ -"
                ),
            ));
        }
        match condition {
            C::Text(v) if v.is_empty() || v.chars().count() > MAX_ATTRIBUTE_VALUE || v.contains('\0') => {
                return Err(invalid(
                    "attributes",
                    format!("attribute {key}: text values must be 1 to {MAX_ATTRIBUTE_VALUE} characters, no NUL"),
                ));
            }
            C::Number(n) if !n.is_finite() => {
                return Err(invalid("attributes", format!("attribute {key}: must be a finite number")));
            }
            C::Range(r) => {
                if r.min.is_none() && r.max.is_none() {
                    return Err(invalid("attributes", format!("attribute {key}: a range needs `min` or `max`")));
                }
                if [r.min, r.max].into_iter().flatten().any(|v| !v.is_finite()) {
                    return Err(invalid("attributes", format!("attribute {key}: bounds must be finite numbers")));
                }
                if let (Some(lo), Some(hi)) = (r.min, r.max)
                    && lo > hi
                {
                    return Err(invalid("attributes", format!("attribute {key}: `min` must not exceed `max`")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn content_type(ct: &str) -> Result<(), StoreError> {
    let ok = ct.len() <= 100
        && ct.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && ct.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(invalid("content_type", "must be a media type such as image/jpeg"));
    }
    Ok(())
}

/// The id must already be a canonical (hyphenated, lower-case) UUID, so one analysis has one
/// spelling and lookups by the URL form always find it.
pub fn analysis(a: &Analysis) -> Result<(), StoreError> {
    let canonical = uuid::Uuid::parse_str(&a.id).map(|u| u.hyphenated().to_string());
    if canonical.as_deref() != Ok(a.id.as_str()) {
        return Err(invalid("analysis id", "must be a hyphenated lower-case UUID"));
    }
    if let Some(hash) = &a.token_sha256 {
        sha256_hex("analysis token_sha256", hash)?;
    }
    Ok(())
}

pub fn new_import(i: &NewImport) -> Result<(), StoreError> {
    sha256_hex("source_sha256", &i.source_sha256)?;
    if i.chunk_lines == 0 {
        return Err(invalid("chunk_lines", "must be at least 1"));
    }
    max_chars("source", &i.source, 1_000)
}

/// Worker names are free text for people, but bounded.
pub fn worker(w: &str) -> Result<(), StoreError> {
    if w.is_empty() || w.len() > 200 {
        return Err(invalid("worker", "must be 1 to 200 bytes long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids() {
        for ok in ["a", "SKU-1", "shop:42_x.y", &"x".repeat(128)] {
            product_id(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", "a?b", &"x".repeat(129)] {
            assert!(matches!(product_id(bad), Err(StoreError::Invalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn product_fields() {
        let good = NewProduct::new("p", "Mug");
        new_product(&good).unwrap();
        let bad = [
            NewProduct { title: " ".into(), ..good.clone() },
            NewProduct { price: Some(-1.0), ..good.clone() },
            NewProduct { price: Some(f64::NAN), ..good.clone() },
            NewProduct { currency: Some("usd".into()), ..good.clone() },
            NewProduct { image_sha256: Some("ABC".into()), ..good.clone() },
            NewProduct { attributes: serde_json::json!([1]), ..good.clone() },
            NewProduct { category: Some(String::new()), ..good.clone() },
            NewProduct { title: "é".repeat(MAX_TITLE_CHARS + 1), ..good.clone() },
        ];
        for p in bad {
            assert!(new_product(&p).is_err(), "{p:?}");
        }
        // Multi-byte characters count as one each.
        new_product(&NewProduct { title: "é".repeat(MAX_TITLE_CHARS), ..good }).unwrap();
    }

    #[test]
    fn embedding_rules() {
        let e = |s: &str, v: Vec<f32>| Embedding::new(s, "m@1", v);
        embeddings(&[e("image", vec![1.0]), e("text", vec![0.5, 0.5])]).unwrap();
        assert!(embeddings(&[e("image", vec![1.0]), e("image", vec![1.0])]).is_err());
        assert!(embeddings(&[e("Image", vec![1.0])]).is_err());
        assert!(embeddings(&[e("image", vec![])]).is_err());
        assert!(embeddings(&[e("image", vec![f32::INFINITY])]).is_err());
        assert!(embeddings(&[Embedding::new("image", "has space", vec![1.0])]).is_err());
    }

    #[test]
    fn analysis_ids_are_canonical() {
        let mut a = Analysis::new(serde_json::json!({}), serde_json::json!({}), serde_json::json!({}));
        analysis(&a).unwrap();
        a.id = a.id.to_uppercase();
        assert!(analysis(&a).is_err());
        a.id = "not-a-uuid".into();
        assert!(analysis(&a).is_err());
    }
}
