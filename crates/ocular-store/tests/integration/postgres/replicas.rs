//! Several processes on one database: each `PgStore` here has its own pool (its own
//! connections), as a replica on another machine would.

use std::collections::HashSet;
use std::time::Duration;

use ocular_index::VectorIndex;
use ocular_store::postgres::{PgIndexConfig, PgOptions, PgVectorIndex};
use ocular_store::{
    EmbeddingUpdate, ImportLine, Location, NewImport, NewProduct, ProductFilter, ProductPatch, ProductWrite, Store,
    StoreError,
};

use super::{Schema, admin, url};
use crate::conformance::{pair, product};

#[test]
fn replicas_racing_to_migrate_apply_each_step_once() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let applied: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| schema.pg(&PgOptions::default()).migrate().unwrap())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = applied.clone();
    sorted.sort();
    let versions: Vec<u32> = ocular_store::migrations::POSTGRES.iter().map(|m| m.version).collect();
    assert_eq!(sorted, versions, "every migration applied exactly once among the three");
    let store = schema.open(true);
    assert!(store.migrate().unwrap().is_empty());
    assert_eq!(store.schema_version().unwrap(), ocular_store::migrations::POSTGRES.last().unwrap().version);
    assert_eq!(store.backend(), "postgres");

    admin(&server, &format!("INSERT INTO {}.schema_migrations (version, name) VALUES (999, 'future')", schema.name()));
    assert!(matches!(store.migrate(), Err(StoreError::SchemaTooNew { found: 999, .. })));
}

#[test]
fn an_unmigrated_schema_reports_version_zero_and_bad_urls_fail_clearly() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    assert_eq!(schema.open(false).schema_version().unwrap(), 0);

    let Err(err) = ocular_store::open(&Location::Postgres("postgres://u:secret@127.0.0.1:1/db".into()), true) else {
        panic!("nothing listens on port 1")
    };
    assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
    assert!(!format!("{err}").contains("secret"), "the password never reaches a message: {err}");
    assert_eq!(err.fault(), ocular_store::Fault::Runtime);

    // This build has no TLS: a URL that requires it fails rather than connecting in clear.
    let sep = if server.contains('?') { '&' } else { '?' };
    let tls = Location::Postgres(format!("{server}{sep}sslmode=require"));
    assert!(matches!(ocular_store::open(&tls, false), Err(StoreError::PgConnect { .. })));
}

#[test]
fn a_write_through_one_replica_is_seen_by_the_other_at_once() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let (a, b) = (schema.open(true), schema.open(true));
    let pg_b = b.as_postgres().expect("a PostgreSQL store").clone();
    let index_b = PgVectorIndex::new(pg_b, "image", "effnet-lite0@1", 1280, PgIndexConfig::default()).unwrap();
    index_b.ensure_index().unwrap();

    let vectors = pair(7);
    let p = a.create_product(&product("mug", "Coffee mug", "White", Some("kitchen"), Some(9.0)), &vectors).unwrap();
    assert_eq!(b.get_product("mug").unwrap().unwrap(), p);
    assert_eq!(b.search_text("coffee", &ProductFilter::default(), 5).unwrap()[0].key, p.key);
    let hits = index_b.search(&vectors[0].vector, 1, None).unwrap();
    assert_eq!(hits[0].id, p.key.0, "B's vector search finds A's product without any sync step");
    assert!((hits[0].score - 1.0).abs() < 1e-5, "the same vector scores 1: {}", hits[0].score);

    let patch = ProductPatch { title: Some("Espresso mug".into()), ..Default::default() };
    b.patch_product("mug", &patch, EmbeddingUpdate::Keep).unwrap();
    assert_eq!(a.get_product("mug").unwrap().unwrap().title, "Espresso mug");

    a.delete_product("mug").unwrap();
    assert!(index_b.search(&vectors[0].vector, 1, None).unwrap().is_empty(), "deleted on A, gone on B");
    assert_eq!(index_b.len(), 0);
}

#[test]
fn creates_of_one_id_racing_on_two_replicas_give_one_product() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let stores = [schema.open(true), schema.open(true)];
    for round in 0..10 {
        let id = format!("race-{round}");
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = stores
                .iter()
                .map(|st| {
                    let id = id.clone();
                    s.spawn(move || st.create_product(&product(&id, "Racer", "", None, None), &pair(1)))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        let lost = outcomes.iter().filter(|o| matches!(o, Err(StoreError::Conflict(_)))).count();
        assert_eq!((won, lost), (1, 1), "{outcomes:?}");
    }
    // PUT of one new id from both: both succeed, one creates, one replaces.
    let created: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = stores
            .iter()
            .map(|st| s.spawn(move || st.put_product(&product("put", "P", "", None, None), EmbeddingUpdate::Keep)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap().created).collect()
    });
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
}

#[test]
fn import_chunks_are_split_between_processes_each_claimed_once() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let first = schema.open(true);
    let job = first
        .begin_import(&NewImport {
            source: "big.jsonl".into(),
            source_sha256: "c".repeat(64),
            total_lines: 300,
            chunk_lines: 2,
        })
        .unwrap();
    const WORKERS: usize = 4;
    let (claims, finishers): (Vec<Vec<u64>>, Vec<usize>) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (schema, job) = (&schema, job.id.clone());
                s.spawn(move || {
                    // Its own store: its own connections, as another machine would have.
                    let store = schema.open(false);
                    let again = store
                        .begin_import(&NewImport {
                            source: "big.jsonl".into(),
                            source_sha256: "c".repeat(64),
                            total_lines: 300,
                            chunk_lines: 2,
                        })
                        .unwrap();
                    assert_eq!(again.id, job, "every process joins the same job");
                    let (mut mine, mut finished) = (Vec::new(), 0);
                    while let Some(c) =
                        store.claim_import_chunk(&job, &format!("w{w}"), Duration::from_secs(600)).unwrap()
                    {
                        let lines: Vec<ImportLine> = c.lines().map(|l| ImportLine::ok(l, format!("p{l}"))).collect();
                        store.record_import_lines(&job, &lines).unwrap();
                        finished += usize::from(store.complete_import_chunk(&job, c.first_line).unwrap());
                        mine.push(c.first_line);
                    }
                    (mine, finished)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let all: Vec<u64> = claims.iter().flatten().copied().collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (150, 150), "every chunk claimed exactly once");
    let per_worker: Vec<usize> = claims.iter().map(Vec::len).collect();
    assert!(per_worker.iter().filter(|n| **n > 0).count() > 1, "the work was shared: {per_worker:?}");
    assert_eq!(finishers.iter().sum::<usize>(), 1, "exactly one completion finished the job");
    let j = first.import_job(&job.id).unwrap().unwrap();
    assert_eq!((j.lines_ok, j.lines_failed), (300, 0));
    assert!(j.finished_at.is_some());
}

#[test]
fn nul_characters_are_the_callers_error_and_spare_the_batch() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let s = schema.open(true);
    let nul = product("n", "Bad\0title", "", None, None);
    assert!(matches!(s.create_product(&nul, &[]), Err(StoreError::Invalid { .. })));
    let attrs = NewProduct { attributes: serde_json::json!({"k": "a\u{0}b"}), ..NewProduct::new("m", "M") };
    assert!(matches!(s.create_product(&attrs, &[]), Err(StoreError::Invalid { .. })));
    let good = product("g", "Good", "", None, None);
    let out = s
        .put_products(&[
            ProductWrite { product: &nul, embeddings: EmbeddingUpdate::Keep },
            ProductWrite { product: &good, embeddings: EmbeddingUpdate::Keep },
        ])
        .unwrap();
    assert!(matches!(out[0], Err(StoreError::Invalid { .. })) && out[1].is_ok());
    assert!(s.get_product("g").unwrap().is_some());
    assert_eq!(s.get_product("a\0b").unwrap_err().fault(), ocular_store::Fault::Input);
}

#[test]
fn the_store_works_from_async_code_and_drops_there() {
    // `ocular serve` opens the store and answers readiness on runtime threads: a driver that
    // nests a runtime would panic here.
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let store: std::sync::Arc<dyn Store> = schema.open(true);
        store.ping().unwrap();
        store.create_product(&product("a", "Async", "", None, None), &[]).unwrap();
        let from_task = tokio::spawn({
            let store = store.clone();
            async move { store.get_product("a").unwrap().is_some() }
        });
        assert!(from_task.await.unwrap());
        drop(store);
    });
}

#[test]
fn conditional_replaces_racing_on_two_replicas_lose_no_update() {
    // Finding #11 of issue 16: both replicas read version v, compute a change from it and
    // write. Exactly one write may land; the other must learn that v is gone (never overwrite
    // the winner's change with one computed from v).
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let stores = [schema.open(true), schema.open(true)];
    stores[0].create_product(&product("shared", "v0", "", None, None), &pair(1)).unwrap();
    for round in 0..10 {
        let read = stores[0].get_product("shared").unwrap().unwrap();
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, st)| {
                    let mut next = read.to_new();
                    next.title = format!("round {round} by replica {i}");
                    let version = read.updated_at;
                    s.spawn(move || st.replace_product_if_unchanged(&next, EmbeddingUpdate::Keep, version))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        let stale = outcomes.iter().filter(|o| matches!(o, Err(StoreError::Stale(_)))).count();
        assert_eq!((winners.len(), stale), (1, 1), "round {round}: {outcomes:?}");
        let stored = stores[1].get_product("shared").unwrap().unwrap();
        assert_eq!(stored, winners[0].product, "the stored product is the winner's, whole");
        assert!(stored.updated_at > read.updated_at);
    }
}
