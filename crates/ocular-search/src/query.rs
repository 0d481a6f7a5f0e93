//! What a search asks and what it answers, shared by the HTTP API and `ocular search`.

use std::collections::BTreeMap;
use std::time::Instant;

use ocular_store::{Product, ProductFilter};
use serde::Serialize;
use serde_json::Value;

use crate::error::SearchError;

/// The most results one page may hold.
pub const MAX_TOP_K: usize = 100;
/// The deepest page offset: beyond it, refine the query instead of paging. Every signal of a
/// search ranks `offset + top_k` candidates and each is read from the store, so the offset
/// multiplies one request's work: at 10,000 a text search read ~40k rows (issue 16). Ten full
/// pages of 100 is deeper than anyone reads.
pub const MAX_OFFSET: usize = 1_000;

/// Options common to every search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    pub top_k: usize,
    /// Minimum cosine similarity of a result (for text search: of its best cosine).
    pub threshold: f32,
    pub offset: usize,
    pub filter: ProductFilter,
    /// Count facets over the matching candidates (the default). Off, a photo search ranks only
    /// the page instead of at least `FACET_DEPTH` products, and `facets` comes back empty.
    pub facets: bool,
}

impl SearchOptions {
    pub fn new(top_k: usize, threshold: f32) -> Self {
        Self { top_k, threshold, offset: 0, filter: ProductFilter::default(), facets: true }
    }

    pub fn validate(&self) -> Result<(), SearchError> {
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(SearchError::invalid("top_k", format!("must be 1 to {MAX_TOP_K}, got {}", self.top_k)));
        }
        if !(self.threshold.is_finite() && (-1.0..=1.0).contains(&self.threshold)) {
            return Err(SearchError::invalid("threshold", format!("must be -1 to 1, got {}", self.threshold)));
        }
        if self.offset > MAX_OFFSET {
            return Err(SearchError::invalid("offset", format!("must be at most {MAX_OFFSET}")));
        }
        let f = &self.filter;
        for (field, v) in [("min_price", f.min_price), ("max_price", f.max_price)] {
            if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(SearchError::invalid(field, "must be a finite number, 0 or more"));
            }
        }
        if let (Some(lo), Some(hi)) = (f.min_price, f.max_price)
            && lo > hi
        {
            return Err(SearchError::invalid("min_price", "must not exceed max_price"));
        }
        if f.category.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(SearchError::invalid("category", "must not be empty"));
        }
        // The store's own bounds on attribute filters, refused here as a request error.
        // The store's own bounds (prices were checked above, so what is left is the
        // attribute filters), refused here as a request error before any work is done.
        if let Err(ocular_store::StoreError::Invalid { reason, .. }) = f.validate() {
            return Err(SearchError::invalid("attributes", reason));
        }
        Ok(())
    }

    /// Whether any filter is set (a filter costs one key lookup in the store).
    pub fn filters(&self) -> bool {
        self.filter != ProductFilter::default()
    }
}

/// A product as clients see it: never the store's internal key.
///
/// `image_url` is where a browser loads the photo: the stored copy
/// (`/api/v1/products/{id}/image`) when the product has one, else nothing; `source_url` is the
/// URL the photo was fetched from, if it came from one.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub image_url: Option<String>,
    pub source_url: Option<String>,
    /// The photo at `source_url` could not be fetched when the product was imported: it is
    /// stored without one, found by its text, and the next import tries the URL again. Only
    /// present (and `true`) then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub photo_missing: bool,
    /// Further photos after the main one (`image_url`), in order: photo `i` is `images[i - 1]`.
    /// Each is the URL it was given as, or the stored copy's path when it was given as an
    /// upload; sent back in a write, it keeps that photo. Absent when there are none. A photo
    /// search matches a product by its best photo.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[schema(value_type = Object)]
    pub attributes: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: time::OffsetDateTime,
}

/// Path of a product's stored image.
pub fn image_path(id: &str) -> String {
    format!("/api/v1/products/{id}/image")
}

/// Path of a product's stored photo `index` (0: the main one, [`image_path`]).
pub fn photo_path(id: &str, index: usize) -> String {
    match index {
        0 => image_path(id),
        i => format!("/api/v1/products/{id}/image?photo={i}"),
    }
}

/// One photo of a product.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    /// 0 for the main photo, `i` for `images[i - 1]` of the product as written.
    pub index: usize,
    /// Where to load it: the stored copy when there is one, else the URL it was given as.
    pub url: Option<String>,
    /// The URL it came from, if it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

impl PhotoView {
    /// Photo `index` of `p`, if it has one there (a main photo needs a URL or a stored copy).
    pub fn of(p: &Product, index: usize) -> Option<PhotoView> {
        let (source, stored) = p.photo(index)?;
        if source.is_none() && stored.is_none() {
            return None;
        }
        let url = stored.map(|_| photo_path(&p.id, index)).or_else(|| source.map(str::to_string));
        Some(PhotoView { index, url, source_url: source.map(str::to_string) })
    }
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        ProductView {
            id: p.id.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            category: p.category.clone(),
            price: p.price,
            currency: p.currency.clone(),
            image_url: p.image_sha256.as_ref().map(|_| image_path(&p.id)).or_else(|| p.image_url.clone()),
            source_url: p.image_url.clone(),
            photo_missing: p.image_sha256.is_none() && p.image_url.is_some(),
            images: (1..=p.images.len())
                .filter_map(|i| PhotoView::of(p, i))
                .filter_map(|v| v.source_url.or(v.url))
                .collect(),
            attributes: p.attributes.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Why a text-search result ranked where it did.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Signals {
    /// Cosine in the `text` space (title + description).
    pub text: Option<f32>,
    /// Cosine in the `image_text` space (what the photo shows).
    pub image_text: Option<f32>,
    /// 1-based rank among full-text (BM25) matches, if it matched.
    pub keyword_rank: Option<usize>,
    /// Its full-text score (BM25 on SQLite, `ts_rank_cd` on PostgreSQL), if it matched.
    pub keyword_score: Option<f32>,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub product: ProductView,
    /// What results are ordered by: the cosine for image search, the fused score for text
    /// search (`ocular_search::fusion`).
    pub score: f32,
    /// The cosine compared with `threshold` (for text search: the best of the result's cosines).
    pub similarity: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<Signals>,
    /// The photo that matched: for a photo search (and "more like this") the product's best
    /// photo, for a text search the photo behind its `image_text` cosine. Absent when no
    /// photo was the evidence (a text-only match, a product without photos).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<PhotoView>,
}

/// Counts over a search's matching candidates (see [`Facets`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Facets {
    /// Matching candidates per category, most first (ties by name); products without a
    /// category are not counted.
    pub category: Vec<FacetCount>,
}

/// One facet value and how many matching candidates have it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub results: Vec<SearchHit>,
    pub next_offset: Option<usize>,
    /// Counted over every candidate that passes the filters and the threshold, before
    /// pagination (so the same on every page of a query), among the candidates the search
    /// ranks: the nearest [`crate::search::FACET_DEPTH`] (or more, for deep pages) for a photo
    /// search, the fused candidates of all signals for a text search (each signal's top
    /// `FUSION_DEPTH` or more). Every filter applies, `category` included.
    pub facets: Facets,
    /// Milliseconds per stage (`embed`, `index`, `fetch`, `total`, ...).
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub timings_ms: Timings,
}

/// Milliseconds per stage, in the order they ran (serialised as an object).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Timings(pub BTreeMap<&'static str, f64>);

impl Timings {
    /// Records the time since `since` under `stage` and returns now, for chaining stages.
    pub fn lap(&mut self, stage: &'static str, since: Instant) -> Instant {
        let now = Instant::now();
        self.add(stage, now - since);
        now
    }

    pub fn add(&mut self, stage: &'static str, d: std::time::Duration) {
        let ms = (d.as_secs_f64() * 1e6).round() / 1e3;
        *self.0.entry(stage).or_insert(0.0) += ms;
    }
}

/// The page `[offset, offset + top_k)` of `ranked`, and the next offset when more remain.
pub fn page<T>(mut ranked: Vec<T>, opts: &SearchOptions) -> (Vec<T>, Option<usize>) {
    let end = opts.offset + opts.top_k;
    let more = ranked.len() > end;
    ranked.truncate(end);
    let page = ranked.into_iter().skip(opts.offset).collect();
    (page, more.then_some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let mut o = SearchOptions::new(2, 0.0);
        assert_eq!(page(vec![1, 2, 3, 4, 5], &o), (vec![1, 2], Some(2)));
        o.offset = 2;
        assert_eq!(page(vec![1, 2, 3, 4, 5], &o), (vec![3, 4], Some(4)));
        o.offset = 4;
        assert_eq!(page(vec![1, 2, 3, 4, 5], &o), (vec![5], None));
        o.offset = 9;
        assert_eq!(page(vec![1, 2, 3], &o), (vec![], None));
    }

    #[test]
    fn options_are_validated() {
        assert!(SearchOptions::new(10, 0.5).validate().is_ok());
        assert!(SearchOptions::new(0, 0.5).validate().is_err());
        assert!(SearchOptions::new(101, 0.5).validate().is_err());
        assert!(SearchOptions::new(5, 1.5).validate().is_err());
        assert!(SearchOptions::new(5, f32::NAN).validate().is_err());
        let mut o = SearchOptions::new(5, 0.0);
        o.filter.min_price = Some(10.0);
        o.filter.max_price = Some(5.0);
        assert!(matches!(o.validate(), Err(SearchError::Invalid { field: "min_price", .. })));
        o.filter.min_price = Some(-1.0);
        assert!(o.validate().is_err());
    }

    #[test]
    fn attribute_filters_are_bounded_as_request_errors() {
        use ocular_store::{AttributeCondition, AttributeRange};
        let mut o = SearchOptions::new(5, 0.0);
        o.filter.attributes.insert("colour".into(), AttributeCondition::Text("red".into()));
        o.filter
            .attributes
            .insert("size".into(), AttributeCondition::Range(AttributeRange { min: Some(1.0), max: None }));
        assert!(o.validate().is_ok());
        assert!(o.filters(), "an attribute filter makes the search filtered");
        o.filter.attributes.insert("bad key".into(), AttributeCondition::Number(1.0));
        assert!(matches!(o.validate(), Err(SearchError::Invalid { field: "attributes", .. })));
    }
}
