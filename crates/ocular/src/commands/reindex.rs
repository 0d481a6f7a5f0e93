//! `ocular reindex [--space image|text|all]`: recompute stored vectors that the configured
//! models did not make, after a model change. A running server notices within seconds and
//! reloads the affected indexes itself.

use clap::{Args, ValueEnum};
use ocular_app::Config;
use ocular_search::reindex::{self, Which};

use super::import::Bar;
use super::search::SearchContext;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SpaceArg {
    Image,
    Text,
    All,
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Which vectors: image (photo and photo-as-text), text (text and photo-as-text), or all.
    #[arg(long, value_enum, default_value = "all")]
    space: SpaceArg,
}

pub fn run(config: &Config, args: ReindexArgs) -> anyhow::Result<()> {
    let cx = SearchContext::open(config)?;
    let loader = cx.loader(config)?;
    let which = match args.space {
        SpaceArg::Image => Which::Image,
        SpaceArg::Text => Which::Text,
        SpaceArg::All => Which::All,
    };
    let mut bar = Bar::new("reindexing");
    let report = reindex::reindex(&cx.catalog, cx.embedders.as_ref(), &loader, which, config.max_batch_size, &mut bar)?;
    bar.finish();
    println!("{} products, {} vectors recomputed ({:.1} s)", report.products, report.vectors, report.seconds);
    for f in &report.failures {
        println!("  {f}: its image vectors were removed");
    }
    for c in cx.catalog.census()? {
        println!("  {:<10} {:<60} {:>5}-d {:>8} vectors", c.space, c.model, c.dim, c.count);
    }
    Ok(())
}
