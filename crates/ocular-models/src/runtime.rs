//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! ocular links ONNX Runtime dynamically (`ort`'s `load-dynamic`): the library comes from the
//! `onnxruntime` wheel that `ocular models fetch` unpacks into the models directory, so a build
//! never downloads anything and a missing library is a clear error at the moment a model is
//! first needed, not a panic and not a start-up cost for admin commands.
//!
//! One thread budget: a server calls [`share_threads`] before its first model loads, and every
//! session then runs on one intra-op pool of that many threads instead of a pool per session,
//! so an analysis's skin model and another request's image model running at the same moment
//! share the cores rather than each spawning a full set of threads on them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::environment::{Environment, GlobalThreadPoolOptions};

/// Folder under the models directory where `ocular models fetch` puts the library.
pub const ORT_SUBDIR: &str = "onnxruntime";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the ONNX Runtime library was not found (looked in: {}); run `ocular models fetch` \
         or set OCULAR_ORT_LIBRARY to libonnxruntime.so",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("cannot load the ONNX Runtime library {path}: {message}")]
    Load { path: PathBuf, message: String },
}

/// The process-wide ONNX Runtime: the library path it came from and its environment.
pub struct OrtRuntime {
    pub library: PathBuf,
    pub environment: Environment,
    /// Threads of the one intra-op pool all sessions share, when [`share_threads`] set it.
    pub shared_threads: Option<usize>,
}

static RUNTIME: OnceLock<OrtRuntime> = OnceLock::new();
static INIT: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
static SHARED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Makes every session of this process share one intra-op pool of `threads` threads (spinning
/// off). Takes effect when ONNX Runtime is first loaded; returns false when it already was
/// (its sessions then keep their own pools).
pub fn share_threads(threads: usize) -> bool {
    SHARED_THREADS.store(threads.max(1), Ordering::SeqCst);
    RUNTIME.get().is_none()
}

/// Where to look for the library, in order: the explicit setting, the `ORT_DYLIB_PATH`
/// variable that `ort` itself documents, then the models directory.
pub fn candidates(explicit: Option<&Path>, models_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    let dir = models_dir.join(ORT_SUBDIR);
    // The wheel names the file with its full version (libonnxruntime.so.1.31.1); take any.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")))
            .collect();
        found.sort();
        out.extend(found);
    }
    out.push(dir.join("libonnxruntime.so"));
    out
}

/// The first candidate that exists.
pub fn locate(explicit: Option<&Path>, models_dir: &Path) -> Result<PathBuf, RuntimeError> {
    let searched = candidates(explicit, models_dir);
    match searched.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(RuntimeError::NotFound { searched }),
    }
}

impl OrtRuntime {
    /// Loads the library on first call; later calls return the same runtime.
    pub fn get_or_init(explicit: Option<&Path>, models_dir: &Path) -> Result<&'static OrtRuntime, RuntimeError> {
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        // `ort::init_from` mutates global state; serialise first-time initialisation.
        let _guard = INIT.lock();
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        let library = locate(explicit, models_dir)?;
        let load_err = |message: String| RuntimeError::Load { path: library.clone(), message };
        let builder = ort::init_from(&library).map_err(|e| load_err(e.to_string()))?.with_name("ocular");
        let threads = SHARED_THREADS.load(Ordering::SeqCst);
        let (builder, shared_threads) = if threads > 0 {
            let pool = GlobalThreadPoolOptions::default()
                .with_intra_threads(threads)
                .and_then(|p| p.with_inter_threads(1))
                .and_then(|p| p.with_spin_control(false))
                .map_err(|e| load_err(e.to_string()))?;
            (builder.with_global_thread_pool(pool), Some(threads))
        } else {
            (builder, None)
        };
        let environment = builder.build().map_err(|e| load_err(e.to_string()))?;
        tracing::info!(ort.library = %library.display(), ort.shared_threads = ?shared_threads, "ONNX Runtime loaded");
        Ok(RUNTIME.get_or_init(|| OrtRuntime { library, environment, shared_threads }))
    }

    /// The runtime if some model already loaded it; never loads anything.
    pub fn loaded() -> Option<&'static OrtRuntime> {
        RUNTIME.get()
    }
}
