//! `ocular-load`: a closed-loop load generator for ocular's analyze and search endpoints (and
//! the Python services that answer the same routes). See `bench/README.md`.
//!
//! ```text
//! ocular-load --url http://127.0.0.1:8000 --concurrency 10 --duration 60s \
//!     --mix analyze=1,analyze_gradcam=1,search_photo=2,search_text=2 \
//!     --photo a.jpg --photo b.jpg --text "a cup of coffee" --json out.json --label baseline
//! ```

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod duration;
mod mix;
mod payload;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use crate::mix::Mix;
use crate::payload::{AnalyzeFields, Payloads, Photo};
use crate::report::{Report, RunInfo};
use crate::run::{Ctx, Progress, Stop};

/// Closed-loop HTTP load: each client sends its next request when the previous one ends.
#[derive(Debug, Parser)]
#[command(name = "ocular-load", version)]
#[command(group(clap::ArgGroup::new("length").required(true).args(["duration", "requests"])))]
struct Args {
    /// Base URL of the server (plain http), e.g. http://127.0.0.1:8000.
    #[arg(long)]
    url: String,
    /// Concurrent clients, each with one keep-alive connection.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Length of the measured run, e.g. 60s, 5m, 1500ms (a bare number is seconds).
    #[arg(long, value_parser = duration::parse)]
    duration: Option<Duration>,
    /// Number of measured requests, over all clients.
    #[arg(long)]
    requests: Option<u64>,
    /// Requests sent before measuring (not reported), over all clients.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Request kinds by weight: analyze, analyze_gradcam, search_photo, search_text.
    #[arg(long, default_value = "analyze=1,analyze_gradcam=1,search_photo=2,search_text=2")]
    mix: Mix,
    /// A photo to upload (repeatable; each request draws one).
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
    /// A text query (repeatable; each text search draws one).
    #[arg(long = "text")]
    texts: Vec<String>,
    /// `top_k` sent with searches.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Deadline for one request, connection and whole response included.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    timeout: Duration,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for the run, carried into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Seed of the kind/photo/query draws.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `age` field of analyze requests.
    #[arg(long, default_value = "45")]
    age: String,
    /// `sex` field of analyze requests.
    #[arg(long, default_value = "female")]
    sex: String,
    /// `location` field of analyze requests; ocular accepts arm, head-or-neck,
    /// leg-or-genital, trunk or unknown (the back is `trunk`).
    #[arg(long, default_value = "trunk")]
    location: String,
    /// Print a progress line on stderr this often (0 for none).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    progress: Duration,
}

/// `http://host:port/prefix` into (`host:port`, `/prefix`).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let uri: hyper::Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url must be plain http://HOST:PORT, got {url:?}");
    }
    let authority = uri.authority().context("--url has no host")?;
    let host_port = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.host()),
    };
    Ok((host_port, uri.path().trim_end_matches('/').to_string()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let (authority, prefix) = split_url(&args.url)?;
    let photos = args.photos.iter().map(|p| Photo::read(p)).collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(kind) = args.mix.kinds().find(|k| k.needs_photo()).filter(|_| photos.is_empty()) {
        bail!("the mix includes {kind}, which uploads a photo: give at least one --photo");
    }
    let texts = if args.texts.is_empty() { vec!["a cup of coffee".to_string()] } else { args.texts.clone() };
    let fields = AnalyzeFields { age: args.age.clone(), sex: args.sex.clone(), location: args.location.clone() };
    let ctx = Arc::new(Ctx {
        authority,
        timeout: args.timeout,
        mix: args.mix.clone(),
        payloads: Payloads::new(&prefix, &photos, &texts, args.top_k, &fields),
        seed: args.seed,
    });

    let cancel = Arc::new(AtomicBool::new(false));
    tokio::spawn(cancel_on_signal(cancel.clone()));
    if args.warmup > 0 {
        eprintln!("warm-up: {} requests", args.warmup);
        let stop = Stop::requests(args.warmup, cancel.clone());
        run::phase(ctx.clone(), Arc::default(), args.concurrency, stop, 1).await;
    }
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let stop = match (args.duration, args.requests) {
        (Some(d), _) => Stop::at(started + d, cancel.clone()),
        (None, Some(n)) => Stop::requests(n, cancel.clone()),
        (None, None) => unreachable!("clap requires --duration or --requests"),
    };
    let ticker = (!args.progress.is_zero()).then(|| {
        let (progress, every) = (progress.clone(), args.progress);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                eprintln!("{}", progress.line(started.elapsed()));
            }
        })
    });
    let samples = run::phase(ctx, progress, args.concurrency, stop, 2).await;
    let elapsed_s = started.elapsed().as_secs_f64();
    if let Some(t) = ticker {
        t.abort();
    }

    let cancelled = cancel.load(Ordering::Relaxed);
    if cancelled {
        eprintln!("stopped early by a signal after {elapsed_s:.1} s");
    }
    let info = RunInfo {
        cancelled,
        label: args.label.clone(),
        url: args.url.clone(),
        concurrency: args.concurrency,
        seed: args.seed,
        mix: args.mix.weights().to_vec(),
        elapsed_s,
    };
    let report = Report::build(info, &samples);
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// SIGINT or SIGTERM ends the run early but still reports (a load script stops the load
/// this way when the server under test dies). A second signal exits at once.
async fn cancel_on_signal(cancel: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    for _ in 0..2 {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if cancel.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("signal received: finishing the requests in flight, then reporting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn duration_or_requests_is_required() {
        assert!(Args::try_parse_from(["ocular-load", "--url", "http://127.0.0.1:1"]).is_err());
        let a = Args::try_parse_from(["ocular-load", "--url", "http://127.0.0.1:1", "--requests", "5"]).unwrap();
        assert_eq!(a.requests, Some(5));
        assert_eq!(a.mix, "analyze=1,analyze_gradcam=1,search_photo=2,search_text=2".parse().unwrap());
    }

    #[test]
    fn urls_split_into_authority_and_prefix() {
        assert_eq!(split_url("http://127.0.0.1:8000").unwrap(), ("127.0.0.1:8000".into(), "".into()));
        assert_eq!(split_url("http://localhost/api/").unwrap(), ("localhost:80".into(), "/api".into()));
        assert!(split_url("https://127.0.0.1:8443").is_err());
        assert!(split_url("not a url").is_err());
    }
}
