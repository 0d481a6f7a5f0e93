//! Graph files checked against the digest their manifest pins, before ONNX Runtime opens them.
//!
//! The skin, image and text models are built on this machine by `ocular models fetch` from
//! packages whose archives are pinned by SHA-256 in the source (`ocular-convert`), so their
//! graphs are ocular's own output. A CLIP tower is not: it is an ONNX file someone downloaded
//! from a URL they chose (`ocular models fetch clip`, `import-clip`), and an ONNX graph is code
//! for ONNX Runtime's parsers. Installing records its SHA-256 in `manifest.json`; loading
//! re-hashes the file and refuses it when it changed since (replaced on disk, truncated by a
//! full disk, swapped by someone with write access to the models folder). Hashing streams the
//! file (64 KiB at a time): ~0.3 s for the 90 MB int8 image tower, once per load.

use std::io::Read;
use std::path::Path;

use ocular_core::Manifest;
use sha2::{Digest, Sha256};

use crate::error::ModelError;

/// Checks the model's graph file (`manifest.onnx`) against its entry in `manifest.files`.
pub fn verify_graph(dir: &Path, manifest: &Manifest) -> Result<(), ModelError> {
    let path = dir.join(&manifest.onnx);
    let pinned = manifest.files.iter().find(|f| f.path == manifest.onnx).ok_or_else(|| ModelError::Invalid {
        model: manifest.name.clone(),
        reason: format!("manifest.json pins no SHA-256 for {}; install the model again", manifest.onnx),
    })?;
    let found = sha256_file(&path)?;
    if !found.eq_ignore_ascii_case(&pinned.sha256) {
        return Err(ModelError::Digest { path, expected: pinned.sha256.clone(), found });
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::File { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
