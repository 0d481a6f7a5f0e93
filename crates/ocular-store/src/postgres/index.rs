//! [`PgVectorIndex`]: vector search served by pgvector from the table the store writes.
//!
//! Why no in-memory index (nor cache) with PostgreSQL: replicas must agree at once. Every
//! product write commits its vectors to `product_embeddings` in the same transaction as the
//! product, and a search here is a query on that table, so a product written through any
//! replica is found by the next search on every replica, and a deleted one never is; there is
//! no second copy that could lag. [`VectorIndex::upsert`] and [`VectorIndex::remove`] therefore
//! write nothing: the store's write *is* the index write (upsert still validates its input).
//!
//! The index: one partial HNSW index per (space, dimension) over the normalised vector in half
//! precision, `hnsw ((l2_normalize(vector)::halfvec(DIM)) halfvec_ip_ops) WHERE space = … AND
//! dim = …`, made by [`PgVectorIndex::ensure_index`]. Inner product on unit vectors is cosine
//! similarity, the score the in-memory index returns; stored vectors stay f32 as written
//! (bit-exact reads). Without the index every search is an exact sequential scan: correct,
//! only slower.
//!
//! Why halfvec (issue 17, docs/BENCHMARKS.md "PostgreSQL: halfvec"): at 100k and 1M vectors
//! the 16-bit index is half the size of the f32 one at the same recall@10 and the same or lower
//! latency; recall is bounded by the graph walk, not by 16-bit precision. An expression index
//! rather than a halfvec column: the f32 column stays the one copy, and the few rows the graph
//! returns are rescored with it, so scores are exact f32 cosines (as from an exact scan and the
//! in-memory index), not 16-bit ones. Binary quantisation was measured and rejected (recall
//! 0.04–0.66 even with 400 rescored candidates).
//!
//! Upgrading: databases indexed before issue 17 have an f32 index, named
//! `product_embeddings_hnsw_SPACE_DIM`. [`PgVectorIndex::ensure_index`] builds the halfvec one
//! beside it (concurrently, writes go on) and drops the f32 one only once the new one is valid;
//! no migration does it, because a migration runs in one transaction and would hold product
//! writes for the whole build (minutes per million vectors, hours at 10M).
//!
//! Filters: the trait's filter is a callback on ids, which SQL cannot see, so
//! [`VectorIndex::search`] with a filter fetches growing batches of nearest neighbours and
//! filters them here. The search service should call [`PgVectorIndex::search_filtered`] with
//! the request's [`ProductFilter`] instead: the filter joins `products` in SQL, and
//! `hnsw.iterative_scan` keeps scanning the graph until `k` rows pass, so a selective filter
//! still returns `k` hits in one round trip.

use ocular_index::{Filter, Hit, IndexError, VectorIndex};

use super::products::{Args, filter_sql};
use super::{PgStore, product_key};
use crate::StoreError;
use crate::types::{ProductFilter, validate};

/// How a [`PgVectorIndex`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSearchMode {
    /// Through the HNSW index when it exists (approximate, fast): the default.
    Hnsw,
    /// An exact scan of every vector of the (space, model), ignoring any index: for tests,
    /// recall measurements and small catalogs.
    Exact,
}

/// The HNSW settings an operator chooses (`OCULAR_PG_EF_SEARCH`, `OCULAR_PG_HNSW_M`,
/// `OCULAR_PG_EF_CONSTRUCTION`), carried by the store ([`super::PgOptions::hnsw`]) so that every
/// [`PgVectorIndex`] opened on it uses them unless its [`PgIndexConfig`] says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgHnswOptions {
    /// `hnsw.ef_search`: candidates kept while walking the graph. Higher is slower and finds
    /// more of the true neighbours; raised to `k` when `k` is larger. Default 100, not
    /// pgvector's 40: on the measured data it buys 0.10–0.19 recall@10 for a few milliseconds
    /// (docs/DEPLOY.md, "PostgreSQL search recall").
    pub ef_search: u32,
    /// HNSW build parameters (pgvector's defaults: m 16, ef_construction 64); they apply when
    /// an index is built, not to an existing one.
    pub m: u32,
    pub ef_construction: u32,
}

impl Default for PgHnswOptions {
    fn default() -> Self {
        PgHnswOptions { ef_search: 100, m: 16, ef_construction: 64 }
    }
}

impl PgHnswOptions {
    /// pgvector's bounds for `hnsw.ef_search`, `m` and `ef_construction`.
    pub const EF_SEARCH: std::ops::RangeInclusive<u32> = 1..=1000;
    pub const M: std::ops::RangeInclusive<u32> = 2..=100;
    pub const EF_CONSTRUCTION: std::ops::RangeInclusive<u32> = 4..=1000;

    /// Why pgvector would refuse these settings, if it would: each within its bounds, and
    /// `ef_construction` at least `2 × m`.
    pub fn check(&self) -> Result<(), String> {
        for (name, v, range) in [
            ("ef_search", self.ef_search, Self::EF_SEARCH),
            ("hnsw_m", self.m, Self::M),
            ("ef_construction", self.ef_construction, Self::EF_CONSTRUCTION),
        ] {
            if !range.contains(&v) {
                return Err(format!("{name} {v} is outside {}..{}", range.start(), range.end()));
            }
        }
        if self.ef_construction < 2 * self.m {
            return Err(format!(
                "ef_construction {} must be at least 2 x hnsw_m ({})",
                self.ef_construction,
                2 * self.m
            ));
        }
        Ok(())
    }
}

/// Tuning of one [`PgVectorIndex`]: `None` takes the store's [`PgHnswOptions`].
#[derive(Debug, Clone, PartialEq)]
pub struct PgIndexConfig {
    /// `hnsw.ef_search` (see [`PgHnswOptions::ef_search`]).
    pub ef_search: Option<u32>,
    /// HNSW build parameters (see [`PgHnswOptions`]).
    pub m: Option<u32>,
    pub ef_construction: Option<u32>,
    pub mode: PgSearchMode,
}

impl Default for PgIndexConfig {
    fn default() -> Self {
        PgIndexConfig { ef_search: None, m: None, ef_construction: None, mode: PgSearchMode::Hnsw }
    }
}

/// Vector search over the `space` vectors made by `model`, answered by PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgVectorIndex {
    store: PgStore,
    space: String,
    model: String,
    dim: usize,
    mode: PgSearchMode,
    /// The store's settings with the config's overrides applied.
    hnsw: PgHnswOptions,
}

/// A store error as the index trait reports it (the trait has no variant of its own for a
/// failing backend; this one carries the source).
fn backend(e: StoreError) -> IndexError {
    IndexError::Rescorer(Box::new(e))
}

impl PgVectorIndex {
    /// A view of the `space` vectors of `model`, which have `dim` dimensions (as
    /// `embedding_models` reports). Creates nothing; see [`PgVectorIndex::ensure_index`].
    pub fn new(
        store: PgStore,
        space: &str,
        model: &str,
        dim: usize,
        config: PgIndexConfig,
    ) -> Result<Self, StoreError> {
        // The space and dimension are written into SQL (a partial index predicate must be a
        // literal to match): validated to `[a-z0-9_]{1,32}` and an integer, they cannot inject.
        validate::space(space)?;
        if dim == 0 || dim > validate::MAX_DIM {
            return Err(StoreError::invalid("dimension", format!("must be 1 to {}", validate::MAX_DIM)));
        }
        super::no_nul("model", model)?;
        let given = store.hnsw;
        let hnsw = PgHnswOptions {
            ef_search: config.ef_search.unwrap_or(given.ef_search),
            m: config.m.unwrap_or(given.m),
            ef_construction: config.ef_construction.unwrap_or(given.ef_construction),
        };
        let (space, model, mode) = (space.to_string(), model.to_string(), config.mode);
        Ok(PgVectorIndex { store, space, model, dim, mode, hnsw })
    }

    pub fn space(&self) -> &str {
        &self.space
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The name of this (space, dimension)'s HNSW index.
    pub fn index_name(&self) -> String {
        format!("product_embeddings_half_{}_{}", self.space, self.dim)
    }

    /// The f32 index that databases built before issue 17 have instead (see the module docs).
    fn legacy_index_name(&self) -> String {
        format!("product_embeddings_hnsw_{}_{}", self.space, self.dim)
    }

    /// The indexed expression; queries must spell it exactly so the planner can use the index.
    fn expression(&self) -> String {
        format!("(l2_normalize(e.vector)::halfvec({}))", self.dim)
    }

    /// Creates the HNSW index of this (space, dimension) unless it exists; returns whether it
    /// built one. Idempotent and safe from several replicas at once (an advisory lock lets one
    /// build while the others wait and then find it). Built `CONCURRENTLY`, so product writes
    /// go on during a long build (minutes for 100k × 1280 on two cores); an invalid index left
    /// by an interrupted build is dropped and rebuilt. Once the index is valid, the f32 index
    /// of a database from before issue 17 is dropped (module docs). Call it at start-up before
    /// reporting ready, or from `ocular migrate` once the models are known.
    pub fn ensure_index(&self) -> Result<bool, StoreError> {
        let name = self.index_name();
        let conn = self.store.pool.get()?;
        let db = conn.db();
        let key = format!("ocular.hnsw:{name}");
        // Polled, not waited on: a session blocked in `pg_advisory_lock` is a running
        // transaction, and `CREATE INDEX CONCURRENTLY` in the lock holder waits for every running
        // transaction to end, which would be a deadlock. Between polls this session is idle.
        let try_lock = format!("SELECT pg_try_advisory_lock({})", super::LOCK_KEY);
        while !db.query_one(&try_lock, &[&key])?.try_get::<_, bool>(0)? {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let built = (|| -> Result<bool, StoreError> {
            let state: Option<bool> = db
                .query_opt(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE c.relname = $1
                       AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                    &[&name],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            let build = match state {
                Some(true) => false,
                Some(false) => {
                    db.batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))?;
                    true
                }
                None => true,
            };
            if build {
                // Clamped to what pgvector accepts (ef_construction ≥ 2 × m): the settings are
                // checked at start-up, a config made in code is not.
                let m = self.hnsw.m.clamp(*PgHnswOptions::M.start(), *PgHnswOptions::M.end());
                let efc = self.hnsw.ef_construction.clamp(2 * m, *PgHnswOptions::EF_CONSTRUCTION.end());
                db.batch(&format!(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON product_embeddings
                     USING hnsw ((l2_normalize(vector)::halfvec({dim})) halfvec_ip_ops)
                     WITH (m = {m}, ef_construction = {efc})
                     WHERE space = '{space}' AND dim = {dim}",
                    dim = self.dim,
                    space = self.space,
                ))?;
            }
            // Only now: until the halfvec index is valid, replicas of the previous release
            // still search with the f32 one. A no-op on every later start.
            db.batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", self.legacy_index_name()))?;
            Ok(build)
        })();
        // Released on every path; a lost connection releases it too.
        let unlocked = db.query(&format!("SELECT pg_advisory_unlock({})", super::LOCK_KEY), &[&key]);
        let built = built?;
        unlocked?;
        if built {
            tracing::info!(index = %name, "HNSW index built");
        }
        Ok(built)
    }

    /// The `k` nearest products to `query` among those passing `filter`, best first (ties by
    /// key), filtered in SQL: the call the search service should make (see the module docs).
    /// Scores are cosine similarities, as from the in-memory index.
    pub fn search_filtered(&self, query: &[f32], k: usize, filter: &ProductFilter) -> Result<Vec<Hit>, IndexError> {
        let unit = normalized(query, self.dim)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        self.nearest(&unit, k, filter).map_err(backend)
    }

    /// PostgreSQL's plan (`EXPLAIN`, no costs) for the query a search for the `k` nearest to
    /// `query` passing `filter` runs: shows whether the HNSW index serves it (the plan names
    /// [`Self::index_name`]) or a sequential scan does.
    pub fn explain(&self, query: &[f32], k: usize, filter: &ProductFilter) -> Result<String, StoreError> {
        let unit = normalized(query, self.dim).map_err(|e| StoreError::invalid("query", e.to_string()))?;
        let (sql, args) = self.query(&unit, k.max(1), filter)?;
        let conn = self.store.pool.get()?;
        let rows = super::pool::wait(conn.client.query_typed(&format!("EXPLAIN (COSTS OFF) {sql}"), &args.typed()))?;
        let lines: Result<Vec<String>, _> = rows.iter().map(|r| r.try_get::<_, String>(0)).collect();
        Ok(lines?.join("\n"))
    }

    /// The `k` nearest products to `query` among those passing `filter` (a callback on product
    /// keys), each by its best photo: a product has a row per photo, and its score is the
    /// largest cosine over them. Returns each hit (a product key) with the number of the photo
    /// that scored (0 for the main photo and for text vectors). Rows are fetched in growing
    /// batches until `k` products pass or the space has no more.
    pub fn search_photos(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<(Hit, u16)>, IndexError> {
        let unit = normalized(query, self.dim)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let all = ProductFilter::default();
        let mut fetch = if filter.is_some() { k.saturating_mul(2).max(64) } else { k };
        loop {
            let rows = self.nearest_photos(&unit, fetch, &all).map_err(backend)?;
            let exhausted = rows.len() < fetch;
            let mut seen = std::collections::HashSet::new();
            let hits: Vec<(Hit, u16)> = rows
                .into_iter()
                .filter(|(h, _)| seen.insert(h.id) && filter.is_none_or(|keep| keep(h.id)))
                .take(k)
                .collect();
            if hits.len() == k || exhausted {
                return Ok(hits);
            }
            fetch = fetch.saturating_mul(4);
        }
    }

    /// One query for the `limit` nearest rows passing `filter`, in one round trip.
    fn nearest(&self, unit: &[f32], limit: usize, filter: &ProductFilter) -> Result<Vec<Hit>, StoreError> {
        Ok(self.nearest_photos(unit, limit, filter)?.into_iter().map(|(h, _)| h).collect())
    }

    /// [`Self::nearest`] with the photo number of each row.
    fn nearest_photos(
        &self,
        unit: &[f32],
        limit: usize,
        filter: &ProductFilter,
    ) -> Result<Vec<(Hit, u16)>, StoreError> {
        let (sql, args) = self.query(unit, limit, filter)?;
        let conn = self.store.pool.get()?;
        let (min, max) = (*PgHnswOptions::EF_SEARCH.start(), *PgHnswOptions::EF_SEARCH.end());
        let ef = self.hnsw.ef_search.max(u32::try_from(limit).unwrap_or(u32::MAX)).clamp(min, max);
        if self.mode == PgSearchMode::Hnsw && conn.ef_search.get() != Some(ef) {
            // Session settings, kept by the pooled connection: set once, not per query.
            conn.db().batch(&format!("SET hnsw.ef_search = {ef}; SET hnsw.iterative_scan = relaxed_order"))?;
            conn.ef_search.set(Some(ef));
        }
        // Typed parameters: parse, bind and execute in one round trip, no prepared statement.
        let rows = super::pool::wait(conn.client.query_typed(&sql, &args.typed()))?;
        rows.iter()
            .map(|r| {
                let score: f64 = r.try_get(1)?;
                let photo = u16::try_from(r.try_get::<_, i16>(2)?).unwrap_or(0);
                Ok((Hit { id: product_key(r.try_get(0)?)?.0, score: score as f32 }, photo))
            })
            .collect()
    }

    /// The SQL (and its parameters) of a search for the `limit` nearest rows passing `filter`.
    fn query(&self, unit: &[f32], limit: usize, filter: &ProductFilter) -> Result<(String, Args), StoreError> {
        let mut args = Args::default();
        let q = args.push(unit.to_vec());
        let model = args.push(self.model.clone());
        let cond = filter_sql(filter, &mut args)?;
        let join = if cond.is_empty() { "" } else { "JOIN products p ON p.seq = e.product_seq" };
        let expr = self.expression();
        let (space, dim) = (&self.space, self.dim);
        let limit = limit.min(i64::MAX as usize);
        let sql = match self.mode {
            // The graph walk ranks by 16-bit vectors (and relaxed iterative scans may return
            // rows slightly out of order): the outer query rescores the few rows found with the
            // f32 vectors, so scores and order are exact over them (ties by key).
            PgSearchMode::Hnsw => format!(
                "WITH hits AS MATERIALIZED (
                     SELECT e.product_seq, e.photo, e.vector, {expr} <#> {q}::real[]::halfvec({dim}) AS d
                     FROM product_embeddings e {join}
                     WHERE e.space = '{space}' AND e.dim = {dim} AND e.model = {model}{cond}
                     ORDER BY d LIMIT {limit})
                 SELECT product_seq, inner_product(l2_normalize(vector), {q}::real[]::vector) AS s, photo
                 FROM hits ORDER BY s DESC, product_seq, photo"
            ),
            // A function call, not the indexed operator: the planner cannot use the index.
            PgSearchMode::Exact => format!(
                "SELECT e.product_seq, inner_product(l2_normalize(e.vector), {q}::real[]::vector) AS s, e.photo
                 FROM product_embeddings e {join}
                 WHERE e.space = '{space}' AND e.dim = {dim} AND e.model = {model}{cond}
                 ORDER BY s DESC, e.product_seq, e.photo LIMIT {limit}"
            ),
        };
        Ok((sql, args))
    }
}

/// `vector / |vector|`, refusing what the in-memory index refuses, with the same errors.
fn normalized(v: &[f32], dim: usize) -> Result<Vec<f32>, IndexError> {
    if v.len() != dim {
        return Err(IndexError::DimensionMismatch { expected: dim, got: v.len() });
    }
    if !v.iter().all(|x| x.is_finite()) {
        return Err(IndexError::NonFinite);
    }
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(IndexError::ZeroVector);
    }
    Ok(v.iter().map(|&x| (f64::from(x) / norm) as f32).collect())
}

impl VectorIndex for PgVectorIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    /// A count query: cheap enough for reporting, not for a hot loop. A failing database
    /// reads as 0 (the trait cannot report an error here) and is logged.
    fn len(&self) -> usize {
        let counted = self.store.read(|db| {
            let n: i64 = db
                .query_one(
                    "SELECT count(*) FROM product_embeddings WHERE space = $1 AND model = $2",
                    &[&self.space, &self.model],
                )?
                .try_get(0)?;
            Ok(usize::try_from(n).unwrap_or(0))
        });
        counted.unwrap_or_else(|error| {
            tracing::warn!(%error, space = %self.space, "counting vectors failed");
            0
        })
    }

    /// Writes nothing: the store's product write already stored the vector (module docs).
    fn upsert(&self, _id: u64, vector: &[f32]) -> Result<(), IndexError> {
        normalized(vector, self.dim).map(|_| ())
    }

    /// Removes nothing (the store's delete did) and so reports `false`.
    fn remove(&self, _id: u64) -> bool {
        false
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<Vec<Hit>, IndexError> {
        let unit = normalized(query, self.dim)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let all = ProductFilter::default();
        let Some(keep) = filter else { return self.nearest(&unit, k, &all).map_err(backend) };
        // Fetch 4× more each round until k pass or the index has no more to give.
        let mut fetch = k.saturating_mul(2).max(64);
        loop {
            let rows = self.nearest(&unit, fetch, &all).map_err(backend)?;
            let exhausted = rows.len() < fetch;
            let hits: Vec<Hit> = rows.into_iter().filter(|h| keep(h.id)).take(k).collect();
            if hits.len() == k || exhausted {
                return Ok(hits);
            }
            fetch = fetch.saturating_mul(4);
        }
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}
