//! Catalog files into product records: JSON Lines, CSV with a header, and MongoDB
//! `mongoexport` output (JSON Lines or `--jsonArray`), since the original catalog lived in
//! MongoDB.
//!
//! Every format becomes a JSON object per record, mapped by one function ([`to_record`]):
//! - `id` (else `_id`, else `sku`); Mongo's `{"$oid": "…"}` becomes its hex string;
//! - `title` (else `name`), `description`, `category`, `currency`;
//! - `price`: a number, a numeric string, or Mongo's `$numberDecimal` / `$numberDouble` /
//!   `$numberInt` / `$numberLong`;
//! - the photo: `image` (else `image_url`, `image_path`, or the first of `images`): an
//!   `http(s)://` URL, or a path relative to the catalog file;
//! - further photos: the rest of `images` (a JSON array; in CSV one cell, the photos separated
//!   by `|`), kept up to [`MAX_PHOTOS`] photos in all (the store's ceiling; the import keeps
//!   the first [`Catalog::max_photos`](crate::Catalog::max_photos) of them), each embedded once;
//! - `attributes` (an object; in CSV, a JSON cell), plus every other field, so nothing the
//!   shop exported is lost. Mongo extended JSON is unwrapped everywhere (`$date` → its value).
//!
//! A bad record fails alone, with its line number; only an unreadable file fails the import.

use std::path::{Path, PathBuf};

use ocular_store::NewProduct;
use serde_json::{Map, Value};

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    /// `mongoexport` JSON: one document per line, or one array with `--jsonArray`.
    Mongo,
}

impl Format {
    /// From `--format`, or guessed from the file name (`.csv`; `.json` is Mongo; else JSONL).
    pub fn resolve(given: Option<&str>, path: &Path) -> Result<Self, String> {
        match given.map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson" | "json-lines") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            Some("mongo" | "mongoexport") => Ok(Format::Mongo),
            Some(other) => Err(format!("unknown format {other:?}; use jsonl, csv or mongo")),
            None => Ok(match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
                Some("csv") => Format::Csv,
                Some("json") => Format::Mongo,
                _ => Format::Jsonl,
            }),
        }
    }
}

/// Where a product's photo comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Path(PathBuf),
    Url(String),
}

/// A record that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub product: NewProduct,
    pub image: Option<ImageRef>,
    /// Further photos after `image`, in order (at most [`MAX_PHOTOS`] - 1).
    pub further: Vec<ImageRef>,
}

pub use ocular_store::MAX_PHOTOS;

/// One record of the file: `number` counts records from 1 (the import bookkeeping's unit),
/// `line` is where it starts, for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub number: u64,
    pub line: u64,
    pub parsed: Result<Parsed, String>,
}

/// Parses a whole text (tests, small inputs); files are read as a stream by
/// [`super::source`]. `base` is the directory relative image paths start from.
pub fn parse(text: &str, format: Format, base: &Path) -> Result<Vec<Record>, String> {
    let open = || Ok(Box::new(text.as_bytes()) as Box<dyn std::io::Read>);
    super::source::Records::new(&open, format, base)?.collect()
}

/// Unwraps MongoDB extended JSON (`$oid`, `$number*`, `$date`) recursively.
pub fn plain(value: Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let (k, v) = map.into_iter().next().unwrap_or_default();
            match (k.as_str(), v) {
                ("$oid" | "$symbol", v @ Value::String(_)) => v,
                ("$numberInt" | "$numberLong", Value::String(s)) => {
                    s.parse::<i64>().map(Value::from).unwrap_or(Value::String(s))
                }
                ("$numberDecimal" | "$numberDouble", Value::String(s)) => {
                    s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::String(s), Value::Number)
                }
                ("$date", v) => plain(v),
                (_, v) => Value::Object(Map::from_iter([(k, plain(v))])),
            }
        }
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, plain(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        other => other,
    }
}

fn take(obj: &mut Map<String, Value>, names: &[&str]) -> Option<Value> {
    names.iter().find_map(|n| obj.remove(*n).filter(|v| !v.is_null()))
}

fn text(field: &str, v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{field} must be text, got {other}")),
    }
}

/// Maps one record's JSON object to a product (see the module docs).
pub fn to_record(value: Value, base: &Path) -> Result<Parsed, String> {
    let Value::Object(mut obj) = plain(value) else { return Err("a record must be a JSON object".into()) };
    let id = take(&mut obj, &["id", "_id", "sku"]).ok_or("the record has no id")?;
    let title = take(&mut obj, &["title", "name"]).ok_or("the record has no title")?;
    let mut product = NewProduct::new(text("id", id)?.trim(), text("title", title)?);
    if let Some(v) = take(&mut obj, &["description"]) {
        product.description = text("description", v)?;
    }
    if let Some(v) = take(&mut obj, &["category"]) {
        product.category = Some(text("category", v)?);
    }
    if let Some(v) = take(&mut obj, &["currency"]) {
        product.currency = Some(text("currency", v)?.trim().to_ascii_uppercase());
    }
    if let Some(v) = take(&mut obj, &["price"]) {
        product.price = Some(match v {
            Value::Number(n) => n.as_f64().ok_or("price is not a number")?,
            Value::String(s) => s.trim().parse().map_err(|_| format!("price {s:?} is not a number"))?,
            other => return Err(format!("price must be a number, got {other}")),
        });
    }
    let mut photos = Vec::new();
    if let Some(v) = take(&mut obj, &["image", "image_url", "image_path"]) {
        photos.push(text("image", v)?);
    }
    match take(&mut obj, &["images"]) {
        Some(Value::Array(items)) => {
            for v in items {
                photos.push(text("images", v)?);
            }
        }
        // A CSV cell (or a JSON string): photos separated by `|`.
        Some(v) => photos.extend(text("images", v)?.split('|').map(str::to_string)),
        None => {}
    }
    let mut refs: Vec<ImageRef> = Vec::new();
    for s in photos.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let r = if s.starts_with("http://") || s.starts_with("https://") {
            ImageRef::Url(s.to_string())
        } else {
            ImageRef::Path(base.join(s))
        };
        if !refs.contains(&r) && refs.len() < MAX_PHOTOS {
            refs.push(r);
        }
    }
    let mut refs = refs.into_iter();
    let image = refs.next();
    let further = refs.collect();
    let mut attributes = match take(&mut obj, &["attributes"]) {
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("attributes must be an object, got {other}")),
        None => Map::new(),
    };
    // Everything else the shop exported is kept rather than silently dropped.
    for (k, v) in obj {
        attributes.entry(k).or_insert(v);
    }
    product.attributes = Value::Object(attributes);
    Ok(Parsed { product, image, further })
}
