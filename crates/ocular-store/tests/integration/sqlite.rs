//! The SQLite backend: the conformance suite in memory and on a file, and what only a file
//! shows: persistence across reopen, two handles on one database (two processes), and that a
//! failure in the middle of a product write leaves nothing behind.

use std::ops::{ControlFlow, Deref};
use std::path::Path;
use std::sync::Arc;

use ocular_store::sqlite::SqliteStore;
use ocular_store::{
    Analysis, CatalogStore, EmbeddingUpdate, ImportLine, Location, NewImport, ProductFilter, Store, StoreError,
};
use serde_json::json;

use crate::conformance::{bits, conformance_tests, pair, product};

/// A migrated store and the directory its file lives in (removed on drop).
pub struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl Deref for Fixture {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

fn memory() -> Fixture {
    let store = SqliteStore::in_memory().unwrap();
    store.migrate().unwrap();
    Fixture { store: Arc::new(store), _dir: None }
}

fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ocular_store::open(&Location::Sqlite(dir.path().join("ocular.db")), true).unwrap();
    Fixture { store, _dir: Some(dir) }
}

mod in_memory {
    use super::*;
    conformance_tests!(memory());
}

mod on_file {
    use super::*;
    conformance_tests!(file());
}

fn open(path: &Path) -> Arc<dyn Store> {
    ocular_store::open(&Location::Sqlite(path.to_path_buf()), true).unwrap()
}

#[test]
fn everything_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/ocular.db");
    let (stored, analysis, job) = {
        let s = open(&path);
        let sha = s.put_image(b"jpeg bytes", "image/jpeg").unwrap();
        let mut new = product("p", "Coffee cup", "Ceramic", Some("kitchen"), Some(9.5));
        new.image_sha256 = Some(sha);
        let p = s.create_product(&new, &pair(1)).unwrap();
        let mut a = Analysis::new(json!({"age": 30}), json!({"p": [0.5, 0.5]}), json!({"total": 3.0}));
        a.heatmap_jpeg = Some(vec![1, 2, 3]);
        s.insert_analysis(&a).unwrap();
        let job = s
            .begin_import(&NewImport {
                source: "f".into(),
                source_sha256: "a".repeat(64),
                total_lines: 3,
                chunk_lines: 2,
            })
            .unwrap();
        s.record_import_lines(&job.id, &[ImportLine::ok(1, "p")]).unwrap();
        (p, a, job)
    };
    let s = open(&path);
    assert_eq!(s.schema_version().unwrap(), ocular_store::migrations::SQLITE.last().unwrap().version);
    assert_eq!(s.get_product("p").unwrap().unwrap(), stored);
    let vectors = s.embeddings_of(stored.key).unwrap();
    assert_eq!(bits(&vectors[0].vector), bits(&pair(1)[0].vector));
    assert_eq!(s.get_image(stored.image_sha256.as_deref().unwrap()).unwrap().unwrap().bytes, b"jpeg bytes");
    assert_eq!(s.search_text("coffee", &ProductFilter::default(), 5).unwrap()[0].key, stored.key);
    assert_eq!(s.get_analysis(&analysis.id).unwrap().unwrap(), analysis);
    assert_eq!(
        s.begin_import(&NewImport {
            source: "f".into(),
            source_sha256: "a".repeat(64),
            total_lines: 3,
            chunk_lines: 2
        })
        .unwrap()
        .id,
        job.id
    );
    assert_eq!(s.import_lines(&job.id, 1..3).unwrap(), [ImportLine::ok(1, "p")]);
    // A new product after reopen still gets a fresh key.
    assert!(s.create_product(&product("q", "Q", "", None, None), &[]).unwrap().key > stored.key);
}

#[test]
fn two_handles_on_one_file_see_each_other() {
    // Two handles are what a server and an `ocular import` next to it hold.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocular.db");
    let (a, b) = (open(&path), open(&path));
    let p = a.create_product(&product("p", "Written by a", "", None, None), &pair(1)).unwrap();
    assert_eq!(b.get_product("p").unwrap().unwrap(), p);
    assert!(matches!(b.create_product(&product("p", "Again", "", None, None), &[]), Err(StoreError::Conflict(_))));
    b.delete_product("p").unwrap();
    assert_eq!(a.get_product("p").unwrap(), None);

    let job = a
        .begin_import(&NewImport {
            source: "f".into(),
            source_sha256: "b".repeat(64),
            total_lines: 100,
            chunk_lines: 1,
        })
        .unwrap();
    let claims = std::thread::scope(|scope| {
        let hs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|s| {
                let job = job.id.clone();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(c) = s.claim_import_chunk(&job, "w", std::time::Duration::from_secs(60)).unwrap() {
                        s.complete_import_chunk(&job, c.first_line).unwrap();
                        mine.push(c.first_line);
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    let mut sorted = claims.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=100).collect::<Vec<_>>(), "each chunk claimed once across both handles");
}

#[test]
fn a_failure_mid_write_leaves_nothing() {
    let store = SqliteStore::in_memory().unwrap();
    store.migrate().unwrap();
    // A trigger that fails the text-vector insert stands in for a crash or a full disk after
    // the product row and its image vector are written.
    store
        .with(|c| {
            c.execute_batch(
                "CREATE TRIGGER fail_text BEFORE INSERT ON product_embeddings WHEN new.space = 'text'
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )?;
            Ok(())
        })
        .unwrap();
    let err = store.create_product(&product("p", "P", "", None, None), &pair(1)).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    assert_eq!(err.fault(), ocular_store::Fault::Runtime);
    assert_eq!(store.get_product("p").unwrap(), None, "no product without its features");
    assert_eq!(store.for_each_embedding("image", &mut |_| ControlFlow::Continue(())).unwrap(), 0);
    assert!(store.search_text("P", &ProductFilter::default(), 5).unwrap().is_empty());

    // In a batch the database error aborts everything, valid items included.
    let ok = product("ok", "Fine", "", None, None);
    let bad = product("bad", "Fails", "", None, None);
    let (e1, e2) = (pair(2), pair(3));
    let batch = [
        ocular_store::ProductWrite { product: &ok, embeddings: EmbeddingUpdate::Replace(&e1[..1]) },
        ocular_store::ProductWrite { product: &bad, embeddings: EmbeddingUpdate::Replace(&e2) },
    ];
    assert!(store.put_products(&batch).is_err());
    assert_eq!(store.get_product("ok").unwrap(), None);
}

#[test]
fn migrating_a_version_1_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let old = SqliteStore::open(&path).unwrap();
        // What the released version 1 created, by hand.
        old.with(|c| {
            c.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 'initial', 'then');
                 CREATE TABLE ocular_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO ocular_settings VALUES ('k', 'v');",
            )?;
            Ok(())
        })
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let versions: Vec<u32> = ocular_store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(s.migrate().unwrap(), versions[1..]);
    let v: String =
        s.with(|c| Ok(c.query_row("SELECT value FROM ocular_settings WHERE key = 'k'", [], |r| r.get(0))?)).unwrap();
    assert_eq!(v, "v");
    s.create_product(&product("p", "P", "", None, None), &[]).unwrap();
}

#[test]
fn two_processes_migrating_at_once_apply_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let (a, b) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| a.migrate().unwrap());
        let hb = s.spawn(|| b.migrate().unwrap());
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let mut all = [ra, rb].concat();
    all.sort();
    let versions: Vec<u32> = ocular_store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(all, versions, "every migration applied exactly once between the two");
}

#[test]
fn a_long_read_blocks_neither_writes_nor_other_reads() {
    let fixture = file();
    let s: &dyn Store = &*fixture;
    for i in 0..3 {
        s.create_product(&product(&format!("p{i}"), "P", "", None, None), &pair(i)).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let mut started = false;
        let visited = s
            .for_each_embedding("image", &mut |_| {
                if !started {
                    started = true;
                    // While this stream holds a reader, another thread writes and reads.
                    let tx = tx.clone();
                    scope.spawn(move || {
                        s.create_product(&product("during", "Written mid-stream", "", None, None), &[]).unwrap();
                        let seen = s.get_product("during").unwrap().is_some();
                        tx.send(seen).unwrap();
                    });
                    let seen = rx.recv_timeout(std::time::Duration::from_secs(10));
                    assert_eq!(seen, Ok(true), "the write and the read finished while the stream was open");
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(visited, 3, "the stream reads its own snapshot");
    });
}

/// A deleted analysis photo is gone from the disk, not only from the table: neither the
/// database file nor its write-ahead log still holds its bytes (issue 16).
#[test]
fn deleted_health_photos_leave_no_bytes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocular.db");
    let marker = b"OCULAR-TEST-PHOTO-BYTES-7f3a9c";
    let photo: Vec<u8> = marker.iter().copied().cycle().take(64 * 1024).collect();
    let s = open(&path);
    let mut a = Analysis::new(json!({}), json!({}), json!({}));
    a.thumbnail_jpeg = Some(photo);
    s.insert_analysis(&a).unwrap();
    let on_disk = || {
        ["ocular.db", "ocular.db-wal"]
            .iter()
            .any(|f| std::fs::read(dir.path().join(f)).unwrap_or_default().windows(marker.len()).any(|w| w == marker))
    };
    assert!(on_disk(), "the photo was written (the test would prove nothing otherwise)");
    s.delete_analysis(&a.id).unwrap();
    assert!(!on_disk(), "the deleted photo is still readable in the database or its WAL");
}
