//! Searches: by photo (the `image` space) and by text (hybrid).
//!
//! **Similar products** ([`Catalog::search_similar`]) are an image search with a stored
//! product's photo vector instead of an uploaded photo (its text vector without a photo).
//!
//! **Image search** embeds the query photo and returns the nearest products by cosine in the
//! `image` space; `score` and `similarity` are that cosine, and `threshold` cuts on it.
//!
//! **Text search** is hybrid. Three rankings of the products passing the filters:
//! 1. cosine between the query and each product's title + description (`text`: MiniLM by
//!    default, CLIP's text tower when configured);
//! 2. cosine between the query and each product's photo mapped into the same space
//!    (`image_text`: ConSE by default, CLIP when configured), which finds a product by what its
//!    photo shows even when its text never says it;
//! 3. BM25 over title, description and category (SQLite FTS5), which rewards exact words
//!    (brands, model numbers) that embeddings blur.
//!
//! They are fused by score-aware fusion ([`crate::fusion`]: per-query normalised cosines and
//! BM25, weighted, so a signal that does not discriminate for this query contributes little):
//! results are ordered by the fused score (`score`). `threshold` is compared with the result's best cosine
//! (`similarity`, the larger of its `text` and `image_text` cosines), so one threshold means
//! the same thing for image and text search; a keyword-only match is kept only if one of its
//! cosines also reaches it. Text-search cosines come from the in-memory int8 codes (within
//! about 0.01 of the exact value: they only rank and gate); image-search scores are exact.
//!
//! Each ranking is cut at a depth of at least [`FUSION_DEPTH`], rounded up to a multiple of it
//! past the requested page, so pages of one query fuse the same lists and never overlap.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use ocular_store::ProductKey;

use crate::catalog::Catalog;
use crate::embed::{Embedders, IMAGE, IMAGE_TEXT, TEXT};
use crate::error::SearchError;
use crate::fusion::{Fusion, Pool, fuse};
use crate::photos::PhotoHit;
use crate::query::{
    FacetCount, Facets, PhotoView, ProductView, SearchHit, SearchOptions, SearchResults, Signals, Timings, page,
};

/// A result before its product is read: (key, score, similarity, signals, matched photo).
type Ranked = (u64, f32, f32, Option<Signals>, Option<u16>);

/// Candidates taken from each ranking before fusion (a multiple of it for deep pages).
pub const FUSION_DEPTH: usize = 100;

/// The fewest nearest products a photo search ranks, so its facet counts describe more than
/// the page (the index ranks this many anyway when the page is deeper).
pub const FACET_DEPTH: usize = 100;

/// The products allowed by the options' filters, as a sorted key list (`None`: no filter).
struct Allowed(Option<Vec<u64>>);

impl Allowed {
    fn passes(&self, id: u64) -> bool {
        self.0.as_ref().is_none_or(|keys| keys.binary_search(&id).is_ok())
    }
}

impl Catalog {
    /// Searches the `image` space with a photo (encoded bytes).
    pub fn search_image(
        &self,
        embedders: &dyn Embedders,
        bytes: &[u8],
        opts: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        opts.validate()?;
        self.ensure_ready(IMAGE)?;
        let mut t = Timings::default();
        let started = Instant::now();
        let decoded = self.decode(embedders, bytes)?;
        let at = t.lap("decode", started);
        let vector = embedders.embed_image_query(&decoded.image)?;
        drop(decoded);
        t.lap("embed", at);
        let mut results = self.search_vector(IMAGE, &vector, opts, &mut t)?;
        t.add("total", started.elapsed());
        results.timings_ms = t;
        Ok(results)
    }

    /// Searches one space with an already-embedded query vector (`image`, `text` or
    /// `image_text`); `score` and `similarity` are the cosine.
    pub fn search_vector(
        &self,
        space: &str,
        query: &[f32],
        opts: &SearchOptions,
        t: &mut Timings,
    ) -> Result<SearchResults, SearchError> {
        opts.validate()?;
        self.ensure_ready(space)?;
        self.nearest(space, query, opts, None, t)
    }

    /// The page of `opts` among the nearest products to `query` in `space`, leaving `exclude`
    /// out (before paging, so pages neither repeat nor skip a product).
    fn nearest(
        &self,
        space: &str,
        query: &[f32],
        opts: &SearchOptions,
        exclude: Option<u64>,
        t: &mut Timings,
    ) -> Result<SearchResults, SearchError> {
        let started = Instant::now();
        let allowed = self.allowed(opts)?;
        let at = t.lap("filter", started);
        let extra = usize::from(exclude.is_some());
        let k = opts.offset + opts.top_k + 1 + extra;
        let filter = |id: u64| allowed.passes(id) && Some(id) != exclude;
        let filtered = opts.filters() || exclude.is_some();
        let filter = filtered.then_some(&filter as &(dyn Fn(u64) -> bool + Sync));
        let index = self.space(space)?;
        // Facets count the nearest FACET_DEPTH products (more for a deeper page), ranked in the
        // same scan as the page (`SpaceIndex::search_deep`).
        let (hits, wide) = if opts.facets {
            index.search_deep(query, k, FACET_DEPTH + extra, filter)?
        } else {
            (index.search(query, k, filter)?, Vec::new())
        };
        let passes = |h: &PhotoHit| h.score >= opts.threshold;
        let mut passing: Vec<PhotoHit> = hits.into_iter().take_while(passes).collect();
        // `exclude` asked for one more row than it may remove: keep the depth the same.
        passing.truncate(k - extra);
        let mut counted: Vec<u64> = wide.iter().take_while(|h| passes(h)).map(|h| h.id).collect();
        counted.truncate(FACET_DEPTH.max(k - extra));
        counted.extend(passing.iter().map(|h| h.id).filter(|id| !counted.contains(id)).collect::<Vec<_>>());
        let at = t.lap("index", at);
        let facets = if opts.facets { self.facets(counted.into_iter())? } else { Facets::default() };
        let at = t.lap("facets", at);
        let (hits, next_offset) = page(passing, opts);
        // A photo space's hit names the photo that scored; the text space has none.
        let photo = |h: &PhotoHit| (space != TEXT).then_some(h.photo);
        let scored: Vec<Ranked> = hits.iter().map(|h| (h.id, h.score, h.score, None, photo(h))).collect();
        let results = self.hydrate(&scored)?;
        t.lap("products", at);
        Ok(SearchResults { results, next_offset, facets, timings_ms: Timings::default() })
    }

    /// "More like this": the products nearest a stored product, by its stored photo vector
    /// (the `image` space), or by its text vector when it has no photo; never the product
    /// itself. Nothing is embedded: the vectors were computed when the product was written.
    /// Filters, threshold and paging apply as for any search.
    pub fn search_similar(&self, id: &str, opts: &SearchOptions) -> Result<SearchResults, SearchError> {
        opts.validate()?;
        let mut t = Timings::default();
        let started = Instant::now();
        let product =
            self.store.get_product(id)?.ok_or_else(|| ocular_store::StoreError::NotFound(format!("product {id}")))?;
        let stored = self.store.embeddings_of(product.key)?;
        let by = |space: &'static str| {
            let index = self.space(space).ok()?;
            stored.iter().find(|e| e.space == space && e.model == index.model.model).map(|e| (space, e.vector.clone()))
        };
        let Some((space, vector)) = by(IMAGE).or_else(|| by(TEXT)) else {
            return Err(SearchError::invalid("id", format!("product {id} has no stored vector to compare")));
        };
        t.lap("vectors", started);
        self.ensure_ready(space)?;
        let mut results = self.nearest(space, &vector, opts, Some(product.key.0), &mut t)?;
        t.add("total", started.elapsed());
        results.timings_ms = t;
        Ok(results)
    }

    /// Hybrid text search (see the module docs), fused by [`Fusion::default`].
    pub fn search_text(
        &self,
        embedders: &dyn Embedders,
        query: &str,
        opts: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        self.search_text_with(embedders, query, opts, &Fusion::default())
    }

    /// Hybrid text search with a chosen fusion (the relevance benchmark compares them).
    pub fn search_text_with(
        &self,
        embedders: &dyn Embedders,
        query: &str,
        opts: &SearchOptions,
        fusion: &Fusion,
    ) -> Result<SearchResults, SearchError> {
        let mut t = Timings::default();
        let started = Instant::now();
        let pool = self.text_pool(embedders, query, opts, &mut t)?;
        let at = Instant::now();
        let ranked: Vec<Ranked> = fuse(&pool, fusion)
            .into_iter()
            .filter_map(|c| {
                let best = c.text.into_iter().chain(c.image_text).fold(f32::NEG_INFINITY, f32::max);
                let signals = Signals {
                    text: c.text,
                    image_text: c.image_text,
                    keyword_rank: c.keyword_rank,
                    keyword_score: c.keyword,
                };
                // The photo is the evidence of the `image_text` cosine.
                let photo = c.image_text.map(|_| pool.photos.get(&c.id).copied().unwrap_or(0));
                (best >= opts.threshold).then_some((c.id, c.score, best, Some(signals), photo))
            })
            .collect();
        let at = t.lap("fuse", at);
        let facets = if opts.facets { self.facets(ranked.iter().map(|r| r.0))? } else { Facets::default() };
        let at = t.lap("facets", at);
        let (ranked, next_offset) = page(ranked, opts);
        let results = self.hydrate(&ranked)?;
        t.lap("products", at);
        t.add("total", started.elapsed());
        Ok(SearchResults { results, next_offset, facets, timings_ms: t })
    }

    /// The candidates of a text search before fusion: each signal's ranking of the products
    /// passing the filters, cut at the fusion depth, with the cosines of keyword-only matches
    /// computed from their stored vectors.
    pub fn text_pool(
        &self,
        embedders: &dyn Embedders,
        query: &str,
        opts: &SearchOptions,
        t: &mut Timings,
    ) -> Result<Pool, SearchError> {
        opts.validate()?;
        let query = query.trim();
        if query.is_empty() {
            return Err(SearchError::invalid("query", "must not be empty"));
        }
        if query.chars().count() > 1000 {
            return Err(SearchError::invalid("query", "must be at most 1000 characters"));
        }
        self.ensure_ready(TEXT)?;
        self.ensure_ready(IMAGE_TEXT)?;
        let started = Instant::now();
        let q = embedders.embed_query(query)?;
        let at = t.lap("embed", started);
        let allowed = self.allowed(opts)?;
        let at = t.lap("filter", at);

        let depth = (opts.offset + opts.top_k + 1).div_ceil(FUSION_DEPTH) * FUSION_DEPTH;
        let filter = |id: u64| allowed.passes(id);
        let filter = opts.filters().then_some(&filter as &(dyn Fn(u64) -> bool + Sync));
        // The in-memory cosines rank and normalise well enough (within about 0.01 of exact),
        // and a database round trip per candidate would cost more than the whole search.
        let text_hits = self.space(TEXT)?.search_fast(&q.text, depth, filter)?;
        let image_hits = self.space(IMAGE_TEXT)?.search_fast(&q.image_text, depth, filter)?;
        let at = t.lap("index", at);
        let keyword = self.store.search_text(query, &opts.filter, depth)?;
        let at = t.lap("keyword", at);

        let pairs = |hits: &[PhotoHit]| hits.iter().map(|h| (h.id, h.score)).collect::<Vec<(u64, f32)>>();
        let mut pool = Pool {
            text: pairs(&text_hits),
            image_text: pairs(&image_hits),
            keyword: keyword.iter().map(|h| (h.key.0, h.score as f32)).collect(),
            extra: HashMap::new(),
            photos: image_hits.iter().filter(|h| h.photo != 0).map(|h| (h.id, h.photo)).collect(),
        };
        // Keyword-only matches have no cosine yet: compute theirs from the stored vectors.
        let listed: HashSet<u64> = pool.text.iter().chain(&pool.image_text).map(|(id, _)| *id).collect();
        let missing: Vec<u64> = pool.keyword.iter().map(|(id, _)| *id).filter(|id| !listed.contains(id)).collect();
        let (text_space, image_space) = (self.space(TEXT)?, self.space(IMAGE_TEXT)?);
        for id in missing {
            let entry = pool.extra.entry(id).or_default();
            // One read gives every vector; a product's photo cosine is its best photo's.
            for e in self.store.embeddings_of(ProductKey(id))? {
                if let Some(c) = text_space.cosine_with(&e, &q.text) {
                    entry.0 = Some(c);
                } else if let Some(c) = image_space.cosine_with(&e, &q.image_text)
                    && entry.1.is_none_or(|best| c > best)
                {
                    entry.1 = Some(c);
                    if e.photo != 0 {
                        pool.photos.insert(id, e.photo);
                    } else {
                        pool.photos.remove(&id);
                    }
                }
            }
        }
        t.lap("fuse", at);
        Ok(pool)
    }

    fn allowed(&self, opts: &SearchOptions) -> Result<Allowed, SearchError> {
        if !opts.filters() {
            return Ok(Allowed(None));
        }
        let keys = self.store.product_keys(&opts.filter)?;
        // The store returns keys ascending, which `binary_search` needs.
        Ok(Allowed(Some(keys.into_iter().map(|k| k.0).collect())))
    }

    /// Category counts of the matching candidates (one store query).
    fn facets(&self, keys: impl Iterator<Item = u64>) -> Result<Facets, SearchError> {
        let keys: Vec<ProductKey> = keys.map(ProductKey).collect();
        let category = self
            .store
            .category_counts(&keys)?
            .into_iter()
            .map(|c| FacetCount { value: c.value, count: c.count })
            .collect();
        Ok(Facets { category })
    }

    /// Turns ranked keys into results, dropping products deleted since.
    fn hydrate(&self, ranked: &[Ranked]) -> Result<Vec<SearchHit>, SearchError> {
        let keys: Vec<ProductKey> = ranked.iter().map(|r| ProductKey(r.0)).collect();
        let products = self.store.get_products_by_keys(&keys)?;
        let by_key: HashMap<u64, &ocular_store::Product> = products.iter().map(|p| (p.key.0, p)).collect();
        Ok(ranked
            .iter()
            .filter_map(|(key, score, similarity, signals, photo)| {
                by_key.get(key).map(|p| SearchHit {
                    product: ProductView::from(*p),
                    score: *score,
                    similarity: *similarity,
                    signals: signals.clone(),
                    photo: photo.and_then(|i| PhotoView::of(p, usize::from(i))),
                })
            })
            .collect())
    }
}
