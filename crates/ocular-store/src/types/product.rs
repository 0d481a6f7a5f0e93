//! Products of the visual-search catalog, their embeddings and uploaded images.
//!
//! A product has two identities: the client's `id` (a string the shop chose, used in URLs) and
//! the store's [`ProductKey`] (a never-reused integer the in-memory vector index uses as its
//! `u64` id, because an index of integers is far smaller and faster than one of strings).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// The store's stable integer key of a product: SQLite's `AUTOINCREMENT` rowid or PostgreSQL's
/// identity column. Never reused after a delete, so a stale key cannot name another product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductKey(pub u64);

impl std::fmt::Display for ProductKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The fields a client writes: the body of a create (POST) or a replace (PUT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProduct {
    /// Client-given, unique: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    /// ISO 4217 code, three upper-case letters.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    /// The SHA-256 (lower-case hex) of an image stored with `put_image`.
    #[serde(default)]
    pub image_sha256: Option<String>,
    /// Further photos after the main one (`image_url` / `image_sha256`, photo 0): photo `i` is
    /// `images[i - 1]`. At most [`MAX_PHOTOS`] photos in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ProductImage>,
    /// Free JSON; must be an object.
    #[serde(default = "empty_object")]
    pub attributes: Value,
}

/// The most photos one product may have, the main one included: each is one vector per photo
/// space, and a photo search folds a product's photos into its best one.
pub const MAX_PHOTOS: usize = 16;

/// One further photo of a product: where it came from and/or the stored upload, as the main
/// photo's `image_url` / `image_sha256`. At least one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The SHA-256 (lower-case hex) of an image stored with `put_image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl NewProduct {
    /// A product with only the required fields set.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        NewProduct {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            category: None,
            price: None,
            currency: None,
            image_url: None,
            image_sha256: None,
            images: Vec::new(),
            attributes: empty_object(),
        }
    }
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub key: ProductKey,
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub image_url: Option<String>,
    pub image_sha256: Option<String>,
    /// Further photos (see [`NewProduct::images`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ProductImage>,
    pub attributes: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Product {
    /// The writable fields, e.g. to compute embeddings for a patched product before writing it.
    pub fn to_new(&self) -> NewProduct {
        NewProduct {
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            price: self.price,
            currency: self.currency.clone(),
            image_url: self.image_url.clone(),
            image_sha256: self.image_sha256.clone(),
            images: self.images.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// Photo `index` of the product (0: the main one), as its URL and stored digest; `None`
    /// past the last photo.
    pub fn photo(&self, index: usize) -> Option<(Option<&str>, Option<&str>)> {
        match index {
            0 => Some((self.image_url.as_deref(), self.image_sha256.as_deref())),
            i => self.images.get(i - 1).map(|p| (p.url.as_deref(), p.sha256.as_deref())),
        }
    }

    /// Every stored upload the product shows (main photo first), for photo clean-up.
    pub fn image_digests(&self) -> impl Iterator<Item = &str> {
        self.image_sha256.as_deref().into_iter().chain(self.images.iter().filter_map(|p| p.sha256.as_deref()))
    }
}

/// Deserialises a present field (even `null`) as `Some`, so an absent field stays `None`:
/// PATCH needs "leave as is" (absent) apart from "clear" (`null`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update (PATCH): absent fields are kept, `null` clears an optional field.
///
/// `attributes` is a JSON merge patch (RFC 7396) on the stored object: keys set to `null` are
/// removed, objects merge recursively, anything else replaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub price: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub image_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub image_sha256: Option<Option<String>>,
    /// Replaces the further photos (`[]` removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ProductImage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
}

impl ProductPatch {
    /// The product as it will be after this patch. Backends write exactly this, so a caller
    /// that needs the result first (to embed a new title) computes the same thing.
    pub fn apply(&self, current: &Product) -> NewProduct {
        let mut p = current.to_new();
        if let Some(v) = &self.title {
            p.title = v.clone();
        }
        if let Some(v) = &self.description {
            p.description = v.clone();
        }
        if let Some(v) = &self.category {
            p.category = v.clone();
        }
        if let Some(v) = self.price {
            p.price = v;
        }
        if let Some(v) = &self.currency {
            p.currency = v.clone();
        }
        if let Some(v) = &self.image_url {
            p.image_url = v.clone();
        }
        if let Some(v) = &self.image_sha256 {
            p.image_sha256 = v.clone();
        }
        if let Some(v) = &self.images {
            p.images = v.clone();
        }
        if let Some(v) = &self.attributes {
            merge_patch(&mut p.attributes, v);
        }
        p
    }
}

/// Applies an RFC 7396 JSON merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Which products a listing or a search considers. Price bounds are inclusive; a product
/// without a price never passes a price bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductFilter {
    /// Exact, case-sensitive match.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub min_price: Option<f64>,
    #[serde(default)]
    pub max_price: Option<f64>,
    /// Conditions on the product's `attributes`, keyed by a name or a dotted path into nested
    /// objects and arrays of objects (`dims.width`, `variants.size`, at most
    /// [`MAX_ATTRIBUTE_DEPTH`] steps), all of which must hold
    /// (at most [`MAX_ATTRIBUTE_FILTERS`]; see [`AttributeCondition`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeCondition>,
}

impl ProductFilter {
    /// The checks every backend runs before a filter becomes SQL, for callers that want to
    /// refuse a request before reaching the store.
    pub fn validate(&self) -> Result<(), crate::StoreError> {
        super::validate::filter(self)
    }
}

/// The most attribute conditions one filter may hold: each is one more JSON lookup per
/// candidate row, and a shop's facets are a handful.
pub const MAX_ATTRIBUTE_FILTERS: usize = 8;
/// The longest attribute key (bytes of `A-Z a-z 0-9 _ -`) one step of a filter's path may name.
pub const MAX_ATTRIBUTE_KEY: usize = 64;
/// The most steps of a dotted attribute path (`a.b.c.d`): each is one more JSON lookup per
/// candidate row, and catalogs nest a level or two.
pub const MAX_ATTRIBUTE_DEPTH: usize = 4;
/// The longest text value an attribute equality may compare with, in characters.
pub const MAX_ATTRIBUTE_VALUE: usize = 200;

/// A condition on one attribute. Typed as JSON is: a string matches a string attribute equal
/// to it (exact, case-sensitive, as `category`), a number matches a number attribute equal to
/// it, `{"min": a, "max": b}` (inclusive, either optional) matches a number attribute within
/// it. An array attribute (`["red", "blue"]`, `[38, 39]`) passes when any one of its elements
/// would (for a range, one element within both bounds); arrays nested in it are not searched.
/// A path step before the last looks into an object, or into every object element of an
/// array (`variants.size` passes when any variant's `size` would; each condition finds its own
/// element); a scalar or array element there is skipped.
/// A product without the attribute, or with another JSON type there (an object, a boolean,
/// `"42"` for `42`), never passes, just as an unpriced product never passes a price bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeCondition {
    Text(String),
    Number(f64),
    Range(AttributeRange),
}

/// An inclusive numeric range; at least one bound is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttributeRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Only from an object with `min` and/or `max`: a derived struct would also take a JSON array
/// (`[1]` read as `min: 1`), which says nothing a client meant.
impl<'de> Deserialize<'de> for AttributeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            min: Option<f64>,
            #[serde(default)]
            max: Option<f64>,
        }
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = AttributeRange;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with `min` and/or `max`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AttributeRange, A::Error> {
                let raw = Raw::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(AttributeRange { min: raw.min, max: raw.max })
            }
        }
        d.deserialize_map(Object)
    }
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// One vector of a product in one embedding space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// What the vector is comparable with: `image`, `text`, `image_text` (an image mapped into
    /// the text space, by ConSE or CLIP). A product has at most one vector per (space, photo).
    pub space: String,
    /// Which of the product's photos the vector is of (0: the main photo, `i`: `images[i - 1]`);
    /// 0 for vectors of the text.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub photo: u16,
    /// `name@version` of the model that produced it; vectors of different models are never
    /// comparable, so the server checks [`ModelCount`]s before loading an index.
    pub model: String,
    pub vector: Vec<f32>,
}

impl Embedding {
    pub fn new(space: impl Into<String>, model: impl Into<String>, vector: Vec<f32>) -> Self {
        Embedding { space: space.into(), photo: 0, model: model.into(), vector }
    }

    /// The vector of photo `photo` (see [`Embedding::photo`]).
    pub fn of_photo(mut self, photo: u16) -> Self {
        self.photo = photo;
        self
    }
}

/// One stored vector as streamed to a visitor; borrowed so that loading 100k vectors reuses one
/// buffer instead of allocating each.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingRef<'a> {
    pub key: ProductKey,
    /// See [`Embedding::photo`].
    pub photo: u16,
    pub model: &'a str,
    pub vector: &'a [f32],
}

/// What a product write does to the product's stored embeddings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EmbeddingUpdate<'a> {
    /// Leave them as they are (a price change does not change what the product looks like).
    Keep,
    /// Store these, replacing the vectors of the same spaces; other spaces are kept (reindexing
    /// one space, re-embedding the text after a title change).
    Merge(&'a [Embedding]),
    /// The product's embeddings become exactly these; spaces not listed are removed (a new
    /// image, a full replace).
    Replace(&'a [Embedding]),
}

/// One product of a batch write.
#[derive(Debug, Clone, Copy)]
pub struct ProductWrite<'a> {
    pub product: &'a NewProduct,
    pub embeddings: EmbeddingUpdate<'a>,
}

/// The outcome of a create-or-replace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upserted {
    pub product: Product,
    /// True when the product did not exist before (201 rather than 200).
    pub created: bool,
}

/// How many vectors one model wrote into one space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCount {
    pub space: String,
    pub model: String,
    pub dim: usize,
    pub count: u64,
}

/// One full-text match: higher `score` is better. On SQLite it is `-bm25` with column weights
/// title 4, category 2, description 1; scores are for ranking, not comparable across backends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextHit {
    pub key: ProductKey,
    pub score: f64,
}

/// How many products of a set are in one category (a facet of a search).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub value: String,
    pub count: u64,
}

/// Orders counts most first, then by category name (bytewise, the same on both backends:
/// PostgreSQL's collation would order names by locale).
pub(crate) fn sort_counts(counts: &mut [CategoryCount]) {
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
}

/// An uploaded product image, addressed by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub sha256: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let p: ProductPatch = serde_json::from_value(json!({"category": null, "title": "T"})).unwrap();
        assert_eq!(p.category, Some(None));
        assert_eq!(p.price, None);
        assert_eq!(p.title.as_deref(), Some("T"));
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back, json!({"category": null, "title": "T"}));
    }

    #[test]
    fn merge_patch_follows_rfc7396() {
        // The example of RFC 7396 section 3.
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
                             "tags": ["example", "sample"], "content": "This will be unchanged"});
        let patch = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
                           "author": {"familyName": null}, "tags": ["example"]});
        merge_patch(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                   "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
    }

    #[test]
    fn new_product_defaults() {
        let p: NewProduct = serde_json::from_value(json!({"id": "a", "title": "A"})).unwrap();
        assert_eq!(p, NewProduct::new("a", "A"));
        assert_eq!(p.attributes, json!({}));
    }
}
