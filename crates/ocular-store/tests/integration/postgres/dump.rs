//! The PostgreSQL backup steps docs/DEPLOY.md gives, run for real: `pg_dump --format=custom`
//! of a catalog, `pg_restore` into a fresh database that has the `vector` extension, then the
//! restored catalog opened by ocular and read back (products, vectors, full-text search).
//!
//! The client tools come from the test server's installation (`scripts/pg-test-server.sh
//! bin`), else from `PATH`; the test schema alone is dumped, since the test database holds
//! every other test's schemas too.

use std::path::PathBuf;
use std::process::Command;

use ocular_store::{Embedding, Location, NewProduct, ProductFilter};

use super::{Schema, admin, url, with_schema};

fn tool(name: &str) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-test-server.sh");
    match Command::new("bash").arg(script).arg("bin").output() {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(name),
        _ => PathBuf::from(name),
    }
}

fn run(name: &str, args: &[&str]) {
    let out = Command::new(tool(name)).args(args).output().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `server` with another database name.
fn database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[test]
fn pg_dump_and_pg_restore_bring_a_catalog_back() {
    let Some(server) = url() else { return };
    let schema = Schema::new(&server);
    let store = schema.open(true);
    let vector = |x: f32| vec![Embedding::new("image", "m@1", vec![x, 1.0, 0.5])];
    let mut kettle = NewProduct::new("kettle", "Blue enamel kettle");
    kettle.price = Some(39.0);
    let key = store.create_product(&kettle, &vector(0.25)).unwrap().key;
    store.create_product(&NewProduct::new("lamp", "Green desk lamp"), &vector(0.75)).unwrap();
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("ocular.dump");
    let dump = dump.to_str().unwrap();
    run("pg_dump", &["--format=custom", &format!("--schema={}", schema.name()), &format!("--file={dump}"), &server]);

    let restored_db = format!("ocular_restore_{}", uuid::Uuid::new_v4().simple());
    admin(&server, &format!("CREATE DATABASE {restored_db}"));
    let target = database(&server, &restored_db);
    let result = std::panic::catch_unwind(|| {
        // The extension first, as the docs say: the dump of one schema does not carry it.
        admin(&target, "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector SCHEMA public");
        run("pg_restore", &["--no-owner", &format!("--dbname={target}"), dump]);
        let restored = ocular_store::open(&Location::Postgres(with_schema(&target, schema.name())), true).unwrap();
        let back = restored.get_product("kettle").unwrap().expect("restored product");
        assert_eq!((back.key, back.title.as_str(), back.price), (key, "Blue enamel kettle", Some(39.0)));
        assert_eq!(restored.embeddings_of(key).unwrap(), vector(0.25), "vectors bit for bit");
        let hits = restored.search_text("lamp", &ProductFilter::default(), 10).unwrap();
        assert_eq!(hits.len(), 1, "the full-text index came back too");
        // Keys go on from where they were: a new product does not reuse one.
        let next = restored.create_product(&NewProduct::new("mug", "Mug"), &[]).unwrap().key;
        assert!(next.0 > key.0 + 1, "{next:?}");
    });
    admin(&server, &format!("DROP DATABASE IF EXISTS {restored_db} WITH (FORCE)"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
