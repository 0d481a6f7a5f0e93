//! `ocular search --image PATH | --url URL | --text QUERY`: the same `Catalog` code path as the
//! HTTP search routes, from a shell. Also builds the catalog context that `import` and
//! `reindex` share.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ocular_app::{Config, search_models};
use ocular_search::{Catalog, CatalogOptions, Embedders, ImageLoader, SearchOptions, SearchResults};

/// A catalog over the configured store and models, with its embedders loaded.
pub struct SearchContext {
    pub runtime: tokio::runtime::Runtime,
    pub catalog: Arc<Catalog>,
    pub embedders: Arc<dyn Embedders>,
    pub limits: ocular_image::Limits,
}

impl SearchContext {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let store = super::open_store(config)?;
        let registry = super::registry(config, None)?;
        // The same choice as the server's, so import, reindex and search write and read the
        // vectors the server searches.
        let provider = search_models::provider(config.search_models, &registry)
            .context("--search-models")?
            .context("product search needs the efficientnet-lite0 and minilm models: run `ocular models fetch`")?;
        let limits = ocular_image::Limits { max_bytes: config.max_body_bytes, max_pixels: config.max_image_pixels };
        let catalog = Catalog::new(store, provider, CatalogOptions { image_limits: limits, ..Default::default() })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let embedders = runtime.block_on(catalog.embedders()).context("loading the search models")?;
        Ok(Self { runtime, catalog: Arc::new(catalog), embedders, limits })
    }

    /// Loads photos from files and, through the SSRF-guarded fetcher, from URLs.
    pub fn loader(&self, config: &Config) -> anyhow::Result<ImageLoader> {
        let fetcher = ocular_app::catalog::fetcher(config).context("building the URL fetcher")?;
        Ok(ImageLoader::with_fetcher(self.limits, fetcher, self.runtime.handle().clone()))
    }
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["image", "url", "text"])))]
pub struct SearchArgs {
    /// Search with a photo file.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Search with a photo URL (fetched with the server's SSRF rules and OCULAR_URL_ALLOW).
    #[arg(long)]
    url: Option<String>,
    /// Search by text (hybrid: text and photo embeddings and BM25, fused by normalised scores;
    /// MiniLM + ConSE with the default models, CLIP's text tower with `--search-models clip`).
    #[arg(long)]
    text: Option<String>,
    /// Results to show (default: TOP_K).
    #[arg(long = "top-k")]
    top_k: Option<usize>,
    /// Minimum similarity (default: SIMILARITY_THRESHOLD).
    #[arg(long)]
    threshold: Option<f32>,
    /// Only this category.
    #[arg(long)]
    category: Option<String>,
    /// Print the response as JSON, exactly as the HTTP API returns it.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: SearchArgs) -> anyhow::Result<()> {
    let cx = SearchContext::open(config)?;
    cx.catalog.load_now()?;
    let mut opts =
        SearchOptions::new(args.top_k.unwrap_or(config.top_k), args.threshold.unwrap_or(config.similarity_threshold));
    opts.filter.category = args.category.clone();
    let emb = cx.embedders.as_ref();
    let results = if let Some(text) = &args.text {
        cx.catalog.search_text(emb, text, &opts)?
    } else {
        let bytes = match (&args.image, &args.url) {
            (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            (None, Some(url)) => {
                let fetcher = ocular_app::catalog::fetcher(config).context("building the URL fetcher")?;
                cx.runtime.block_on(fetcher.fetch_image(url))?.bytes.to_vec()
            }
            (None, None) => anyhow::bail!("give --image, --url or --text"),
        };
        cx.catalog.search_image(emb, &bytes, &opts)?
    };
    print(&results, args.json)
}

fn print(results: &SearchResults, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(results)?);
        return Ok(());
    }
    if results.results.is_empty() {
        println!("no results above the threshold");
    }
    for (i, hit) in results.results.iter().enumerate() {
        let p = &hit.product;
        let price = match (p.price, &p.currency) {
            (Some(v), Some(c)) => format!("{v:.2} {c}"),
            (Some(v), None) => format!("{v:.2}"),
            _ => String::new(),
        };
        println!(
            "{:>2}. {:<24} {:<40} {:<12} {:>12}  similarity {:.3}",
            i + 1,
            p.id,
            p.title.chars().take(40).collect::<String>(),
            p.category.as_deref().unwrap_or(""),
            price,
            hit.similarity
        );
    }
    let total = results.timings_ms.0.get("total").copied().unwrap_or_default();
    println!("({total:.1} ms)");
    Ok(())
}
