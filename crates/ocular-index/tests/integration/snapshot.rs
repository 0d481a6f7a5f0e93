//! Saving a compact index and opening it again: the same answers as the index that was saved
//! (and so as a fresh build), and every way the files can be wrong (other key, other settings,
//! truncated or flipped snapshot, vector file truncated, changed or gone) is refused, never
//! searched.

use std::path::{Path, PathBuf};

use ocular_index::{CompactConfig, CompactIndex, SnapshotError, VectorIndex, remove_snapshot, train_centroids};

use crate::catalogs::Catalog;

const DIM: usize = 96;
/// Added to an id to put it above the dense table's limit (2^28).
const FAR: u64 = 5 << 28;

struct Saved {
    _dir: tempfile::TempDir,
    snapshot: PathBuf,
    vectors: PathBuf,
    len: usize,
    queries: Vec<Vec<f32>>,
    answers: Vec<Vec<(u64, f32)>>,
}

fn config(vectors: &Path) -> CompactConfig {
    CompactConfig::new(DIM).id_stride(2).vectors(vectors)
}

/// An index over a clustered catalog (ids ≡ 1 mod 2, a shard's), with a few removals and
/// overwrites, saved under key `v1`; and its answers to a few queries.
fn saved() -> Saved {
    let dir = tempfile::tempdir().unwrap();
    let (snapshot, vectors) = (dir.path().join("image.0.snap"), dir.path().join("image.0.f32"));
    let mut catalog = Catalog::clustered(DIM, 3000, 20, 7);
    let sample: Vec<Vec<f32>> = (0..256).map(|i| catalog.row(i)).collect();
    let index = CompactIndex::new(config(&vectors).centroids(train_centroids(DIM, &sample, 8, 4))).unwrap();
    for i in 0..3000 {
        index.upsert(2 * i as u64 + 1, &catalog.row(i)).unwrap();
    }
    for i in (0..3000).step_by(13) {
        assert!(index.remove(2 * i as u64 + 1));
    }
    for i in (5..3000).step_by(17) {
        index.upsert(2 * i as u64 + 1, &catalog.row(3000 - i)).unwrap();
    }
    // Ids above the dense table's limit (further photos), kept in the overflow map: some
    // overwritten, some removed.
    for i in (0..3000).step_by(9) {
        index.upsert(FAR | (2 * i as u64 + 1), &catalog.row(2999 - i)).unwrap();
    }
    for i in (0..3000).step_by(27) {
        index.upsert(FAR | (2 * i as u64 + 1), &catalog.row(i)).unwrap();
    }
    for i in (0..3000).step_by(45) {
        assert!(index.remove(FAR | (2 * i as u64 + 1)));
    }
    let queries: Vec<Vec<f32>> = (0..12).map(|i| catalog.query(i)).collect();
    let answers = queries.iter().map(|q| answer(&index, q)).collect();
    index.save(&snapshot, b"v1").unwrap();
    Saved { _dir: dir, snapshot, vectors, len: index.len(), queries, answers }
}

fn answer(index: &CompactIndex, q: &[f32]) -> Vec<(u64, f32)> {
    let odd_thirds = |id: u64| id % 3 == 1;
    let mut out: Vec<(u64, f32)> = index.search(q, 10, None).unwrap().into_iter().map(|h| (h.id, h.score)).collect();
    out.extend(index.search(q, 5, Some(&odd_thirds)).unwrap().into_iter().map(|h| (h.id, h.score)));
    out
}

fn open(s: &Saved, key: &[u8]) -> Result<CompactIndex, SnapshotError> {
    CompactIndex::open(config(&s.vectors), &s.snapshot, key)
}

#[test]
fn an_opened_index_answers_like_the_saved_one_and_keeps_working() {
    let s = saved();
    let index = open(&s, b"v1").unwrap();
    assert_eq!(index.len(), s.len);
    for (q, want) in s.queries.iter().zip(&s.answers) {
        assert_eq!(&answer(&index, q), want);
    }
    // Writes after opening land in the same vector file and codes.
    index.upsert(6001, &s.queries[0]).unwrap();
    assert_eq!(index.search(&s.queries[0], 1, None).unwrap()[0].id, 6001);
    assert!(index.remove(6001));
    // The overflow ids came back: each live one is found, removable once, and a removed one
    // stays gone.
    let far = |id: u64| id >= FAR;
    let live = index.search(&s.queries[0], s.len, Some(&far)).unwrap();
    assert_eq!(live.len(), (0..3000).step_by(9).filter(|i| i % 45 != 0).count());
    assert!(!index.remove(FAR | 1), "removed before saving");
    assert!(index.remove(FAR | 19));
    assert!(!index.remove(FAR | 19));
    index.upsert(FAR | 19, &s.queries[1]).unwrap();
    assert_eq!(index.search(&s.queries[1], 1, Some(&far)).unwrap()[0].id, FAR | 19);
}

#[test]
fn stale_or_damaged_files_are_refused() {
    let s = saved();
    assert!(matches!(open(&s, b"v2"), Err(SnapshotError::Stale(_))), "another key");
    let other_bits = CompactIndex::open(config(&s.vectors).bits(64), &s.snapshot, b"v1");
    assert!(matches!(other_bits, Err(SnapshotError::Stale("bits"))));
    let other_stride = CompactIndex::open(config(&s.vectors).id_stride(3), &s.snapshot, b"v1");
    assert!(matches!(other_stride, Err(SnapshotError::Stale("stride"))));

    let bytes = std::fs::read(&s.snapshot).unwrap();
    for damage in [Damage::Truncate(bytes.len() / 2), Damage::Truncate(3), Damage::Flip(bytes.len() / 3)] {
        damage.apply(&s.snapshot, &bytes);
        assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt(_))), "{damage:?} of the snapshot");
    }
    std::fs::write(&s.snapshot, &bytes).unwrap();
    assert!(open(&s, b"v1").is_ok());

    let vectors = std::fs::read(&s.vectors).unwrap();
    for damage in [Damage::Truncate(vectors.len() / 2), Damage::Flip(4 * DIM * 100 + 5)] {
        damage.apply(&s.vectors, &vectors);
        assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt(_))), "{damage:?} of the vector file");
    }
    // Opened without the vector check, the damage shows when the check runs; a write before
    // the check fails it too (the saved checksum no longer describes the file).
    Damage::Flip(4 * DIM * 7).apply(&s.vectors, &vectors);
    let unchecked = CompactIndex::open_unverified(config(&s.vectors), &s.snapshot, b"v1").unwrap();
    assert!(matches!(unchecked.verify_vectors(), Err(SnapshotError::Corrupt("vector file checksum"))));
    drop(unchecked);
    std::fs::write(&s.vectors, &vectors).unwrap();
    let unchecked = CompactIndex::open_unverified(config(&s.vectors), &s.snapshot, b"v1").unwrap();
    unchecked.upsert(6001, &s.queries[0]).unwrap();
    assert!(matches!(unchecked.verify_vectors(), Err(SnapshotError::Corrupt(_))));
    drop(unchecked);
    std::fs::write(&s.vectors, &vectors).unwrap();
    let checked = CompactIndex::open_unverified(config(&s.vectors), &s.snapshot, b"v1").unwrap();
    checked.verify_vectors().unwrap();
    checked.upsert(6001, &s.queries[0]).unwrap();
    checked.verify_vectors().unwrap();
    drop(checked);

    // The refinement codes beside the vector file are checked the same way.
    let fine = ocular_index::compact::fine_path(&s.vectors);
    let codes = std::fs::read(&fine).unwrap();
    Damage::Truncate(codes.len() / 2).apply(&fine, &codes);
    assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt(_))), "truncated refinement file");
    Damage::Flip(codes.len() / 3).apply(&fine, &codes);
    assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt("refinement file checksum"))));
    std::fs::remove_file(&fine).unwrap();
    assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt("refinement file missing"))));
    std::fs::write(&fine, &codes).unwrap();
    assert!(open(&s, b"v1").is_ok());

    std::fs::remove_file(&s.vectors).unwrap();
    assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Corrupt("vector file missing"))));

    remove_snapshot(&s.snapshot).unwrap();
    assert!(matches!(open(&s, b"v1"), Err(SnapshotError::Missing)));
    remove_snapshot(&s.snapshot).unwrap();
}

#[derive(Debug)]
enum Damage {
    Truncate(usize),
    Flip(usize),
}

impl Damage {
    fn apply(&self, path: &Path, original: &[u8]) {
        let mut bytes = original.to_vec();
        match *self {
            Damage::Truncate(n) => bytes.truncate(n),
            Damage::Flip(at) => bytes[at] ^= 0x10,
        }
        std::fs::write(path, bytes).unwrap();
    }
}
