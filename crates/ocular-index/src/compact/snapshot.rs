//! Saving a [`CompactIndex`] and opening it again without re-encoding a vector: what lets a
//! million-product catalog search within seconds of start ("map, don't decode").
//!
//! A saved index is three files. The vector file (named, see [`CompactConfig::vectors`]) is the
//! one the index wrote its f32 rows to, and the refinement file beside it
//! ([`super::fine_path`]) holds its 4-bit codes; both are mapped again as they are. The snapshot file holds
//! everything else: the settings the codes depend on (dimension, bits, projection seed, id
//! stride), the centroids, every row's code and id, the vector file's CRC-32 over its rows, a
//! caller's key, and a CRC-32 of all of it. [`CompactIndex::open`] refuses a snapshot whose
//! key or settings differ ([`SnapshotError::Stale`]) or whose bytes do not check
//! ([`SnapshotError::Corrupt`]: truncated, flipped, a vector file shorter than its rows or with
//! other bytes), and the caller rebuilds from its source of truth. The key is how the caller
//! ties the snapshot to that truth (ocular: the store's change cursor), so an index is never
//! opened over data that changed since it was saved.
//!
//! Reading the snapshot is a copy into the segments (the codes are anonymous memory either
//! way); checking the vector file reads it once through the page cache, which is the part of
//! opening that grows with the catalog (8 GB of f32 at a million products for ocular's three
//! spaces) and the price of never rescoring from damaged bytes.
//!
//! The writer keeps the pair consistent: the vector file is synced before the snapshot is
//! written beside it and renamed into place, and a caller that rebuilds into the same vector
//! file must delete the snapshot first ([`remove_snapshot`]). The files are one process's: the
//! caller holds a lock on their directory while the index lives.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use half::f16;

use super::vectors::VectorFile;
use super::{CompactConfig, CompactIndex, EMPTY, Rows, SEGMENT_ROWS, Segment, Unverified, validate};
use crate::IndexError;

const MAGIC: &[u8; 8] = b"OCXSNAP\0";
/// Bumped whenever the layout or the meaning of a code changes: an older file is stale.
const FORMAT: u32 = 2;

/// Why a snapshot was not opened. Every case means "rebuild from the source".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("no saved index")]
    Missing,
    #[error("the saved index was made for other data or settings ({0} differs)")]
    Stale(&'static str),
    #[error("the saved index is damaged ({0})")]
    Corrupt(&'static str),
    #[error("the saved index could not be read")]
    Io(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] IndexError),
}

/// Deletes the snapshot at `path` (absent is fine): call it before writing into its vector
/// file again, so that a crash midway leaves no snapshot naming half-written rows.
pub fn remove_snapshot(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => sync_parent(path),
    }
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// A writer that checksums what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }

    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
}

impl CompactIndex {
    /// Saves the index to `path` under `key` (see the module docs). The index must have been
    /// built with a named vector file ([`CompactConfig::vectors`]). Writers wait meanwhile.
    pub fn save(&self, path: &Path, key: &[u8]) -> Result<(), IndexError> {
        let rows = self.rows.read();
        if !rows.vectors.is_named() {
            return Err(IndexError::InvalidConfig("only an index with a named vector file can be saved"));
        }
        let io = IndexError::Io;
        rows.vectors.sync().map_err(io)?;
        rows.fine.sync().map_err(io)?;
        let vectors_crc = rows.vectors.checksum(rows.len).map_err(io)?;
        let fine_crc = rows.fine.checksum(rows.len).map_err(io)?;
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(io)?;
        let mut out = Hashing { inner: BufWriter::new(file), hasher: crc32fast::Hasher::new() };
        self.write_body(&rows, key, [vectors_crc, fine_crc], &mut out).map_err(io)?;
        let crc = out.hasher.finalize();
        let mut inner = out.inner;
        inner.write_all(&crc.to_le_bytes()).map_err(io)?;
        let file = inner.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        sync_parent(path).map_err(io)
    }

    fn write_body<W: Write>(
        &self,
        rows: &Rows,
        key: &[u8],
        [vectors_crc, fine_crc]: [u32; 2],
        out: &mut Hashing<W>,
    ) -> std::io::Result<()> {
        out.put(MAGIC)?;
        out.u32(FORMAT)?;
        out.u32(key.len() as u32)?;
        out.put(key)?;
        for v in [self.dim, self.coder.projection.bits(), self.seed as usize, self.stride as usize] {
            out.u64(v as u64)?;
        }
        out.u32(self.coder.count() as u32)?;
        for v in &self.coder.centroids {
            out.put(&v.to_le_bytes())?;
        }
        out.u64(rows.len as u64)?;
        for s in &rows.segments {
            out.put(&s.codes)?;
        }
        for s in &rows.segments {
            out.put(&s.centroids)?;
        }
        for column in [column_factors, column_offsets, column_sigmas] {
            for s in &rows.segments {
                let bytes: Vec<u8> = column(s).iter().flat_map(|v| v.to_bits().to_le_bytes()).collect();
                out.put(&bytes)?;
            }
        }
        for s in &rows.segments {
            let bytes: Vec<u8> = s.ids.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.put(&bytes)?;
        }
        out.u32(vectors_crc)?;
        out.u32(fine_crc)
    }

    /// Opens the index saved at `path` under `key`, mapping the vector file named by
    /// `config.vectors`. `config` must carry the settings it was saved with (its centroids are
    /// ignored: the saved ones are used).
    pub fn open(config: CompactConfig, path: &Path, key: &[u8]) -> Result<Self, SnapshotError> {
        let index = Self::open_unverified(config, path, key)?;
        index.verify_vectors()?;
        Ok(index)
    }

    /// Like [`Self::open`], but leaves the vector file's checksum to [`Self::verify_vectors`]:
    /// reading every row is the part of opening that grows with the catalog (seconds at a
    /// million products), while everything else (settings, key, codes, the vector file's
    /// length) is checked here. Until verified, a damaged vector file would give wrong exact
    /// scores to the rows rescored from it; the caller decides whether to search meanwhile.
    pub fn open_unverified(config: CompactConfig, path: &Path, key: &[u8]) -> Result<Self, SnapshotError> {
        validate(&config)?;
        let vectors_path =
            config.vectors.clone().ok_or(IndexError::InvalidConfig("opening an index needs its vector file"))?;
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SnapshotError::Missing),
            Err(e) => return Err(SnapshotError::Io(e)),
        };
        if file.metadata().map_err(SnapshotError::Io)?.len() < 4 {
            return Err(SnapshotError::Corrupt("truncated"));
        }
        // Mapped, not read into a buffer: the codes are copied once, into the segments, so
        // opening needs no second copy of them in anonymous memory.
        // SAFETY: the caller holds the directory's lock, so no other process changes the file
        // while it is mapped; a change anyway fails the checksum (or, if made between the check
        // and the copy, is a concurrent writer that the lock rules out).
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(SnapshotError::Io)?;
        let body_len = bytes.len().checked_sub(4).ok_or(SnapshotError::Corrupt("truncated"))?;
        let (body, tail) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != tail {
            return Err(SnapshotError::Corrupt("checksum"));
        }
        let mut r = Reader(body);
        if r.take(8)? != MAGIC {
            return Err(SnapshotError::Corrupt("not a snapshot"));
        }
        if r.u32()? != FORMAT {
            return Err(SnapshotError::Stale("format"));
        }
        let key_len = r.u32()? as usize;
        if r.take(key_len)? != key {
            return Err(SnapshotError::Stale("source state"));
        }
        let (dim, bits) = (config.dim, config.bits);
        for (name, want) in
            [("dimension", dim as u64), ("bits", bits as u64), ("seed", config.seed), ("stride", config.id_stride)]
        {
            if r.u64()? != want {
                return Err(SnapshotError::Stale(name));
            }
        }
        let count = r.u32()? as usize;
        if count == 0 || count > 256 {
            return Err(SnapshotError::Corrupt("centroid count"));
        }
        let floats = r.f32s(count * dim)?;
        if floats.iter().any(|v| !v.is_finite()) {
            return Err(SnapshotError::Corrupt("centroids"));
        }
        let centroids: Vec<Vec<f32>> = floats.chunks_exact(dim).map(<[f32]>::to_vec).collect();
        let len = usize::try_from(r.u64()?).map_err(|_| SnapshotError::Corrupt("row count"))?;
        if len >= EMPTY as usize {
            return Err(SnapshotError::Corrupt("row count"));
        }
        let code_bytes = bits / 8;
        let codes = r.take(len.checked_mul(code_bytes).ok_or(SnapshotError::Corrupt("row count"))?)?;
        let assigned = r.take(len)?;
        if assigned.iter().any(|&j| j as usize >= count) {
            return Err(SnapshotError::Corrupt("centroid index"));
        }
        let (factors, offsets, sigmas) = (r.f16s(len)?, r.f16s(len)?, r.f16s(len)?);
        let ids = r.u32s(len)?;
        let vectors_crc = r.u32()?;
        let fine_crc = r.u32()?;
        if !r.0.is_empty() {
            return Err(SnapshotError::Corrupt("trailing bytes"));
        }
        let vectors = VectorFile::open_named(&vectors_path, dim * 4, len).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => SnapshotError::Corrupt("vector file shorter than its rows"),
            std::io::ErrorKind::NotFound => SnapshotError::Corrupt("vector file missing"),
            _ => SnapshotError::Io(e),
        })?;
        let fine = VectorFile::open_named(&super::fine_path(&vectors_path), super::fine::row_bytes(dim), len).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => SnapshotError::Corrupt("refinement file shorter than its rows"),
                std::io::ErrorKind::NotFound => SnapshotError::Corrupt("refinement file missing"),
                _ => SnapshotError::Io(e),
            },
        )?;
        let segments = (0..len.div_ceil(SEGMENT_ROWS))
            .map(|i| {
                let rows = i * SEGMENT_ROWS..((i + 1) * SEGMENT_ROWS).min(len);
                Segment {
                    codes: codes[rows.start * code_bytes..rows.end * code_bytes].to_vec(),
                    centroids: assigned[rows.clone()].to_vec(),
                    factors: factors[rows.clone()].to_vec(),
                    offsets: offsets[rows.clone()].to_vec(),
                    sigmas: sigmas[rows.clone()].to_vec(),
                    ids: ids[rows].to_vec(),
                }
            })
            .collect();
        let mut rows = Rows::new(&config, vectors, fine);
        // The table exactly as long as the largest dense id needs, as a build would leave it
        // without its growth slack.
        let cells = ids.iter().filter_map(|&id| rows.cell(id)).max().map_or(0, |c| c + 1);
        rows.table = vec![EMPTY; cells];
        for (slot, &id) in ids.iter().enumerate() {
            if !rows.set_slot(id, slot as u32) {
                return Err(SnapshotError::Corrupt("duplicate id"));
            }
        }
        rows.overflow.shrink_to_fit();
        (rows.segments, rows.len) = (segments, len);
        rows.unverified = Some(Unverified::Crc(vectors_crc, fine_crc));
        Ok(Self::from_parts(&config, &centroids, rows))
    }

    /// Checks the vector file of an index opened by [`Self::open_unverified`] against its saved
    /// checksum (a no-op once checked, and for an index that was built, not opened). Writers
    /// wait meanwhile; searches do not. A write before the check fails it: the saved checksum
    /// no longer describes the file, and the caller rebuilds.
    pub fn verify_vectors(&self) -> Result<(), SnapshotError> {
        let rows = self.rows.upgradable_read();
        let expected = match rows.unverified {
            None => return Ok(()),
            Some(Unverified::Written) => {
                return Err(SnapshotError::Corrupt("written before its vector file was checked"));
            }
            Some(Unverified::Crc(vectors, fine)) => (vectors, fine),
        };
        if rows.vectors.checksum(rows.len).map_err(SnapshotError::Io)? != expected.0 {
            return Err(SnapshotError::Corrupt("vector file checksum"));
        }
        if rows.fine.checksum(rows.len).map_err(SnapshotError::Io)? != expected.1 {
            return Err(SnapshotError::Corrupt("refinement file checksum"));
        }
        parking_lot::RwLockUpgradableReadGuard::upgrade(rows).unverified = None;
        Ok(())
    }
}

fn column_factors(s: &Segment) -> &[f16] {
    &s.factors
}

fn column_offsets(s: &Segment) -> &[f16] {
    &s.offsets
}

fn column_sigmas(s: &Segment) -> &[f16] {
    &s.sigmas
}

/// Reads little-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if n > self.0.len() {
            return Err(SnapshotError::Corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| SnapshotError::Corrupt("truncated"))?))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| SnapshotError::Corrupt("truncated"))?))
    }

    fn words<const N: usize>(&mut self, n: usize) -> Result<&'a [[u8; N]], SnapshotError> {
        let bytes = self.take(n.checked_mul(N).ok_or(SnapshotError::Corrupt("row count"))?)?;
        Ok(bytes.as_chunks::<N>().0)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, SnapshotError> {
        Ok(self.words::<4>(n)?.iter().map(|w| f32::from_le_bytes(*w)).collect())
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, SnapshotError> {
        Ok(self.words::<4>(n)?.iter().map(|w| u32::from_le_bytes(*w)).collect())
    }

    fn f16s(&mut self, n: usize) -> Result<Vec<f16>, SnapshotError> {
        Ok(self.words::<2>(n)?.iter().map(|w| f16::from_bits(u16::from_le_bytes(*w))).collect())
    }
}
