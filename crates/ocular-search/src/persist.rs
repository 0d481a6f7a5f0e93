//! Saved compact indexes: what lets a large catalog search within seconds of start, by mapping
//! the index saved at the previous start instead of re-encoding every stored vector.
//!
//! A directory (by default `<data dir>/index`) holds, per space and shard, the vector file the
//! index writes its f32 rows to and a snapshot of its codes (`ocular_index::CompactIndex::save`).
//! A snapshot is keyed to the store's state: the space's model and the store's change cursor
//! (the sequence of the newest vector change, which triggers bump in the same transaction as
//! every vector write, whichever process makes it) taken *before* the load that built it. At the
//! next start the snapshot opens only when the cursor has not moved since, so any write after
//! the load (this process's, another's, one applied by `follow`) makes it stale and the space is
//! rebuilt from the store: a snapshot never serves a catalog that changed behind it. After the
//! cursor the row count is compared with the store's (a restored backup can reach an old cursor
//! again with other rows), and the files themselves are checksummed (`ocular_index` refuses a
//! truncated or damaged snapshot or vector file).
//!
//! The files are one process's: the directory is locked (`flock`) while a catalog uses it, and a
//! second process (a CLI command beside a server) falls back to unnamed files in `TMPDIR`.
//! Before a rebuild writes into a space's vector files, its snapshots are deleted (and the
//! deletion synced), so a crash midway leaves nothing that names half-written rows.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::embed::SpaceModel;

/// A locked index directory (see the module docs).
pub struct IndexDir {
    path: PathBuf,
    /// Held for the catalog's life; the lock goes with the descriptor.
    _lock: File,
}

impl IndexDir {
    /// Creates and locks `path`; `Ok(None)` when another process holds it.
    pub fn lock(path: &Path) -> std::io::Result<Option<Self>> {
        std::fs::create_dir_all(path)?;
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(Self { path: path.to_path_buf(), _lock: lock })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    pub(crate) fn snapshot(&self, space: &str, shard: usize) -> PathBuf {
        self.path.join(format!("{space}.{shard}.snap"))
    }

    pub(crate) fn vectors(&self, space: &str, shard: usize) -> PathBuf {
        self.path.join(format!("{space}.{shard}.f32"))
    }

    /// Deletes every file of `space`: snapshots first (synced), then vector files and leftovers
    /// of an interrupted save or of another shard count.
    pub(crate) fn clear(&self, space: &str) -> std::io::Result<()> {
        let prefix = format!("{space}.");
        let mut others = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !name.starts_with(&prefix) {
                continue;
            }
            if name.ends_with(".snap") {
                ocular_index::remove_snapshot(&path)?;
            } else {
                others.push(path);
            }
        }
        for path in others {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The key a space's snapshot is saved and opened under.
pub(crate) fn key(model: &SpaceModel, cursor: u64) -> Vec<u8> {
    // `ids=`: what an index id means (module `photos`); a snapshot saved under another scheme
    // (the first one of several photos interleaved the photo number into the key's bits) must
    // not be read with this one, and is rebuilt.
    format!(
        "model={}\ndim={}\ncursor={cursor}\nids=key, further photos key|photo<<28 (photo bits {})",
        model.model,
        model.dim,
        crate::photos::PHOTO_BITS
    )
    .into_bytes()
}
