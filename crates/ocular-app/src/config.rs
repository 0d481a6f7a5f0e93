//! The one configuration struct: every option is a flag and an `OCULAR_*` variable.
//!
//! The services ocular replaces were configured with `PORT`, `PRELOAD_MODEL`, `TOP_K`, …;
//! [`apply_env_aliases`] maps those names onto ours so their deployments move over unchanged.
//! Values are validated once at start-up ([`Config::validate`]); the effective configuration is
//! logged once with secrets redacted ([`Config::redacted`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ocular_store::postgres::{PgHnswOptions, PgOptions};
use serde::Serialize;

/// A `u32` range as clap's integer parsers take it.
const fn range(r: std::ops::RangeInclusive<u32>) -> std::ops::RangeInclusive<i64> {
    (*r.start() as i64)..=(*r.end() as i64)
}

/// Options shared by every subcommand. `Debug` prints [`Config::redacted`]: a config logged
/// or shown in a panic never shows the API key or the database password.
#[derive(Clone, Args, Serialize)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "OCULAR_HOST", default_value = "127.0.0.1", global = true)]
    pub host: std::net::IpAddr,

    /// Port to listen on (alias: PORT).
    #[arg(long, env = "OCULAR_PORT", default_value_t = 8000, global = true)]
    pub port: u16,

    /// Directory for the database and stored images.
    #[arg(long, env = "OCULAR_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Directory holding one folder per model and the ONNX Runtime library.
    #[arg(long, env = "OCULAR_MODELS_DIR", default_value = "./models", global = true)]
    pub models_dir: PathBuf,

    /// Database URL: sqlite:PATH (default DATA_DIR/ocular.db) or postgres://… (alias: DATABASE_URL).
    #[arg(long, env = "OCULAR_DATABASE_URL", global = true)]
    #[serde(skip)]
    pub database_url: Option<String>,

    /// PostgreSQL connections this process opens at most (1-1000); the database's
    /// `max_connections` must exceed replicas x this (docs/DEPLOY.md). SQLite ignores it.
    #[arg(long, env = "OCULAR_PG_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=PgOptions::MAX_POOL_SIZE as u64), global = true)]
    pub pg_pool_size: u64,

    /// How long a request waits for a free PostgreSQL connection, in milliseconds, before
    /// 503 (at most an hour).
    #[arg(long, env = "OCULAR_PG_POOL_WAIT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=PgOptions::MAX_POOL_WAIT_MS), global = true)]
    pub pg_pool_wait_ms: u64,

    /// PostgreSQL `statement_timeout` for every session, in milliseconds (at most a day); a
    /// longer statement is cancelled by the server. 0 leaves the server's setting.
    #[arg(long, env = "OCULAR_PG_STATEMENT_TIMEOUT_MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=PgOptions::MAX_STATEMENT_TIMEOUT_MS), global = true)]
    pub pg_statement_timeout_ms: u64,

    /// PostgreSQL HNSW `ef_search` (1-1000): graph candidates a vector search keeps. Higher finds
    /// more of the true nearest neighbours and is slower (docs/DEPLOY.md, "PostgreSQL search
    /// recall"). SQLite ignores it.
    #[arg(long, env = "OCULAR_PG_EF_SEARCH", default_value_t = PgHnswOptions::default().ef_search,
          value_parser = clap::value_parser!(u32).range(range(PgHnswOptions::EF_SEARCH)), global = true)]
    pub pg_ef_search: u32,

    /// PostgreSQL HNSW `m` (2-100) for indexes built from now on: graph links per vector.
    #[arg(long, env = "OCULAR_PG_HNSW_M", default_value_t = PgHnswOptions::default().m,
          value_parser = clap::value_parser!(u32).range(range(PgHnswOptions::M)), global = true)]
    pub pg_hnsw_m: u32,

    /// PostgreSQL HNSW `ef_construction` (4-1000, at least 2 x m) for indexes built from now on.
    #[arg(long, env = "OCULAR_PG_EF_CONSTRUCTION", default_value_t = PgHnswOptions::default().ef_construction,
          value_parser = clap::value_parser!(u32).range(range(PgHnswOptions::EF_CONSTRUCTION)), global = true)]
    pub pg_ef_construction: u32,

    /// Path of libonnxruntime.so; found under MODELS_DIR/onnxruntime when unset.
    #[arg(long, env = "OCULAR_ORT_LIBRARY", global = true)]
    pub ort_library: Option<PathBuf>,

    /// Load every model before reporting ready (alias: PRELOAD_MODEL; LAZY_LOAD_MODEL=true sets false).
    #[arg(long, env = "OCULAR_PRELOAD", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub preload: bool,

    /// Comma-separated model names to enable; every model found when unset.
    #[arg(long, env = "OCULAR_MODELS", value_delimiter = ',', global = true)]
    pub models: Option<Vec<String>>,

    /// Compute Grad-CAM heatmaps unless a request says otherwise (alias: ENABLE_GRADCAM).
    #[arg(long, env = "OCULAR_ENABLE_GRADCAM", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub enable_gradcam: bool,

    /// The in-memory vector index: `auto` (int8 codes below 50,000 products at start, one-bit
    /// compact codes from there), `int8` (fastest, ~2.2 KB per product) or `compact` (~150 B per
    /// product, f32 vectors in a mapped file in TMPDIR).
    #[arg(long, env = "OCULAR_INDEX", value_enum, default_value_t = crate::catalog::IndexChoice::Auto, global = true)]
    pub index: crate::catalog::IndexChoice,

    /// Models behind product search: `default` (EfficientNet-Lite0 + MiniLM, ConSE for
    /// text-to-image) or `clip` (the CLIP towers installed by `ocular models import-clip`; the
    /// text tower is optional). Switching needs `ocular reindex`.
    #[arg(long, env = "OCULAR_SEARCH_MODELS", value_enum, default_value_t = crate::search_models::SearchModels::Default, global = true)]
    pub search_models: crate::search_models::SearchModels,

    /// Default number of search results (alias: TOP_K).
    #[arg(long, env = "OCULAR_TOP_K", default_value_t = 10, global = true)]
    pub top_k: usize,

    /// Default minimum similarity of a search result, -1..1 (alias: SIMILARITY_THRESHOLD).
    #[arg(long, env = "OCULAR_SIMILARITY_THRESHOLD", default_value_t = 0.2, global = true)]
    pub similarity_threshold: f32,

    /// Images embedded per model call during imports (alias: MAX_BATCH_SIZE).
    #[arg(long, env = "OCULAR_MAX_BATCH_SIZE", default_value_t = 8, global = true)]
    pub max_batch_size: usize,

    /// Inferences running at once; more wait in the queue (alias: MAX_CONCURRENCY).
    #[arg(long, env = "OCULAR_MAX_CONCURRENCY", default_value_t = 10, global = true)]
    pub max_concurrency: usize,

    /// Requests allowed to wait for an inference slot; beyond that 503 + Retry-After.
    #[arg(long, env = "OCULAR_MAX_QUEUE", default_value_t = 32, global = true)]
    pub max_queue: usize,

    /// Longest wait for an inference slot, in milliseconds, before 503.
    #[arg(long, env = "OCULAR_QUEUE_TIMEOUT_MS", default_value_t = 5000, global = true)]
    pub queue_timeout_ms: u64,

    /// Unload a model no request has used for this many seconds (0: never); the next request
    /// loads it again. Gives the memory of rarely used models back on small hosts.
    #[arg(long, env = "OCULAR_MODEL_IDLE_UNLOAD_S", default_value_t = 0, global = true)]
    pub model_idle_unload_s: u64,

    /// Most requests one inference may serve together, for every model (inference lanes,
    /// docs/BENCHMARKS.md, "Serving engine"); 1 turns batching off. Unset: 8 for the text model;
    /// 1 for the image model (EfficientNet-Lite0: a batch's activations leave the reused heap,
    /// docs/BENCHMARKS.md, "Fourth round") and for the skin model (a batch gained it no
    /// throughput on 2 cores and raises peak memory by ~40 MB a row).
    #[arg(long, env = "OCULAR_INFERENCE_BATCH", global = true)]
    pub inference_batch: Option<usize>,

    /// ONNX Runtime threads per inference (default: all cores).
    #[arg(long, env = "OCULAR_INTRA_THREADS", global = true)]
    pub intra_threads: Option<usize>,

    /// Graph of the skin model: `fp32` (default: a medical model, see the README for the int8
    /// numbers) or `int8` (installed by `ocular models fetch`).
    #[arg(long, env = "OCULAR_SKIN_PRECISION", default_value = "fp32", global = true)]
    pub skin_precision: ocular_core::manifest::Precision,

    /// Graph of the image embedding model: `fp32` (default: faster than int8 with pre-packing
    /// off, see `Precisions`) or `int8`.
    /// Vectors of the two differ, so switching makes the catalog ask for `ocular reindex`.
    #[arg(long, env = "OCULAR_IMAGE_PRECISION", default_value = "fp32", global = true)]
    pub image_precision: ocular_core::manifest::Precision,

    /// Largest accepted request body, in bytes (uploads included).
    #[arg(long, env = "OCULAR_MAX_BODY_BYTES", default_value_t = 20 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Largest accepted JSON body, in bytes (products, searches, texts to embed); larger ones
    /// are 413 before they are read.
    #[arg(long, env = "OCULAR_MAX_JSON_BYTES", default_value_t = DEFAULT_MAX_JSON_BYTES, global = true)]
    pub max_json_bytes: usize,

    /// Request body bytes held in memory at once by all requests together; a body arriving
    /// while they are all taken is refused with 503 `body_budget_exceeded`. At least
    /// MAX_BODY_BYTES.
    #[arg(long, env = "OCULAR_MAX_INFLIGHT_BODY_BYTES", default_value_t = DEFAULT_INFLIGHT_BODY_BYTES, global = true)]
    pub max_inflight_body_bytes: usize,

    /// Open client connections at once; more wait in the kernel's accept queue.
    #[arg(long, env = "OCULAR_MAX_CONNECTIONS", default_value_t = 512, global = true)]
    pub max_connections: usize,

    /// Largest accepted image, in decoded pixels (checked before decoding).
    #[arg(long, env = "OCULAR_MAX_IMAGE_PIXELS", default_value_t = 40_000_000, global = true)]
    pub max_image_pixels: u64,

    /// Largest catalog file `POST /api/v1/imports` accepts, in bytes; it is spooled to the data
    /// directory as it arrives, never held in memory (the upload must still arrive within
    /// REQUEST_TIMEOUT_S).
    #[arg(long, env = "OCULAR_MAX_IMPORT_BYTES", default_value_t = 1 << 30, global = true)]
    pub max_import_bytes: u64,

    /// Import jobs (`POST /api/v1/imports`) run at once; one more is refused with 503
    /// `import_busy` and Retry-After.
    #[arg(long, env = "OCULAR_MAX_IMPORT_JOBS", default_value_t = 1, global = true)]
    pub max_import_jobs: usize,

    /// Photos a product may have, the main one included (1 to 16, the store's ceiling): each
    /// is an embedding at write time and an index entry per photo space. Import keeps the
    /// first ones of a longer list, HTTP writes refuse more (400 `invalid_product`), reindex
    /// embeds only these.
    #[arg(long, env = "OCULAR_MAX_PHOTOS_PER_PRODUCT", default_value_t = ocular_search::DEFAULT_MAX_PHOTOS as u64,
          value_parser = clap::value_parser!(u64).range(1..=ocular_store::MAX_PHOTOS as u64), global = true)]
    pub max_photos_per_product: u64,

    /// Deadline for a whole request, in seconds.
    #[arg(long, env = "OCULAR_REQUEST_TIMEOUT_S", default_value_t = 30, global = true)]
    pub request_timeout_s: u64,

    /// Deadline for a connection's request line and headers, in milliseconds (also how long an
    /// idle keep-alive connection stays open); a slower client is disconnected (slow-loris).
    #[arg(long, env = "OCULAR_HEADER_TIMEOUT_MS", default_value_t = 10_000, global = true)]
    pub header_timeout_ms: u64,

    /// Read-progress window for request bodies, in milliseconds: while the server waits for a
    /// body, each window must bring `BODY_MIN_RATE` bytes/s' worth (any byte when that is 0).
    /// A slower upload is cut with 408 `body_timeout` and its share of the in-flight body
    /// budget goes back at once.
    #[arg(long, env = "OCULAR_BODY_TIMEOUT_MS", default_value_t = 5_000, global = true)]
    pub body_timeout_ms: u64,

    /// Slowest rate, in bytes per second, at which a request body may arrive, measured over
    /// each `BODY_TIMEOUT_MS` window; 0: only a window without any byte is cut. A client that
    /// sends part of a body and then trickles a byte now and then would otherwise hold a
    /// connection and its body's memory until the request deadline.
    #[arg(long, env = "OCULAR_BODY_MIN_RATE", default_value_t = 4096, global = true)]
    pub body_min_rate: u64,

    /// Memory the process may use, e.g. `400MiB` or `1GiB`; each request reserves its estimated
    /// peak from it and waits or gets 503 `memory_budget_exceeded` instead of the kernel killing
    /// the process. `auto`: the cgroup memory limit minus 10% (at least 32 MiB), none without
    /// one. `off` (or 0) disables it.
    #[arg(long, env = "OCULAR_MEMORY_BUDGET", default_value = "auto", value_parser = crate::memory::parse_budget, global = true)]
    pub memory_budget: crate::memory::BudgetSetting,

    /// Browser origins allowed to call the API cross-origin (comma-separated, e.g.
    /// `https://shop.example.com`), or `*` for any. Unset: no CORS headers (same origin only).
    #[arg(long, env = "OCULAR_CORS_ORIGINS", default_value = "", global = true)]
    pub cors_origins: String,

    /// API key required for writes when set (sent as `Authorization: Bearer KEY` or `X-Api-Key`).
    #[arg(long, env = "OCULAR_API_KEY", hide_env_values = true, global = true)]
    #[serde(skip)]
    pub api_key: Option<String>,

    /// File holding the API key on its first line (a container secret, say), so the key is in
    /// neither the environment nor `ps`. Exclusive with OCULAR_API_KEY; refused when other users
    /// may write it, a warning when they may read it.
    #[arg(long, env = "OCULAR_API_KEY_FILE", global = true)]
    pub api_key_file: Option<std::path::PathBuf>,

    /// Host names (comma-separated) this server answers to besides loopback ones, e.g. the name
    /// a reverse proxy forwards in `Host`. On a loopback address any other `Host` is refused
    /// (`400 host_not_allowed`): a web page that rebinds its own name to 127.0.0.1 (DNS
    /// rebinding) cannot talk to it. On a public address, when set, only these are answered.
    #[arg(long, env = "OCULAR_ALLOWED_HOSTS", default_value = "", global = true)]
    pub allowed_hosts: String,

    /// Serve on a non-loopback address without OCULAR_API_KEY: anyone who can reach the port may
    /// then write the catalog. Without this, `serve` refuses to start that way.
    #[arg(long, env = "OCULAR_ALLOW_PUBLIC_WITHOUT_KEY", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub allow_public_without_key: bool,

    /// Private hosts, IPs or CIDR blocks that image URLs may reach (comma-separated); every
    /// private, loopback and link-local address is refused otherwise.
    #[arg(long, env = "OCULAR_URL_ALLOW", default_value = "", global = true)]
    pub url_allow: String,

    /// Hours to keep the photo and heatmap of a skin analysis (health data); the probabilities
    /// stay. Unset keeps them until the analysis is deleted.
    #[arg(long, env = "OCULAR_ANALYSIS_IMAGE_RETENTION_HOURS", global = true)]
    pub analysis_image_retention_hours: Option<u64>,

    /// Days to keep a whole skin analysis (health data: result, photo, heatmap); older ones are
    /// deleted by the maintenance sweep (at start, every 10 minutes, and `ocular purge`).
    /// 0 keeps analyses until someone deletes them.
    #[arg(long, env = "OCULAR_ANALYSIS_RETENTION_DAYS", default_value_t = 90, global = true)]
    pub analysis_retention_days: u64,

    /// Log format: text or json.
    #[arg(long, env = "OCULAR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Config {}", self.redacted())
    }
}

/// Default of `OCULAR_MAX_JSON_BYTES` (the server's `json.rs` enforces it).
pub const DEFAULT_MAX_JSON_BYTES: usize = 64 * 1024;

/// Default of `OCULAR_MAX_INFLIGHT_BODY_BYTES` (the server's `limits.rs` enforces it): three
/// largest-possible uploads, or dozens of phone photos, at once.
pub const DEFAULT_INFLIGHT_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The largest `--inference-batch` accepted.
pub const MAX_INFERENCE_BATCH: usize = 64;

/// Old variable → (our variable, invert the boolean).
const ALIASES: &[(&str, &str, bool)] = &[
    ("PORT", "OCULAR_PORT", false),
    ("PRELOAD_MODEL", "OCULAR_PRELOAD", false),
    ("LAZY_LOAD_MODEL", "OCULAR_PRELOAD", true),
    ("ENABLE_GRADCAM", "OCULAR_ENABLE_GRADCAM", false),
    ("TOP_K", "OCULAR_TOP_K", false),
    ("SIMILARITY_THRESHOLD", "OCULAR_SIMILARITY_THRESHOLD", false),
    ("MAX_BATCH_SIZE", "OCULAR_MAX_BATCH_SIZE", false),
    ("MAX_CONCURRENCY", "OCULAR_MAX_CONCURRENCY", false),
    ("DATABASE_URL", "OCULAR_DATABASE_URL", false),
];

/// Computes `OCULAR_*` values implied by the original services' variables. An `OCULAR_*`
/// variable that is set always wins. Returns (name, value) pairs to set.
pub fn env_aliases(get: impl Fn(&str) -> Option<String>) -> Result<Vec<(&'static str, String)>, String> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (old, new, invert) in ALIASES {
        let Some(value) = get(old) else { continue };
        if get(new).is_some() || out.iter().any(|(n, _)| n == new) {
            continue;
        }
        let value = if *invert {
            match parse_bool(&value) {
                Some(b) => (!b).to_string(),
                None => return Err(format!("{old}={value:?} is not a boolean (true/false)")),
            }
        } else if ["PRELOAD_MODEL", "ENABLE_GRADCAM"].contains(old) {
            match parse_bool(&value) {
                Some(b) => b.to_string(),
                None => return Err(format!("{old}={value:?} is not a boolean (true/false)")),
            }
        } else {
            value
        };
        out.push((new, value));
    }
    Ok(out)
}

/// A DNS name or an IP address, nothing else.
fn is_host_name(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_ok()
        || (h.len() <= 253
            && h.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')))
}

/// Python-style booleans as the original services accepted them.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Applies [`env_aliases`] to this process's environment. Call before parsing, while the
/// process is still single-threaded.
pub fn apply_env_aliases() -> Result<(), String> {
    for (name, value) in env_aliases(|k| std::env::var(k).ok())? {
        // SAFETY: called at the start of `main`, before any thread is spawned.
        unsafe { std::env::set_var(name, value) };
    }
    Ok(())
}

impl Config {
    /// Checks values clap cannot check alone.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(-1.0..=1.0).contains(&self.similarity_threshold) {
            problems.push(format!("similarity threshold {} is outside -1..1", self.similarity_threshold));
        }
        // The same bound every search request enforces: a default it would refuse turns every
        // search without `top_k` into a 400.
        if !(1..=ocular_search::query::MAX_TOP_K).contains(&self.top_k) {
            problems.push(format!(
                "top_k {} is outside 1..{} (the most a search request may ask for)",
                self.top_k,
                ocular_search::query::MAX_TOP_K
            ));
        }
        for (name, v) in [
            ("max_concurrency", self.max_concurrency),
            ("max_batch_size", self.max_batch_size),
            ("inference_batch", self.inference_batch.unwrap_or(1)),
        ] {
            if v == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if let Some(rows) = self.inference_batch.filter(|&r| r > MAX_INFERENCE_BATCH) {
            // Each row of a skin-model batch keeps ~40 MB of activations: a typo must not
            // become gigabytes.
            problems.push(format!("inference_batch {rows} is above {MAX_INFERENCE_BATCH}"));
        }
        // Each is bounded by its parser; pgvector also wants ef_construction ≥ 2 × m.
        if let Err(problem) = self.pg_options().hnsw.check() {
            problems.push(problem);
        }
        if self.intra_threads == Some(0) {
            problems.push("intra_threads must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes must be at least 1024".into());
        }
        if self.max_json_bytes < 1024 || self.max_json_bytes > self.max_body_bytes {
            problems.push(format!(
                "max_json_bytes {} must be from 1024 to max_body_bytes ({})",
                self.max_json_bytes, self.max_body_bytes
            ));
        }
        if self.max_inflight_body_bytes < self.max_body_bytes {
            problems.push(format!(
                "max_inflight_body_bytes {} is below max_body_bytes {}: the largest accepted upload could never arrive",
                self.max_inflight_body_bytes, self.max_body_bytes
            ));
        }
        if let Some(bad) = self.allowed_host_list().iter().find(|h| !is_host_name(h)) {
            problems.push(format!("OCULAR_ALLOWED_HOSTS: {bad:?} is not a host name (no scheme, port or path)"));
        }
        if self.max_connections == 0 {
            problems.push("max_connections must be at least 1".into());
        }
        if self.request_timeout_s == 0 || self.header_timeout_ms == 0 || self.queue_timeout_ms == 0 {
            problems.push("request_timeout_s, header_timeout_ms and queue_timeout_ms must be at least 1".into());
        }
        if self.body_timeout_ms == 0 {
            problems.push("body_timeout_ms must be at least 1".into());
        }
        if self.queue_timeout_ms >= self.request_timeout_s.saturating_mul(1000) {
            problems.push(format!(
                "queue_timeout_ms {} is not below the request deadline ({} s): a queued request would time out \
                 before it could be refused with 503 overloaded",
                self.queue_timeout_ms, self.request_timeout_s
            ));
        }
        if self.max_image_pixels == 0 {
            problems.push("max_image_pixels must be at least 1".into());
        }
        if let Err(e) = ocular_fetch::AllowList::parse(&self.url_allow) {
            problems.push(format!("OCULAR_URL_ALLOW: {e}"));
        }
        if let Err(e) = crate::origins::parse_origins(&self.cors_origins) {
            problems.push(format!("OCULAR_CORS_ORIGINS: {e}"));
        }
        if self.api_key.as_deref().is_some_and(|k| k.len() < 16) {
            problems.push("the API key must be at least 16 characters".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// Whether `serve` may listen where it would listen, checked only by `serve` (other
    /// commands never listen). A non-loopback address without an API key is refused unless
    /// `allow_public_without_key` says the operator means it; `Ok(Some(warning))` then.
    pub fn check_public_bind(&self) -> Result<Option<String>, String> {
        if self.host.is_loopback() || self.api_key.is_some() {
            return Ok(None);
        }
        let exposed = format!(
            "listening on {} without OCULAR_API_KEY: anyone who can reach this port can create, change and \
             delete products, and no one (not even you) can list stored analyses",
            self.listen_addr()
        );
        if self.allow_public_without_key {
            Ok(Some(exposed))
        } else {
            Err(format!(
                "refusing to start: {exposed}. Set OCULAR_API_KEY (at least 16 characters), listen on 127.0.0.1 \
                 behind a proxy, or set OCULAR_ALLOW_PUBLIC_WITHOUT_KEY=true if this is really what you want"
            ))
        }
    }

    /// Whether strangers can reach this server: it listens on a non-loopback address. Internals
    /// (verbose health, `/metrics`) then need the API key.
    pub fn is_public(&self) -> bool {
        !self.host.is_loopback()
    }

    /// `OCULAR_ALLOWED_HOSTS`, lower case.
    pub fn allowed_host_list(&self) -> Vec<String> {
        self.allowed_hosts
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }

    /// The PostgreSQL pool and timeouts (`OCULAR_PG_*`); the connect timeout comes from the
    /// URL's `connect_timeout` or the default.
    pub fn pg_options(&self) -> PgOptions {
        PgOptions {
            pool_size: usize::try_from(self.pg_pool_size).unwrap_or(PgOptions::MAX_POOL_SIZE),
            pool_wait: Duration::from_millis(self.pg_pool_wait_ms),
            statement_timeout: (self.pg_statement_timeout_ms > 0)
                .then(|| Duration::from_millis(self.pg_statement_timeout_ms)),
            hnsw: PgHnswOptions {
                ef_search: self.pg_ef_search,
                m: self.pg_hnsw_m,
                ef_construction: self.pg_ef_construction,
            },
            ..PgOptions::default()
        }
    }

    /// The graphs the registry loads for the skin and image roles.
    pub fn precisions(&self) -> ocular_models::Precisions {
        ocular_models::Precisions { skin: self.skin_precision, image: self.image_precision }
    }

    /// The process's thread budget: `--intra-threads` when set, else every core it may use
    /// (`available_parallelism` honours the CPU affinity mask and a cgroup CPU quota). `serve`
    /// sizes both ONNX Runtime's one shared intra-op pool and tokio's workers to it, so
    /// inference and request handling never ask for more cores than there are (README,
    /// "Threads").
    pub fn threads(&self) -> usize {
        self.intra_threads.unwrap_or_else(|| ocular_models::session::SessionOptions::default().intra_threads)
    }

    /// `OCULAR_MAX_PHOTOS_PER_PRODUCT` (bounded by its parser to the store's ceiling).
    pub fn max_photos_per_product(&self) -> usize {
        usize::try_from(self.max_photos_per_product)
            .map_or(ocular_store::MAX_PHOTOS, |n| n.min(ocular_store::MAX_PHOTOS))
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The largest JSON body: `max_json_bytes`, and never more than any body may be.
    pub fn json_limit(&self) -> usize {
        self.max_json_bytes.min(self.max_body_bytes)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s.max(1))
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(1))
    }

    /// The configuration as JSON for the start-up log, secrets replaced.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            let db = self.database_url.as_deref().map(ocular_store::redact);
            obj.insert("database_url".into(), db.into());
            obj.insert("api_key".into(), self.api_key.as_ref().map(|_| "***").into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Cli::try_parse_from(std::iter::once("ocular").chain(args.iter().copied())).map(|c| c.config)
    }

    #[test]
    fn postgres_pool_and_timeouts_are_settings_with_their_variables_and_bounds() {
        // Variables set in the test's own environment would change the defaults read below.
        let vars = ["OCULAR_PG_POOL_SIZE", "OCULAR_PG_POOL_WAIT_MS", "OCULAR_PG_STATEMENT_TIMEOUT_MS"];
        if vars.iter().any(|v| std::env::var_os(v).is_some()) {
            panic!("unset {vars:?} to run this test");
        }
        assert_eq!(parse(&[]).expect("defaults").pg_options(), PgOptions::default());
        let c = parse(&["--pg-pool-size", "3", "--pg-pool-wait-ms", "250", "--pg-statement-timeout-ms", "5000"])
            .expect("flags");
        let o = c.pg_options();
        assert_eq!(
            (o.pool_size, o.pool_wait, o.statement_timeout),
            (3, Duration::from_millis(250), Some(Duration::from_secs(5)))
        );
        for (flag, value) in [
            ("--pg-pool-size", "0"),
            ("--pg-pool-size", "1001"),
            ("--pg-pool-size", "many"),
            ("--pg-statement-timeout-ms", "-1"),
            ("--pg-pool-wait-ms", "3600001"),
        ] {
            let err = parse(&[&format!("{flag}={value}")])
                .err()
                .unwrap_or_else(|| panic!("{flag} {value} accepted"))
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
        let command = Cli::command();
        let env_of = |id: &str| {
            command.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_env()).map(|e| e.to_os_string())
        };
        for (id, var) in ["pg_pool_size", "pg_pool_wait_ms", "pg_statement_timeout_ms"].into_iter().zip(vars) {
            assert_eq!(env_of(id), Some(var.into()), "{id}");
        }
    }

    #[test]
    fn postgres_hnsw_settings_are_settings_with_their_variables_and_bounds() {
        let vars = ["OCULAR_PG_EF_SEARCH", "OCULAR_PG_HNSW_M", "OCULAR_PG_EF_CONSTRUCTION"];
        if vars.iter().any(|v| std::env::var_os(v).is_some()) {
            panic!("unset {vars:?} to run this test");
        }
        assert_eq!(parse(&[]).expect("defaults").pg_options().hnsw, PgHnswOptions::default());
        let c = parse(&["--pg-ef-search", "200", "--pg-hnsw-m", "24", "--pg-ef-construction", "128"]).expect("flags");
        assert_eq!(c.pg_options().hnsw, PgHnswOptions { ef_search: 200, m: 24, ef_construction: 128 });
        assert_eq!(c.validate(), Ok(()));
        for (flag, value) in [
            ("--pg-ef-search", "0"),
            ("--pg-ef-search", "1001"),
            ("--pg-hnsw-m", "1"),
            ("--pg-hnsw-m", "101"),
            ("--pg-ef-construction", "3"),
            ("--pg-ef-construction", "1001"),
        ] {
            let err = parse(&[&format!("{flag}={value}")])
                .err()
                .unwrap_or_else(|| panic!("{flag} {value} accepted"))
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
        // Each within bounds, together refused by pgvector: caught at start-up, not at the build.
        let c = parse(&["--pg-hnsw-m", "48", "--pg-ef-construction", "64"]).expect("flags");
        let err = c.validate().expect_err("ef_construction below 2 x m");
        assert!(err.contains("ef_construction 64 must be at least 2 x hnsw_m (96)"), "{err}");
        let command = Cli::command();
        let env_of = |id: &str| {
            command.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_env()).map(|e| e.to_os_string())
        };
        for (id, var) in ["pg_ef_search", "pg_hnsw_m", "pg_ef_construction"].into_iter().zip(vars) {
            assert_eq!(env_of(id), Some(var.into()), "{id}");
        }
    }

    #[test]
    fn photos_per_product_is_a_bounded_setting_with_its_variable() {
        let var = "OCULAR_MAX_PHOTOS_PER_PRODUCT";
        if std::env::var_os(var).is_some() {
            panic!("unset {var} to run this test");
        }
        assert_eq!(parse(&[]).expect("defaults").max_photos_per_product(), ocular_search::DEFAULT_MAX_PHOTOS);
        let most = ocular_store::MAX_PHOTOS.to_string();
        for (value, want) in [("1", 1), ("3", 3), (most.as_str(), ocular_store::MAX_PHOTOS)] {
            let c = parse(&["--max-photos-per-product", value]).expect("within bounds");
            assert_eq!((c.max_photos_per_product(), c.validate()), (want, Ok(())));
        }
        let above = (ocular_store::MAX_PHOTOS + 1).to_string();
        for value in ["0", above.as_str(), "-1", "eight"] {
            let err = parse(&[&format!("--max-photos-per-product={value}")])
                .err()
                .unwrap_or_else(|| panic!("{value} accepted"))
                .to_string();
            assert!(err.contains("--max-photos-per-product"), "{err}");
        }
        let command = Cli::command();
        let env = command.get_arguments().find(|a| a.get_id() == "max_photos_per_product").and_then(|a| a.get_env());
        assert_eq!(env, Some(std::ffi::OsStr::new(var)));
    }
}
