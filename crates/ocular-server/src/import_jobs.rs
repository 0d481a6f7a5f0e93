//! Import jobs of `POST /api/v1/imports` ([`crate::imports`]): the slots, the background
//! runs, and what `GET /api/v1/imports/{id}` answers.
//!
//! What is kept where, so a restarted server can still answer:
//! - the store's import bookkeeping (the same as `ocular import`'s): the job, its record count,
//!   each record's outcome with its error, creation and finish times. It survives restarts and
//!   is shared by replicas on one PostgreSQL database;
//! - `<data dir>/imports/jobs/<id>.json`, written when a run ends: its state (`done`/`failed`
//!   and why), start time, and the counts only the run knows (`unchanged`, `photos_missing`,
//!   `written`). These count the job's last run on this server;
//! - in memory while a job runs: its state and running counts.
//!
//! A job the store knows unfinished and no run holds is `interrupted` (the server stopped
//! mid-import): posting the same file again resumes it. Spool files live in
//! `<data dir>/imports/`; each is deleted when its job's run ends, and any left at start (a
//! crash) are deleted then, since no run can hold them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocular_models::Admission;
use ocular_search::import::{ImportOptions, ImportReport, Progress, run_import};
use ocular_search::{Catalog, ImageLoader};
use ocular_store::{ImportJob, LineOutcome};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Failures listed by `GET /api/v1/imports/{id}` (all are in the store).
pub const LISTED_FAILURES: usize = 100;
/// What a refused client is told to wait, in seconds: a job takes minutes.
const BUSY_RETRY_S: u64 = 30;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Received; waiting for its first admission (the server is busy).
    Queued,
    Running,
    Done,
    /// The run stopped on an error that is not one record's (a model, the database); `error`
    /// says which. Posting the file again resumes it.
    Failed,
    /// Unfinished and not running here (the server stopped during it): post the file again.
    Interrupted,
}

/// One failed record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportFailure {
    /// The record's number in the file, from 1.
    pub record: u64,
    /// The line of the file the record starts on.
    pub line: u64,
    pub error: String,
}

/// `GET /api/v1/imports/{id}` (and the `202` of `POST /api/v1/imports`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportJobView {
    pub id: String,
    pub state: JobState,
    /// Records in the file.
    pub lines: u64,
    /// Records done so far (imported or failed).
    pub processed: u64,
    /// Records stored: written, or found already stored as they are.
    pub imported: u64,
    /// Of `imported`, found already stored as they are (no inference); counted by the job's
    /// last run on this server, absent when unknown.
    pub unchanged: Option<u64>,
    pub failed: u64,
    /// Products stored without their photo, whose URL could not be fetched (retried on the
    /// next import); counted like `unchanged`.
    pub photos_missing: Option<u64>,
    /// The first failed records, by line (at most 100; `failed` counts them all).
    pub failures: Vec<ImportFailure>,
    /// RFC 3339 times: the job's creation (its first upload), its last run's start, its end.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why a `failed` job stopped.
    pub error: Option<String>,
}

/// What a run leaves at `<dir>/jobs/<id>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    state: Option<JobState>,
    started_at: Option<String>,
    unchanged: u64,
    photos_missing: u64,
    written: u64,
    error: Option<String>,
}

/// The import jobs of one server (cheap to clone).
#[derive(Clone)]
pub struct Imports {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    slots: Arc<Semaphore>,
    max_jobs: usize,
    live: Mutex<HashMap<String, RunState>>,
}

/// Everything a job's run needs.
pub struct JobStart {
    pub state: AppState,
    pub catalog: Arc<Catalog>,
    pub job: ImportJob,
    pub spool: PathBuf,
    pub options: ImportOptions,
    pub slot: OwnedSemaphorePermit,
}

impl Imports {
    /// Jobs under `<data_dir>/imports`, at most `max_jobs` at once; deletes spool files a
    /// crashed run left there.
    pub fn new(data_dir: &Path, max_jobs: usize) -> Self {
        let dir = data_dir.join("imports");
        if let Err(e) = std::fs::create_dir_all(dir.join("jobs")) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the import spool folder; uploads will fail");
        }
        let orphans = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "upload"))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count();
        if orphans > 0 {
            tracing::info!(orphans, "deleted import spool files left by an earlier run");
        }
        let max_jobs = max_jobs.max(1);
        Self {
            inner: Arc::new(Inner {
                dir,
                slots: Arc::new(Semaphore::new(max_jobs)),
                max_jobs,
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A job slot, or `503 import_busy`.
    pub fn try_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.inner.slots.clone().try_acquire_owned().map_err(|_| ApiError::Unavailable {
            code: Code::ImportBusy,
            message: format!(
                "{} import job(s) are running, the most this server runs at once (OCULAR_MAX_IMPORT_JOBS); retry later",
                self.inner.max_jobs
            ),
            retry_after_s: BUSY_RETRY_S,
        })
    }

    /// A new spool file's path.
    pub fn spool_path(&self) -> PathBuf {
        self.inner.dir.join(format!("{}.upload", uuid::Uuid::new_v4()))
    }

    /// Starts `start.job` in the background; `Err(id)` when that job is running already.
    pub fn start(&self, start: JobStart) -> Result<(), String> {
        {
            let mut live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
            if live.contains_key(&start.job.id) {
                return Err(start.job.id.clone());
            }
            live.insert(start.job.id.clone(), RunState { state: Some(JobState::Queued), ..RunState::default() });
        }
        tokio::spawn(run(self.inner.clone(), start));
        Ok(())
    }

    /// What `GET /api/v1/imports/{id}` answers.
    pub async fn view(&self, state: &AppState, id: &str) -> Result<ImportJobView, ApiError> {
        let key = id.to_string();
        let found = state
            .db(move |s| {
                let Some(job) = s.import_job(&key)? else { return Ok(None) };
                let failures = s.import_failures(&key, 0, LISTED_FAILURES)?.items;
                Ok(Some((job, failures)))
            })
            .await?;
        let Some((job, failures)) = found else { return Err(ApiError::NotFound(format!("import job {id}"))) };
        let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let run = live.clone().or_else(|| self.read_run(id));
        let state = match (&live, run.as_ref().and_then(|r| r.state)) {
            (Some(l), _) => l.state.unwrap_or(JobState::Running),
            _ if job.finished_at.is_some() => JobState::Done,
            (None, Some(JobState::Failed)) => JobState::Failed,
            _ => JobState::Interrupted,
        };
        let known = run.is_some();
        let run = run.unwrap_or_default();
        Ok(ImportJobView {
            id: job.id,
            state,
            lines: job.total_lines,
            processed: job.lines_ok + job.lines_failed,
            imported: job.lines_ok,
            unchanged: known.then_some(run.unchanged),
            failed: job.lines_failed,
            photos_missing: known.then_some(run.photos_missing),
            failures: failures.into_iter().filter_map(failure).collect(),
            created_at: rfc3339(job.created_at),
            started_at: run.started_at,
            finished_at: job.finished_at.map(rfc3339),
            error: run.error,
        })
    }

    fn run_file(&self, id: &str) -> Option<PathBuf> {
        // Ids are the store's UUIDs; anything else names no file.
        uuid::Uuid::parse_str(id).ok().map(|u| self.inner.dir.join("jobs").join(format!("{u}.json")))
    }

    fn read_run(&self, id: &str) -> Option<RunState> {
        serde_json::from_slice(&std::fs::read(self.run_file(id)?).ok()?).ok()
    }
}

/// A store failure line as the API lists it: the file line is in the message's `line N: `.
fn failure(l: ocular_store::ImportLine) -> Option<ImportFailure> {
    let LineOutcome::Failed { error } = l.outcome else { return None };
    let parsed = error
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .and_then(|(n, msg)| Some((n.parse().ok()?, msg.to_string())));
    let (line, error) = parsed.unwrap_or((l.line, error));
    Some(ImportFailure { record: l.line, line, error })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Runs one job to its end, then records how it ended and deletes its spool file.
async fn run(inner: Arc<Inner>, start: JobStart) {
    let JobStart { state, catalog, job, spool, options, slot } = start;
    let id = job.id.clone();
    let started_at = rfc3339(OffsetDateTime::now_utc());
    set(&inner, &id, |r| r.started_at = Some(started_at.clone()));
    let outcome = async {
        let embedders = catalog.embedders().await.map_err(|e| ocular_models::registry::error_chain(&e))?;
        let limits = state.image_limits();
        let handle = tokio::runtime::Handle::current();
        let loader = ImageLoader::urls_only(limits, state.fetcher.clone().map(|f| (f, handle.clone())));
        // One record's photo and text, the largest share of a batch's memory; a batch never
        // reserves more than half the budget, so it always fits eventually and leaves room.
        let per_record = ocular_models::estimate::embed_image(&[], &limits, embedders.image_input(), true);
        let cap = state.admission.memory().limit().map_or(u64::MAX, |l| (l / 2).max(per_record));
        let mut hooks =
            Hooks { inner: inner.clone(), id: id.clone(), admission: state.admission.clone(), handle, per_record, cap };
        let path = spool.clone();
        tokio::task::spawn_blocking(move || {
            run_import(&catalog, embedders.as_ref(), &loader, &path, &options, job, &mut hooks)
                .map_err(|e| ocular_models::registry::error_chain(&e))
        })
        .await
        .map_err(|e| e.to_string())?
    }
    .await;
    // The slot goes before the job reads as ended: a client that saw `done` and posts the next
    // file must not be told `import_busy` by a job that has only bookkeeping left.
    drop(slot);
    let run_state = set(&inner, &id, |r| match &outcome {
        Ok(report) => {
            r.state = Some(JobState::Done);
            apply(r, report);
        }
        Err(e) => {
            r.state = Some(JobState::Failed);
            r.error = Some(e.clone());
        }
    });
    match &outcome {
        Ok(report) => tracing::info!(import.id = %id, written = report.written, unchanged = report.unchanged,
            failed = report.failed, photos_missing = report.photos_missing, seconds = report.seconds, "import done"),
        Err(e) => tracing::error!(import.id = %id, error = %e, "import failed"),
    }
    if let Some(file) = (Imports { inner: inner.clone() }).run_file(&id) {
        let written = serde_json::to_vec(&run_state).map_err(std::io::Error::other).and_then(|b| {
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, b)?;
            std::fs::rename(&tmp, &file)
        });
        if let Err(e) = written {
            tracing::warn!(import.id = %id, error = %e, "cannot record the import's outcome");
        }
    }
    let _ = tokio::fs::remove_file(&spool).await;
    inner.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

fn apply(r: &mut RunState, report: &ImportReport) {
    r.unchanged = report.unchanged;
    r.photos_missing = report.photos_missing;
    r.written = report.written;
}

/// Changes the live state of job `id`; returns it.
fn set(inner: &Inner, id: &str, change: impl FnOnce(&mut RunState)) -> RunState {
    let mut live = inner.live.lock().unwrap_or_else(|p| p.into_inner());
    let r = live.entry(id.to_string()).or_default();
    change(r);
    r.clone()
}

/// Admission per batch and live counts, from the import's thread.
struct Hooks {
    inner: Arc<Inner>,
    id: String,
    admission: Admission,
    handle: tokio::runtime::Handle,
    per_record: u64,
    cap: u64,
}

impl Progress for Hooks {
    fn update(&mut self, _done: u64, _total: u64) {}

    /// Waits for admission like a request would, but never gives up: a background job has no
    /// client to answer 503, so it retries when the server is busy.
    fn admit(&mut self, records: usize) -> Box<dyn std::any::Any> {
        let bytes = (records as u64).saturating_mul(self.per_record).min(self.cap);
        loop {
            match self.handle.block_on(self.admission.admit_reserving(bytes)) {
                Ok(permit) => {
                    set(&self.inner, &self.id, |r| r.state = Some(JobState::Running));
                    return Box::new(permit);
                }
                Err(e) => std::thread::sleep(Duration::from_secs(e.retry_after_s().unwrap_or(1).clamp(1, 5))),
            }
        }
    }

    fn counts(&mut self, report: &ImportReport) {
        set(&self.inner, &self.id, |r| apply(r, report));
    }
}
