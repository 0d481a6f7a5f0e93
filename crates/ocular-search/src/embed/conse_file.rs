//! The ConSE prompt matrix kept on disk beside the text model, so a process starts without
//! running a thousand prompts through MiniLM (seconds of both cores, measured in
//! docs/BENCHMARKS.md, "Serving engine").
//!
//! The file name is a SHA-256 of everything the matrix is a function of that ocular can name:
//! the ConSE model id (both models' ids and T), the embedding size and every prompt in order
//! (class names and template). What it cannot name — the graph actually loaded (fp32 or int8),
//! a re-exported model keeping its version — is checked when the file is read: the first
//! prompt is embedded again and must match the stored row, otherwise the matrix is rebuilt and
//! the file replaced. A file that is missing, short, corrupt or unwritable (a read-only models
//! directory) only costs the rebuild, never an error.
//!
//! Format: `OCONSE1\n`, rows and dim as little-endian u32, then `rows × dim` little-endian f32.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::conse::PromptMatrix;

const MAGIC: &[u8; 8] = b"OCONSE1\n";

/// Largest difference allowed between the stored first row and a fresh embedding of it: far
/// above float rounding between a padded batch and a lone prompt (~1e-6), far below what
/// another graph or precision gives (int8 MiniLM differs by ~1e-2).
pub const ROW_TOLERANCE: f32 = 1e-3;

/// Where the matrix for `key`, `dim` and `prompts` is kept under `dir`.
pub fn path(dir: &Path, key: &str, dim: usize, prompts: &[String]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update((dim as u64).to_le_bytes());
    for p in prompts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    dir.join(format!("conse-{}.bin", &hex::encode(h.finalize())[..32]))
}

/// Reads a stored matrix of `rows × dim`, or `None` for anything else.
pub fn read(path: &Path, rows: usize, dim: usize) -> Option<PromptMatrix> {
    let bytes = std::fs::read(path).ok()?;
    let body = bytes.strip_prefix(MAGIC.as_slice())?;
    let (header, data) = body.split_at_checked(8)?;
    let n = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let d = u32::from_le_bytes(header[4..].try_into().ok()?) as usize;
    if (n, d) != (rows, dim) || data.len() != rows.checked_mul(dim)?.checked_mul(4)? {
        return None;
    }
    let values: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    values.iter().all(|v| v.is_finite()).then_some(PromptMatrix { dim, rows: values })
}

/// Writes `matrix` to `path` beside-and-rename, so a reader never sees half a file.
pub fn write(path: &Path, matrix: &PromptMatrix) -> std::io::Result<()> {
    let (rows, dim) = (matrix.classes(), matrix.dim);
    let too_big = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "matrix too large");
    let mut out = Vec::with_capacity(16 + matrix.rows.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32::try_from(rows).map_err(|_| too_big())?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(dim).map_err(|_| too_big())?.to_le_bytes());
    for v in &matrix.rows {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&out).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether `fresh` (the first prompt embedded now) matches the stored first row.
pub fn first_row_matches(matrix: &PromptMatrix, fresh: &[f32]) -> bool {
    fresh.len() == matrix.dim && matrix.rows.iter().zip(fresh).all(|(a, b)| (a - b).abs() <= ROW_TOLERANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| super::super::conse::prompt(n)).collect()
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("ocular-conse-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = prompts(&["cat", "dog", "tench"]);
        let file = path(&dir, "conse10:a@1+b@1", 2, &p);
        let m = PromptMatrix { dim: 2, rows: vec![0.6, 0.8, 1.0, 0.0, 0.0, -1.0] };
        write(&file, &m).expect("write");
        let back = read(&file, 3, 2).expect("read back");
        assert_eq!(back.rows, m.rows);
        // Another shape than asked for, or a truncated file: not used.
        assert!(read(&file, 4, 2).is_none());
        let bytes = std::fs::read(&file).expect("bytes");
        std::fs::write(&file, &bytes[..bytes.len() - 1]).expect("truncate");
        assert!(read(&file, 3, 2).is_none());
        // Every input of the name changes it.
        assert_ne!(file, path(&dir, "conse10:a@1+b@2", 2, &p));
        assert_ne!(file, path(&dir, "conse10:a@1+b@1", 3, &p));
        assert_ne!(file, path(&dir, "conse10:a@1+b@1", 2, &prompts(&["cat", "dog", "tenc"])));
        // The first-row check tells float rounding from another model.
        assert!(first_row_matches(&m, &[0.6000001, 0.7999999]));
        assert!(!first_row_matches(&m, &[0.61, 0.79]));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
