//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! ocular links ONNX Runtime dynamically (`ort`'s `load-dynamic`): the library comes from the
//! `onnxruntime` wheel that `ocular models fetch` unpacks into the models directory, so a build
//! never downloads anything and a missing library is a clear error at the moment a model is
//! first needed, not a panic and not a start-up cost for admin commands.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

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
}

static RUNTIME: OnceLock<OrtRuntime> = OnceLock::new();
static INIT: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

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
        let builder = ort::init_from(&library).map_err(|e| load_err(e.to_string()))?;
        let environment = builder.with_name("ocular").build().map_err(|e| load_err(e.to_string()))?;
        tracing::info!(ort.library = %library.display(), "ONNX Runtime loaded");
        Ok(RUNTIME.get_or_init(|| OrtRuntime { library, environment }))
    }

    /// The runtime if some model already loaded it; never loads anything.
    pub fn loaded() -> Option<&'static OrtRuntime> {
        RUNTIME.get()
    }
}
