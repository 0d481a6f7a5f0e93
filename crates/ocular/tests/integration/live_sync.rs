//! Two processes on one SQLite file: `ocular serve` keeps vectors in memory, and `ocular
//! import` (then a plain store handle in this test process) writes the same database. The
//! server's photo searches must find imported products and stop finding deleted ones without a
//! restart (the change feed, ocular-search's `follow`). Text search alone would not prove it:
//! full-text matches are read from the database on every query.
//!
//! Needs the installed models (`ocular models fetch`); skips otherwise unless
//! `OCULAR_REQUIRE_MODELS` is set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocular_store::Location;

use crate::replicas::{first_result_id, free_port, http, multipart};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .arg("serve")
        .env("OCULAR_PORT", port.to_string())
        .env("OCULAR_DATA_DIR", data)
        .env("OCULAR_MODELS_DIR", root().join("models"))
        .env("OCULAR_MODELS", "efficientnet-lite0,minilm")
        .env_remove("DATABASE_URL")
        .env_remove("OCULAR_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ocular serve");
    Server(child)
}

fn wait_ready(port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/health/ready", "text/plain", b"").0 == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("ocular serve on port {port} never became ready");
}

/// The id of the best photo match for `photo` on the server.
fn best_photo_match(port: u16, photo: &[u8]) -> Option<String> {
    let (ct, body) = multipart(&[("top_k", "1"), ("threshold", "0")], photo);
    let (status, resp) = http(port, "POST", "/api/v1/search", &ct, &body);
    assert_eq!(status, 200, "{resp}");
    first_result_id(&resp)
}

/// Polls until `done` holds, returning how long it took. The bound only stops a broken
/// follower from hanging the suite; the time taken is printed, not asserted (a loaded CI
/// machine is not a benchmark).
fn eventually(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if done() {
            let took = started.elapsed();
            eprintln!("live sync: {what} after {} ms", took.as_millis());
            return took;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not seen by the running server within 60 s");
}

#[test]
fn an_import_by_another_process_is_searched_by_the_running_server() {
    let manifest = root().join("models/efficientnet-lite0/manifest.json");
    let installed = std::fs::metadata(&manifest).map_err(|e| format!("{}: {e}", manifest.display()));
    let Some(_) = ocular_test_support::Need::Models.available(installed) else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _server = serve(data.path(), port);
    wait_ready(port);
    let query = std::fs::read(root().join("models/photos/motorcycle_right.png")).expect("photo");
    assert_eq!(best_photo_match(port, &query), None, "an empty catalog finds nothing");

    // A second process imports the demo catalog into the server's database.
    let import = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .args(["--data-dir", data.path().to_str().unwrap(), "--models-dir", root().join("models").to_str().unwrap()])
        .args(["import", root().join("demo/catalog.jsonl").to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .env_remove("OCULAR_DATABASE_URL")
        .env("OCULAR_LOG", "warn")
        .output()
        .expect("ocular import runs");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    eventually("imported product found by photo", || {
        best_photo_match(port, &query).as_deref() == Some("dirt-bike-250")
    });

    // Another writer (this test process: a connection of its own) deletes it.
    let store = ocular_store::open(&Location::Sqlite(data.path().join("ocular.db")), false).expect("store");
    store.delete_product("dirt-bike-250").expect("delete");
    eventually("deleted product gone from photo search", || {
        best_photo_match(port, &query).as_deref() != Some("dirt-bike-250")
    });
    // The product routes agree with the search: the server reads the same file.
    assert_eq!(http(port, "GET", "/api/v1/products/dirt-bike-250", "text/plain", b"").0, 404);
}
