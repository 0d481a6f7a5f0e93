//! `ocular import FILE [--format jsonl|csv|mongo]`: bulk catalog import, resumable, with a
//! progress bar on a terminal and plain progress lines otherwise, and a summary of failures
//! that never aborts the import.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use ocular_app::Config;
use ocular_search::import::{self, Format, ImportOptions, Progress};

use super::search::SearchContext;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The catalog file: JSON Lines, CSV with a header, or mongoexport JSON.
    file: PathBuf,
    /// jsonl, csv or mongo (default: from the file name; .json is mongo).
    #[arg(long)]
    format: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Import together with other `ocular import --shared` processes (on other machines) on the
    /// same PostgreSQL database: each claims chunks of the file with FOR UPDATE SKIP LOCKED.
    #[arg(long)]
    shared: bool,
}

pub fn run(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let format = Format::resolve(args.format.as_deref(), &args.file).map_err(anyhow::Error::msg)?;
    let cx = SearchContext::open(config)?;
    let loader = cx.loader(config)?;
    let options = ImportOptions { format, batch_size: config.max_batch_size, shared: args.shared };
    let mut progress = Bar::new("importing");
    let report = import::import_file(&cx.catalog, cx.embedders.as_ref(), &loader, &args.file, &options, &mut progress)
        .with_context(|| format!("importing {}", args.file.display()))?;
    progress.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} records — {} written, {} unchanged, {} done by an earlier run, {} failed ({:.1} s, {:.0} images/s)",
        args.file.display(),
        report.total,
        report.written,
        report.unchanged,
        report.resumed,
        report.failed,
        report.seconds,
        report.images_per_s
    );
    for f in &report.failures {
        if let ocular_store::LineOutcome::Failed { error } = &f.outcome {
            println!("  record {}: {error}", f.line);
        }
    }
    if report.failed as usize > report.failures.len() {
        println!("  … and {} more", report.failed as usize - report.failures.len());
    }
    if report.photos_missing > 0 {
        println!(
            "  {} products stored without their photo (URL not reachable; logged above, retried by the next import)",
            report.photos_missing
        );
    }
    Ok(())
}

/// A progress bar on a terminal; a line every 10 s (or at the end) otherwise, so logs of a
/// long import in CI or under systemd stay readable.
pub struct Bar {
    what: &'static str,
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Bar {
    pub fn new(what: &'static str) -> Self {
        Self { what, terminal: std::io::stderr().is_terminal(), started: Instant::now(), last: None }
    }

    pub fn finish(&mut self) {
        if self.terminal && self.last.is_some() {
            eprintln!();
        }
    }
}

impl Progress for Bar {
    fn update(&mut self, done: u64, total: u64) {
        let now = Instant::now();
        let every = if self.terminal { Duration::from_millis(100) } else { Duration::from_secs(10) };
        if self.last.is_some_and(|t| now - t < every) && done < total {
            return;
        }
        self.last = Some(now);
        let fraction = if total == 0 { 1.0 } else { done as f64 / total as f64 };
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if self.terminal {
            const WIDTH: usize = 30;
            let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
            eprint!("\r{} [{bar}] {done}/{total} ({:.0}%, {rate:.1}/s)   ", self.what, fraction * 100.0);
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{}: {done}/{total} ({:.0}%, {rate:.1}/s)", self.what, fraction * 100.0);
        }
    }
}
