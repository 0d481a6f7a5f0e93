//! `ocular`: image AI on small machines — skin-lesion analysis and visual product search in
//! one process. Subcommands load only what they need: `migrate` and other admin commands never
//! touch ONNX Runtime or a model file.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod commands;

/// glibc's malloc, tuned ([`ocular_app::memory::tune_allocator`]), won the measurement
/// (docs/DEPLOY.md, "Memory"); the others stay selectable to repeat it (bench/alloc_burst.sh).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};
use ocular_app::Config;

#[derive(Debug, Parser)]
#[command(name = "ocular", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit. Never loads a model.
    Migrate,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Analyse a skin photo with the same code path as `POST /api/v1/analyze`.
    Analyze(commands::analyze::AnalyzeArgs),
    /// Run an imported classifier (`ocular models import`) on one photo: classes and Grad-CAM.
    Predict(commands::predict::PredictArgs),
    /// Import products from a JSON Lines, CSV or mongoexport file (resumable).
    Import(commands::import::ImportArgs),
    /// Search the product catalog by photo, photo URL or text.
    Search(commands::search::SearchArgs),
    /// Recompute stored vectors after a model change.
    Reindex(commands::reindex::ReindexArgs),
    /// Write a consistent copy of the SQLite database (photos included) while serving. Never
    /// loads a model.
    Backup(commands::backup::BackupArgs),
    /// Restore the SQLite database from a file written by `ocular backup`. Never loads a model.
    Restore(commands::backup::RestoreArgs),
    /// Delete what is past its retention (analyses, analysis photos) and product photos no
    /// product shows; the server does the same every 10 minutes. Never loads a model.
    Purge,
    /// Manage models: list what is installed.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
}

fn main() -> std::process::ExitCode {
    // Before any thread starts: glibc's malloc (Rust's and ONNX Runtime's) gives memory back.
    ocular_app::memory::tune_allocator();
    if let Err(e) = ocular_app::config::apply_env_aliases() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let mut cli = Cli::parse();
    let key_file_warning = match ocular_app::secrets::load_api_key_file(&mut cli.config) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = cli.config.validate() {
        eprintln!("error: invalid configuration: {e}");
        return std::process::ExitCode::from(2);
    }
    init_logging(&cli.config);
    if let Some(w) = key_file_warning {
        tracing::warn!("{w}");
    }
    warn_about_mongo_uri();
    let result = match cli.command {
        Command::Serve => commands::serve::run(cli.config),
        Command::Migrate => commands::migrate::run(&cli.config),
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&cli.config.redacted()).unwrap_or_default());
            Ok(())
        }
        Command::Models(cmd) => commands::models::run(&cli.config, cmd),
        Command::Import(args) => commands::import::run(&cli.config, args),
        Command::Search(args) => commands::search::run(&cli.config, args),
        Command::Reindex(args) => commands::reindex::run(&cli.config, args),
        Command::Analyze(args) => commands::analyze::run(&cli.config, args),
        Command::Predict(args) => commands::predict::run(&cli.config, args),
        Command::Backup(args) => commands::backup::run_backup(&cli.config, args),
        Command::Purge => commands::purge::run(&cli.config),
        Command::Restore(args) => commands::backup::run_restore(&cli.config, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The product-search service ocular replaces read its catalog from MongoDB (`MONGO_URI`).
/// ocular stores the catalog itself; say so instead of ignoring the variable silently.
fn warn_about_mongo_uri() {
    if std::env::var_os("MONGO_URI").is_some_and(|v| !v.is_empty()) {
        tracing::warn!(
            "MONGO_URI is set, but ocular does not read MongoDB: export the collection \
             (`mongoexport --uri \"$MONGO_URI\" --collection products --out products.json`) and load it \
             with `ocular import products.json --format mongo` (resumable; run it again to sync)"
        );
    }
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("OCULAR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
