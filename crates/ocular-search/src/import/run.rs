//! One import run over the store's bookkeeping (`ImportStore`).
//!
//! The file's SHA-256 names the job, so running the same file again resumes an unfinished job:
//! chunks already completed are not claimed again, and lines recorded `ok` in a half-done chunk
//! are skipped. Running a file whose job finished starts a new job, but a product whose fields,
//! photo and vectors (made by the configured models) are already stored is recognised as
//! unchanged and costs no inference, so re-running an import is cheap and idempotent.
//!
//! Records are embedded `batch_size` at a time (`MAX_BATCH_SIZE`: one model call per batch)
//! and written in one transaction per batch. A record that fails (bad JSON, missing photo
//! file, invalid field) is recorded with its error and the import goes on.
//!
//! A photo URL that cannot be fetched (a dead link, a host that is down) does not lose the
//! product: it is stored without a photo, found by its text, with the URL kept as its
//! `image_url` and no stored image (`photo_missing` in its JSON). The next import of the same
//! catalog fetches that URL again instead of calling the product unchanged; the report counts
//! such products (`photos_missing`).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ocular_store::{ImportJob, ImportLine, NewImport, NewProduct, Product};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ImportError;
use super::parse::{Format, ImageRef, Record};
use super::source::{self, RecordCursor};
use crate::catalog::Catalog;
use crate::embed::{Embedders, IMAGE, IMAGE_TEXT, TEXT, product_text};
use crate::error::SearchError;
use crate::ingest::{ImageInput, image_embeddings, model};
use crate::loader::ImageLoader;

/// Chunks hold this many batches: small enough that a crash loses little, large enough that
/// bookkeeping is a small share of the work.
const BATCHES_PER_CHUNK: usize = 4;
/// A crashed importer's chunk returns to the pool after this long.
const LEASE: Duration = Duration::from_secs(600);
/// Failures listed in the report (all are in the store).
const REPORTED_FAILURES: usize = 50;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    /// Images per model call.
    pub batch_size: usize,
    /// Several importers (on several machines) share this job: leave other workers' claims
    /// alone; a crashed worker's chunks come back when their lease expires.
    pub shared: bool,
}

/// Told about progress after every batch (a terminal bar, or plain log lines).
pub trait Progress {
    fn update(&mut self, done: u64, total: u64);

    /// Called before each batch of `records`; what it returns is held while the batch runs (a
    /// server takes its admission permit and memory reservation here, like any request).
    fn admit(&mut self, records: usize) -> Box<dyn std::any::Any> {
        let _ = records;
        Box::new(())
    }

    /// The run's counts so far, after each batch.
    fn counts(&mut self, report: &ImportReport) {
        let _ = report;
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub job_id: String,
    pub total: u64,
    /// Written (embedded) by this run.
    pub written: u64,
    /// Found already stored as they are, by this run.
    pub unchanged: u64,
    /// Recorded ok by an earlier run of the same job.
    pub resumed: u64,
    /// Failed lines, over the whole job.
    pub failed: u64,
    /// Products stored by this run without their photo, whose URL could not be fetched (see
    /// the module docs); counted as written or unchanged too.
    pub photos_missing: u64,
    /// The first failures, by line.
    pub failures: Vec<ImportLine>,
    pub seconds: f64,
    /// Photos embedded per second by this run.
    pub images_per_s: f64,
}

/// What to do with one record.
enum Plan {
    Failed(String),
    Unchanged(String),
    Write {
        product: Box<NewProduct>,
        image: Option<ImageInput>,
        missing: Option<String>,
        /// Further photos read (`Parsed::further`).
        further: Vec<ImageInput>,
    },
    /// Stored as it is, its photo URL still dead.
    UnchangedMissing(String),
}

/// Imports `path` (see the module docs): [`begin_import`], then [`run_import`].
pub fn import_file(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    loader: &ImageLoader,
    path: &Path,
    options: &ImportOptions,
    progress: &mut dyn Progress,
) -> Result<ImportReport, ImportError> {
    let job = begin_import(catalog, path, options)?;
    run_import(catalog, embedders, loader, path, options, job, progress)
}

/// Reads the file through twice as a stream (its SHA-256, then its records: memory holds
/// neither the file nor its records) and begins its job, or finds the unfinished one for the
/// same bytes. A file that is no catalog at all (not UTF-8, a quote never closed, an array never
/// closed) fails here, before any job exists.
pub fn begin_import(catalog: &Catalog, path: &Path, options: &ImportOptions) -> Result<ImportJob, ImportError> {
    let read_err = |source| ImportError::Read { path: path.to_path_buf(), source };
    let format_err = |reason: String| ImportError::Format { path: path.to_path_buf(), reason };
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    std::io::copy(&mut file, &mut hasher).map_err(read_err)?;
    let total = source::open_file(path, options.format).and_then(|r| r.count()).map_err(format_err)?;
    let batch_size = options.batch_size.max(1);
    Ok(catalog.store().begin_import(&NewImport {
        source: path.display().to_string(),
        source_sha256: hex::encode(hasher.finalize()),
        total_lines: total,
        chunk_lines: (batch_size * BATCHES_PER_CHUNK) as u64,
    })?)
}

/// Runs (or resumes) `job`, begun by [`begin_import`] for the file at `path`, to its end.
pub fn run_import(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    loader: &ImageLoader,
    path: &Path,
    options: &ImportOptions,
    job: ImportJob,
    progress: &mut dyn Progress,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let format_err = |reason: String| ImportError::Format { path: path.to_path_buf(), reason };
    let store = catalog.store();
    let batch_size = options.batch_size.max(1);
    // Alone on a job (the default), a previous run that crashed left its claims behind, and this
    // run takes them over at once instead of waiting out the lease. Shared, that would steal
    // live chunks from the other workers.
    if !options.shared {
        store.release_import_claims(&job.id)?;
    }
    let worker = format!("ocular-import-{}", std::process::id());
    let total = job.total_lines;
    let mut report = ImportReport {
        job_id: job.id.clone(),
        total,
        written: 0,
        unchanged: 0,
        resumed: 0,
        failed: 0,
        photos_missing: 0,
        failures: Vec::new(),
        seconds: 0.0,
        images_per_s: 0.0,
    };
    let mut images = 0u64;
    let mut embed_time = Duration::ZERO;
    let mut done = job.lines_ok + job.lines_failed;
    report.resumed = job.lines_ok;
    progress.update(done, total);
    let mut records = RecordCursor::open(path, options.format).map_err(format_err)?;

    while let Some(chunk) = store.claim_import_chunk(&job.id, &worker, LEASE)? {
        let ok: HashSet<u64> =
            store.import_lines(&job.id, chunk.lines())?.into_iter().filter(|l| l.is_ok()).map(|l| l.line).collect();
        // Only this chunk's records are in memory.
        let chunk_records = records.take(chunk.lines()).map_err(format_err)?;
        let pending: Vec<&Record> = chunk_records.iter().filter(|r| !ok.contains(&r.number)).collect();
        for batch in pending.chunks(batch_size) {
            // Held while the batch runs: a server's admission permit and memory reservation.
            let _admitted = progress.admit(batch.len());
            let t = Instant::now();
            let (lines, counts) = import_batch(catalog, embedders, loader, batch);
            if counts.1 > 0 {
                embed_time += t.elapsed();
            }
            report.written += counts.0;
            images += counts.1;
            report.unchanged += counts.2;
            report.photos_missing += counts.3;
            store.record_import_lines(&job.id, &lines)?;
            done += lines.len() as u64;
            progress.update(done.min(total), total);
            progress.counts(&report);
        }
        store.complete_import_chunk(&job.id, chunk.first_line)?;
    }

    let job = store.import_job(&job.id)?.unwrap_or(job);
    report.failed = job.lines_failed;
    report.failures = store.import_failures(&job.id, 0, REPORTED_FAILURES)?.items;
    report.seconds = started.elapsed().as_secs_f64();
    report.images_per_s = if embed_time.is_zero() { 0.0 } else { images as f64 / embed_time.as_secs_f64() };
    Ok(report)
}

/// Imports one batch; returns the line outcomes and (written, images embedded, unchanged,
/// photos missing).
fn import_batch(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    loader: &ImageLoader,
    batch: &[&Record],
) -> (Vec<ImportLine>, (u64, u64, u64, u64)) {
    let mut lines = Vec::with_capacity(batch.len());
    let mut unchanged = 0;
    let mut missing = 0;
    let mut writes: Vec<(u64, NewProduct, Option<ImageInput>, Vec<ImageInput>)> = Vec::new();
    for r in batch {
        match plan(catalog, embedders, loader, r) {
            Plan::Failed(e) => lines.push(ImportLine::failed(r.number, format!("line {}: {e}", r.line))),
            Plan::Unchanged(id) => {
                unchanged += 1;
                lines.push(ImportLine::ok(r.number, id));
            }
            Plan::UnchangedMissing(id) => {
                unchanged += 1;
                missing += 1;
                lines.push(ImportLine::ok(r.number, id));
            }
            Plan::Write { mut product, image, missing: dead, further } => {
                // `embed_and_write` takes the photo's origin from `image`; a dead URL stays
                // the product's `image_url`, with no stored image.
                if let Some(url) = dead {
                    missing += 1;
                    product.image_url = Some(url);
                }
                writes.push((r.number, *product, image, further))
            }
        }
    }
    let line_of = |n: u64| batch.iter().find(|r| r.number == n).map_or(n, |r| r.line);
    let images = writes.iter().map(|w| usize::from(w.2.is_some()) + w.3.len()).sum::<usize>() as u64;
    let mut outcomes = Vec::new();
    if let Err((numbers, e)) = embed_and_write(catalog, embedders, writes, &mut outcomes) {
        // The whole batch failed together (a model or database error): each line says why.
        outcomes.extend(numbers.into_iter().map(|n| (n, Err(e.clone()))));
    }
    let written: Vec<ImportLine> = outcomes
        .into_iter()
        .map(|(n, r)| match r {
            Ok(id) => ImportLine::ok(n, id),
            Err(e) => ImportLine::failed(n, format!("line {}: {e}", line_of(n))),
        })
        .collect();
    let ok = written.iter().filter(|l| l.is_ok()).count() as u64;
    lines.extend(written);
    lines.sort_by_key(|l| l.line);
    (lines, (ok, images, unchanged, missing))
}

fn plan(catalog: &Catalog, embedders: &dyn Embedders, loader: &ImageLoader, r: &Record) -> Plan {
    let parsed = match &r.parsed {
        Ok(p) => p,
        Err(e) => return Plan::Failed(e.clone()),
    };
    let mut product = parsed.product.clone();
    let existing = match catalog.store().get_product(&product.id) {
        Ok(p) => p,
        Err(e) => return Plan::Failed(e.to_string()),
    };
    // A URL already imported is not fetched again to find out nothing changed (unless its
    // photo is missing: then it is retried).
    if let (Some(ImageRef::Url(url)), Some(p)) = (&parsed.image, &existing)
        && p.image_url.as_deref() == Some(url.as_str())
        && p.image_sha256.is_some()
    {
        product.image_url = Some(url.clone());
        product.image_sha256.clone_from(&p.image_sha256);
        if is_unchanged(catalog, embedders, p, &product) {
            return Plan::Unchanged(product.id);
        }
    }
    // Further photos: the first ones up to the catalog's limit (the rest of a long list is
    // left out unread); one that cannot be read is left out, the product keeps the others.
    let further: Vec<ImageInput> = parsed
        .further
        .iter()
        .take(catalog.max_photos() - 1)
        .filter_map(|r| {
            loader
                .load(r)
                .inspect_err(
                    |e| tracing::warn!(product.id = %product.id, error = %error_text(e), "further photo left out"),
                )
                .ok()
        })
        .collect();
    let image = match &parsed.image {
        None => None,
        Some(r) => match loader.load(r) {
            Ok(i) => Some(i),
            // A dead photo URL: the product is stored without it (see the module docs).
            Err(e) if is_unreachable(&e) => {
                let Some(ImageRef::Url(url)) = &parsed.image else { return Plan::Failed(error_text(&e)) };
                tracing::warn!(product.id = %product.id, url = %url, error = %error_text(&e), "photo not fetched; product stored without it");
                let mut without = product.clone();
                without.image_url = Some(url.clone());
                if let Some(p) = &existing
                    && is_unchanged(catalog, embedders, p, &without)
                {
                    return Plan::UnchangedMissing(product.id);
                }
                return Plan::Write { product: Box::new(product), image: None, missing: Some(url.clone()), further };
            }
            Err(e) => return Plan::Failed(error_text(&e)),
        },
    };
    if let Some(p) = &existing {
        let mut candidate = product.clone();
        candidate.image_url = image.as_ref().and_then(|i| i.source_url.clone());
        // The store keeps photos without their metadata (`Catalog::store_photo`), so the digest
        // to compare is that of the stripped bytes; a photo that cannot be stripped is new.
        let digest = |i: &ImageInput| match ocular_image::strip_metadata(&i.bytes) {
            Ok(clean) => hex::encode(Sha256::digest(&clean)),
            Err(_) => hex::encode(Sha256::digest(&i.bytes)),
        };
        candidate.image_sha256 = image.as_ref().map(digest);
        candidate.images = further
            .iter()
            .map(|i| ocular_store::ProductImage { url: i.source_url.clone(), sha256: Some(digest(i)) })
            .collect();
        if is_unchanged(catalog, embedders, p, &candidate) {
            return Plan::Unchanged(product.id);
        }
    }
    Plan::Write { product: Box::new(product), image, missing: None, further }
}

/// A photo URL that could not be fetched (the network's or the remote host's failure), as
/// opposed to a URL refused by policy or a photo that is not an image, which stay failures.
fn is_unreachable(e: &SearchError) -> bool {
    use ocular_fetch::FetchError as F;
    matches!(
        e,
        SearchError::Fetch(
            F::Resolve { .. }
                | F::NoAddresses { .. }
                | F::Connect { .. }
                | F::Tls { .. }
                | F::Http { .. }
                | F::Status { .. }
                | F::Timeout { .. }
        )
    )
}

/// Stored exactly so, with every vector it should have made by the configured models.
fn is_unchanged(catalog: &Catalog, embedders: &dyn Embedders, stored: &Product, candidate: &NewProduct) -> bool {
    if &stored.to_new() != candidate {
        return false;
    }
    let Ok(vectors) = catalog.store().embeddings_of(stored.key) else { return false };
    let needed: &[&str] = if stored.image_sha256.is_some() { &[IMAGE, TEXT, IMAGE_TEXT] } else { &[TEXT] };
    needed.iter().all(|space| vectors.iter().any(|v| v.space == *space && v.model == model(embedders, space)))
}

type Outcomes = Vec<(u64, Result<String, String>)>;

/// Decodes and embeds a batch of photos and texts, stores photos, writes the products.
/// Per-record outcomes go to `outcomes`; the error lists the records that failed together.
fn embed_and_write(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    writes: Vec<(u64, NewProduct, Option<ImageInput>, Vec<ImageInput>)>,
    outcomes: &mut Outcomes,
) -> Result<(), (Vec<u64>, String)> {
    let mut ready = Vec::new();
    let mut decoded = Vec::new();
    let photos: Vec<&[u8]> = writes.iter().filter_map(|w| w.2.as_ref().map(|i| i.bytes.as_slice())).collect();
    let mut decodes = decode_all(catalog, embedders, &photos).into_iter();
    for (n, mut product, image, further) in writes {
        product.image_sha256 = None;
        if image.is_some() {
            product.image_url = None;
        }
        match image {
            None => ready.push((n, product, None, further)),
            Some(input) => match decodes.next().unwrap_or_else(|| Err(SearchError::invalid("image", "not decoded"))) {
                Ok(d) => {
                    decoded.push(d.image);
                    ready.push((n, product, Some((input, d.format)), further));
                }
                Err(e) => outcomes.push((n, Err(error_text(&e)))),
            },
        }
    }
    if ready.is_empty() {
        return Ok(());
    }
    let numbers: Vec<u64> = ready.iter().map(|w| w.0).collect();
    let fail = |e: &SearchError| (numbers.clone(), error_text(e));
    let refs: Vec<&ocular_image::image::RgbImage> = decoded.iter().collect();
    let mut vectors = embedders.embed_images(&refs).map_err(|e| fail(&e.into()))?.into_iter();
    drop(decoded);
    let texts: Vec<String> = ready.iter().map(|w| product_text(&w.1.title, &w.1.description)).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Without a text model (image-only CLIP) products are found by their photos alone.
    let text_vectors = if crate::embed::fills(embedders, TEXT) {
        embedders.embed_texts(&text_refs).map_err(|e| fail(&e.into()))?
    } else {
        Vec::new()
    };
    let mut text_vectors = text_vectors.into_iter();

    let mut batch = Vec::with_capacity(ready.len());
    let mut batch_numbers = Vec::with_capacity(ready.len());
    for (n, mut product, image, further) in ready {
        let mut embeddings = Vec::with_capacity(3);
        if let Some(v) = text_vectors.next() {
            embeddings.push(ocular_store::Embedding::new(TEXT, model(embedders, TEXT), v));
        }
        if let Some((input, format)) = image {
            let Some(v) = vectors.next() else {
                outcomes.push((n, Err("the image model returned too few embeddings".into())));
                continue;
            };
            match catalog.store_photo(&input.bytes, format) {
                Ok(sha) => product.image_sha256 = Some(sha),
                Err(e) => {
                    outcomes.push((n, Err(e.to_string())));
                    continue;
                }
            }
            product.image_url = input.source_url;
            embeddings.extend(image_embeddings(embedders, v));
        }
        match catalog.embed_further(embedders, &further) {
            Ok((images, vectors)) => {
                product.images = images;
                embeddings.extend(vectors);
            }
            Err(e) => {
                outcomes.push((n, Err(error_text(&e))));
                continue;
            }
        }
        batch_numbers.push(n);
        batch.push((product, embeddings));
    }
    let results = catalog.write_batch(&batch).map_err(|e| (batch_numbers.clone(), error_text(&e)))?;
    for ((n, r), (p, _)) in batch_numbers.into_iter().zip(results).zip(&batch) {
        outcomes.push((n, r.map(|_| p.id.clone()).map_err(|e| error_text(&e))));
    }
    Ok(())
}

/// Decodes photos on every core (decoding is a fifth of ingest time and the image model
/// waits for it), in input order.
fn decode_all(
    catalog: &Catalog,
    embedders: &dyn Embedders,
    photos: &[&[u8]],
) -> Vec<Result<ocular_image::Decoded, SearchError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(photos.len()).max(1);
    let per = photos.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = photos
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(|b| catalog.decode(embedders, b)).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// An error with its causes, one line (what an import summary shows).
fn error_text(e: &SearchError) -> String {
    ocular_models::registry::error_chain(e)
}
