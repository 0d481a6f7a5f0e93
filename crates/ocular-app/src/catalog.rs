//! The search state every command builds the same way: the catalog over the configured search
//! models and index (`--search-models`, `--index`), and the SSRF-guarded URL fetcher. `serve`
//! builds them into its state; `import`, `search` and `reindex` use the same choices, so a
//! catalog is never written one way and searched another.

use std::sync::Arc;

use ocular_fetch::{AllowList, FetchPolicy, Fetcher};
use ocular_models::Registry;
use ocular_search::space::Precision;
use ocular_search::{Catalog, CatalogOptions};
use ocular_store::Store;

use crate::config::Config;

/// `--index`: which in-memory index the embedded backend keeps (PostgreSQL searches pgvector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexChoice {
    /// int8 below [`AUTO_COMPACT_FROM`] products at start, compact from there.
    #[default]
    Auto,
    /// int8 codes, shortlist rescored from the store: the fastest searches, ~2.2 KB per product.
    Int8,
    /// One-bit codes (~150 B per product), f32 vectors in a mapped file: for large catalogs.
    Compact,
}

/// Products at start from which `auto` picks the compact index. Why 50,000: int8 codes cost
/// ~2.2 KB per product, so 50k products take ~108 MB next to ~250 MB of process and models —
/// the most a 512 MB host carries with room for requests — while below it the compact index
/// only adds latency (docs/BENCHMARKS.md, "A million products": hybrid text search 34.6 vs
/// 2.4 ms, photo search index 9.2 ms vs ~5 ms at 100k on a loaded machine).
pub const AUTO_COMPACT_FROM: u64 = 50_000;

/// The index precision for `choice` over a catalog of `products`.
pub fn index_precision(choice: IndexChoice, products: u64) -> Precision {
    match choice {
        IndexChoice::Int8 => Precision::Store,
        IndexChoice::Compact => Precision::Compact,
        IndexChoice::Auto if products >= AUTO_COMPACT_FROM => Precision::Compact,
        IndexChoice::Auto => Precision::Store,
    }
}

/// Builds the catalog over the configured search models (`--search-models`) when they are
/// installed (loads nothing).
pub fn catalog(config: &Config, registry: &Registry, store: &Arc<dyn Store>) -> Option<Arc<Catalog>> {
    let provider = match crate::search_models::provider(config.search_models, registry) {
        Ok(p) => p?,
        Err(e) => {
            tracing::error!(error = %e, "product search is disabled");
            return None;
        }
    };
    // One indexed count at start; a catalog that grows past the threshold switches on restart.
    let products = match config.index {
        IndexChoice::Auto => {
            store.list_products(&ocular_store::ProductFilter::default(), 0, 1).ok().and_then(|p| p.total).unwrap_or(0)
        }
        _ => 0,
    };
    let precision = index_precision(config.index, products);
    tracing::info!(index = ?config.index, products, precision = ?precision, "search index");
    let options = CatalogOptions {
        precision,
        image_limits: ocular_image::Limits { max_bytes: config.max_body_bytes, max_pixels: config.max_image_pixels },
        index_dir: index_dir(config),
        max_photos: config.max_photos_per_product(),
        ..CatalogOptions::default()
    };
    match Catalog::new(store.clone(), provider, options) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::error!(error = %ocular_models::registry::error_chain(&e), "product search is disabled");
            None
        }
    }
}

/// Where a compact index is kept across starts: beside the SQLite file (`ocular.db.index`), so
/// it belongs to that database; `None` for PostgreSQL, which searches in the database.
fn index_dir(config: &Config) -> Option<std::path::PathBuf> {
    match ocular_store::Location::parse(config.database_url.as_deref(), &config.data_dir).ok()? {
        ocular_store::Location::Sqlite(path) => {
            let mut dir = path.into_os_string();
            dir.push(".index");
            Some(dir.into())
        }
        ocular_store::Location::Postgres(_) => None,
    }
}

/// The URL fetcher, under the configured allow-list (validated by `Config::validate`).
pub fn fetcher(config: &Config) -> Option<Fetcher> {
    let allow = match AllowList::parse(&config.url_allow) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "invalid OCULAR_URL_ALLOW; URL fetching is disabled");
            return None;
        }
    };
    let policy = FetchPolicy { allow, max_bytes: config.max_body_bytes as u64, ..FetchPolicy::default() };
    Fetcher::new(policy).map_err(|e| tracing::error!(error = %e, "URL fetching is disabled")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_keeps_small_catalogs_on_the_fast_index_and_large_ones_compact() {
        assert_eq!(index_precision(IndexChoice::Auto, 0), Precision::Store);
        assert_eq!(index_precision(IndexChoice::Auto, AUTO_COMPACT_FROM - 1), Precision::Store);
        assert_eq!(index_precision(IndexChoice::Auto, AUTO_COMPACT_FROM), Precision::Compact);
        assert_eq!(index_precision(IndexChoice::Int8, 10_000_000), Precision::Store);
        assert_eq!(index_precision(IndexChoice::Compact, 1), Precision::Compact);
    }
}
