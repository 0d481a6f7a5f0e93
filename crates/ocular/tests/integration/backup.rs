//! `ocular backup` and `ocular restore` on real SQLite files, with a store handle writing
//! beside them as a server would, and a booby-trapped models folder (they never open a model).

use std::path::Path;

use ocular_store::types::ProductFilter;
use ocular_store::{Location, NewProduct, Store};

use crate::admin::{ocular, run_bounded, trapped_models_dir};

fn store(dir: &Path) -> std::sync::Arc<dyn Store> {
    ocular_store::open(&Location::Sqlite(dir.join("ocular.db")), true).expect("store")
}

fn run(data_dir: &Path, models: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = ocular();
    cmd.env("OCULAR_DATA_DIR", data_dir).env("OCULAR_MODELS_DIR", models).args(args);
    let (ok, out, _) = run_bounded(cmd);
    (ok, out)
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_fresh_data_dir_and_searches() {
    let models = trapped_models_dir();
    let (live, backups, fresh) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The "server": an open store whose writes sit in the WAL, not yet in the main file.
    let server = store(live.path());
    server.create_product(&NewProduct::new("p1", "red bicycle with a basket"), &[]).unwrap();
    server.create_product(&NewProduct::new("p2", "blue kettle"), &[]).unwrap();
    let dest = backups.path().join("ocular-backup.db");
    let (ok, out) = run(live.path(), models.path(), &["backup", dest.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("2 products"), "{out}");
    // Written after the backup: not in it.
    server.create_product(&NewProduct::new("p3", "green lamp"), &[]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "health data: owner only");
    }
    // A backup never overwrites.
    let (ok, out) = run(live.path(), models.path(), &["backup", dest.to_str().unwrap()]);
    assert!(!ok && out.contains("already exists"), "{out}");

    let (ok, out) = run(fresh.path(), models.path(), &["restore", dest.to_str().unwrap()]);
    assert!(ok, "{out}");
    let restored = store(fresh.path());
    assert_eq!(restored.get_product("p1").unwrap().unwrap().title, "red bicycle with a basket");
    assert!(restored.get_product("p3").unwrap().is_none(), "a write after the backup leaked into it");
    let hits = restored.search_text("bicycle", &ProductFilter::default(), 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(restored.get_product_by_key(hits[0].key).unwrap().unwrap().id, "p1");

    // Restoring over a live database needs --force; with it, the old WAL is not replayed.
    let (ok, out) = run(live.path(), models.path(), &["restore", dest.to_str().unwrap()]);
    assert!(!ok && out.contains("--force"), "{out}");
    drop(server);
    // A saved search index of the old catalog (issue 17) must not survive the restore.
    let saved_index = live.path().join("ocular.db.index");
    std::fs::create_dir_all(&saved_index).unwrap();
    std::fs::write(saved_index.join("image.0.snap"), b"old catalog").unwrap();
    let (ok, out) = run(live.path(), models.path(), &["restore", "--force", dest.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(!saved_index.exists(), "the old catalog's saved index survived a restore");
    let back = store(live.path());
    assert!(back.get_product("p2").unwrap().is_some() && back.get_product("p3").unwrap().is_none());
}

#[test]
fn restore_refuses_a_file_that_is_not_an_ocular_database() {
    let models = trapped_models_dir();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not SQLite").unwrap();
    let data = dir.path().join("data");
    let (ok, out) = run(&data, models.path(), &["restore", junk.to_str().unwrap()]);
    assert!(!ok && out.contains("not a readable ocular database"), "{out}");
    assert!(!data.join("ocular.db").exists(), "nothing installed");
}

#[test]
fn backup_of_a_postgres_deployment_points_to_pg_dump() {
    let models = trapped_models_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ocular();
    cmd.env("OCULAR_DATA_DIR", dir.path())
        .env("OCULAR_MODELS_DIR", models.path())
        .env("OCULAR_DATABASE_URL", "postgres://ocular@127.0.0.1:1/none")
        .args(["backup", dir.path().join("b.db").to_str().unwrap()]);
    let (ok, out, _) = run_bounded(cmd);
    assert!(!ok && out.contains("pg_dump"), "{out}");
}
