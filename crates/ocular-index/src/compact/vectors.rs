//! The full-precision side of the compact index: every row's unit vector as f32, in a file
//! that is written with `pwrite` and read through a read-only memory map.
//!
//! Why a mapped file and not the heap: rescoring reads a few dozen to a few thousand rows per
//! search, a vanishing fraction of a large catalog. In the page cache those bytes are memory
//! the kernel can drop under pressure (and re-read on the next fault) instead of anonymous
//! memory that a cgroup limit kills the process for. Writing with `pwrite` rather than through
//! the map keeps written pages out of the process's resident set until a search reads them.
//!
//! By default the file is created in a directory the caller chooses and unlinked at once, so it
//! is private to this index and disappears with it (even after a crash). A persisted index
//! (`snapshot.rs`) keeps it under a name instead, so the next start maps it rather than
//! re-encoding every vector from the store.
//!
//! The same type holds the second file of an index, its 4-bit refinement codes (`fine.rs`):
//! rows are fixed-size byte strings, read as f32 only by [`VectorFile::row`]. Both maps are
//! advised `MADV_RANDOM`: a search reads scattered rows, and the kernel's default read-around
//! (up to 128 KiB per fault) would fill the page cache with neighbours no search asked for,
//! which under a cgroup limit evicts the rows that are hot.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::Mmap;

/// Rows the file grows by at least (its length doubles beyond that).
const MIN_ROWS: usize = 1024;

pub(crate) struct VectorFile {
    file: File,
    /// Bytes per row.
    row_bytes: usize,
    /// Rows the file (and the map) can hold.
    capacity: usize,
    /// `None` while the file is empty (a zero-length map is an error on Linux).
    map: Option<Mmap>,
    /// Named (kept for a snapshot) rather than unlinked.
    named: bool,
}

impl VectorFile {
    /// An unlinked file in `dir` of rows of `row_bytes` bytes.
    pub(crate) fn create(dir: &Path, row_bytes: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut attempt = 0u32;
        loop {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let path = dir.join(format!(".ocular-vectors-{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(file) => {
                    std::fs::remove_file(&path)?;
                    return Ok(Self { file, row_bytes, capacity: 0, map: None, named: false });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// A named file at `path`, emptied: the vector file of an index that will be saved.
    pub(crate) fn create_named(path: &Path, row_bytes: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Self { file, row_bytes, capacity: 0, map: None, named: true })
    }

    /// The named file at `path` as it was saved; it must hold at least `rows` rows.
    pub(crate) fn open_named(path: &Path, row_bytes: usize, rows: usize) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let row_bytes = row_bytes as u64;
        let len = file.metadata()?.len();
        if len < rows as u64 * row_bytes {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "vector file shorter than its rows"));
        }
        let capacity = usize::try_from(len / row_bytes).unwrap_or(usize::MAX);
        // SAFETY: as in `write`: the caller holds the index directory's lock, so no other
        // process writes this file while it is mapped, and this struct never shrinks it.
        let map = if capacity == 0 { None } else { Some(random(unsafe { Mmap::map(&file)? })) };
        Ok(Self { file, row_bytes: row_bytes as usize, capacity, map, named: true })
    }

    pub(crate) fn is_named(&self) -> bool {
        self.named
    }

    /// Flushes written rows to disk (before a snapshot naming them is renamed into place).
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// CRC-32 of the first `rows` rows' bytes (fewer if the file is shorter). Read with
    /// `pread`, not through the map: touching every mapped page would count the whole file in
    /// the process's resident set until the kernel reclaims it.
    pub(crate) fn checksum(&self, rows: usize) -> std::io::Result<u32> {
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 4 << 20];
        let (mut at, end) = (0u64, (rows * self.row_bytes) as u64);
        while at < end {
            let want = buf.len().min((end - at) as usize);
            let n = self.file.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(hasher.finalize())
    }

    /// Writes `row`'s vector (f32 rows), growing the file when needed.
    pub(crate) fn write(&mut self, row: usize, vector: &[f32]) -> std::io::Result<()> {
        let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write_bytes(row, &bytes)
    }

    /// Writes `row`'s bytes (exactly `row_bytes`), growing the file (and re-mapping it) when
    /// needed.
    pub(crate) fn write_bytes(&mut self, row: usize, bytes: &[u8]) -> std::io::Result<()> {
        debug_assert_eq!(bytes.len(), self.row_bytes);
        if row >= self.capacity {
            let capacity = (row + 1).max(self.capacity * 2).max(MIN_ROWS);
            self.file.set_len((capacity * self.row_bytes) as u64)?;
            // SAFETY: the file is unlinked and owned by this struct, or named under a directory
            // lock its owner holds (`snapshot.rs`), so nothing outside it changes the bytes; this struct only writes while `&mut self` is held, i.e. while
            // no slice returned by `row` is alive, and never shrinks the file below the map.
            self.map = Some(random(unsafe { Mmap::map(&self.file)? }));
            self.capacity = capacity;
        }
        self.file.write_all_at(bytes, (row * self.row_bytes) as u64)
    }

    /// Copies row `from` to row `to` (used when the last row fills a removed one).
    pub(crate) fn copy(&mut self, from: usize, to: usize) -> std::io::Result<()> {
        let bytes = self.bytes(from).map(<[u8]>::to_vec);
        match bytes {
            Some(b) => self.write_bytes(to, &b),
            None => Ok(()),
        }
    }

    /// The bytes of `row`, if the file reaches it.
    pub(crate) fn bytes(&self, row: usize) -> Option<&[u8]> {
        self.map.as_ref()?.get(row * self.row_bytes..(row + 1) * self.row_bytes)
    }

    /// The vector of `row` (f32 rows), if written.
    pub(crate) fn row(&self, row: usize) -> Option<&[f32]> {
        let bytes = self.bytes(row)?;
        // The map is page-aligned and every row starts at a multiple of 4 bytes, so the cast
        // cannot fail; `align_to` checks anyway and a misaligned result reads as "not written".
        // SAFETY: every bit pattern is a valid f32.
        let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
        (head.is_empty() && tail.is_empty()).then_some(floats)
    }

    /// Bytes of the file (page cache, not anonymous memory).
    pub(crate) fn file_bytes(&self) -> usize {
        self.capacity * self.row_bytes
    }
}

/// `map` advised `MADV_RANDOM` (see the module docs); the advice is best effort.
fn random(map: Mmap) -> Mmap {
    let _ = map.advise(memmap2::Advice::Random);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_are_read_back_across_growth_and_copies() {
        let dir = std::env::temp_dir();
        let mut file = VectorFile::create(&dir, 12).unwrap();
        assert!(file.row(0).is_none());
        let v = |i: usize| [i as f32, -0.5, 0.25 * i as f32];
        for i in 0..3000 {
            file.write(i, &v(i)).unwrap();
        }
        assert!(file.file_bytes() >= 3000 * 6);
        assert_eq!(file.row(2999).unwrap(), v(2999));
        assert_eq!(file.row(7).unwrap(), v(7));
        file.copy(2999, 7).unwrap();
        assert_eq!(file.row(7).unwrap(), v(2999));
    }
}
