//! Test helpers: a models directory holding the committed fixture model.

use std::path::{Path, PathBuf};

use ocular_models::session::SessionOptions;
use ocular_models::{RegistryOptions, runtime};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, `OCULAR_ORT_LIBRARY` or `./models/onnxruntime`
/// (where `ocular models fetch` puts it). Every test here runs a model, so they fail, not skip,
/// without it (`ocular_test_support::Need::require`).
pub fn ort_library() -> PathBuf {
    let explicit = std::env::var_os("OCULAR_ORT_LIBRARY").map(PathBuf::from);
    let models =
        std::env::var_os("OCULAR_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("models"));
    ocular_test_support::Need::Models.require(runtime::locate(explicit.as_deref(), &models))
}

/// A fresh models directory with a copy of the fixture model.
pub fn models_dir_with_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = workspace_root().join("fixtures/models/fixture");
    let dst = dir.path().join("fixture");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["model.onnx", "manifest.json"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy fixture");
    }
    dir
}

pub fn options(models_dir: &Path) -> RegistryOptions {
    RegistryOptions {
        models_dir: models_dir.to_path_buf(),
        ort_library: Some(ort_library()),
        session: SessionOptions { intra_threads: 1 },
        enabled: None,
    }
}
