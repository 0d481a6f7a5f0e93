//! `ocular import`, `ocular search` and `ocular reindex` end to end on the demo catalog, with
//! the real models: the CLI shares the HTTP routes' code path, so this checks the wiring.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ocular(data: &Path, args: &[&str]) -> (bool, String, String) {
    let models = root().join("models");
    let out = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["--data-dir", data.to_str().unwrap(), "--models-dir", models.to_str().unwrap()])
        .args(args)
        .env_remove("OCULAR_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env("OCULAR_LOG", "warn")
        .output()
        .expect("ocular runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn import_search_and_reindex_from_the_shell() {
    let manifest = root().join("models/efficientnet-lite0/manifest.json");
    let installed = std::fs::metadata(&manifest).map_err(|e| format!("{}: {e}", manifest.display()));
    let Some(_) = ocular_test_support::Need::Models.available(installed) else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let catalog = root().join("demo/catalog.jsonl");
    let (ok, out, err) = ocular(data.path(), &["import", catalog.to_str().unwrap()]);
    assert!(ok && out.contains("21 written") && out.contains("0 failed"), "{out}\n{err}");
    assert!(err.contains("importing: 21/21"), "plain progress lines off a terminal: {err}");
    let (ok, out, _) = ocular(data.path(), &["import", catalog.to_str().unwrap()]);
    assert!(ok && out.contains("0 written, 21 unchanged"), "{out}");

    let query = root().join("models/photos/motorcycle_right.png");
    let (ok, out, err) = ocular(data.path(), &["search", "--image", query.to_str().unwrap(), "--top-k", "3", "--json"]);
    assert!(ok, "{err}");
    let body: serde_json::Value = serde_json::from_str(&out).expect("JSON as the API returns it");
    assert_eq!(body["results"][0]["product"]["id"], "dirt-bike-250");
    assert_eq!(body["results"].as_array().unwrap().len(), 3);

    let (ok, out, err) = ocular(data.path(), &["search", "--text", "a cup of coffee"]);
    assert!(ok, "{err}");
    assert!(out.lines().next().is_some_and(|l| l.contains("espresso-cup")), "{out}");

    let (ok, out, err) = ocular(data.path(), &["reindex"]);
    assert!(ok && out.contains("0 products"), "nothing to recompute: {out}\n{err}");
    let (ok, _, err) = ocular(data.path(), &["search", "--text", "x", "--image", query.to_str().unwrap()]);
    assert!(!ok && err.contains("cannot be used with"), "one query kind at a time: {err}");
}
