//! Two `ocular serve` replicas on one PostgreSQL database share nothing else: a product
//! written through one is found by a search on the other at once, and a deletion too.
//!
//! Needs PostgreSQL with pgvector: `OCULAR_TEST_DATABASE_URL`, or the server started by
//! `scripts/pg-test-server.sh start`. Skips with a message otherwise, unless
//! `OCULAR_REQUIRE_POSTGRES` is set (CI sets it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server's URL; `None` (after saying why) when there is none and none is required.
fn database_url() -> Option<String> {
    ocular_test_support::postgres_url("replica test")
}

/// A fresh schema so the test never meets another test's rows.
fn fresh_schema(server: &str) -> String {
    // One schema per call: the tests of this file run in parallel in one process.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("replicas_{}_{n}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls).await.expect("connect");
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
                 DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .await
            .expect("create schema");
        drop(client);
        let _ = driver.await;
    });
    let sep = if server.contains('?') { '&' } else { '?' };
    format!("{server}{sep}options=-c%20search_path%3D{name}%2Cpublic")
}

struct Replica {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start(database_url: &str) -> Replica {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ocular"))
        .arg("serve")
        .env("OCULAR_PORT", port.to_string())
        .env("OCULAR_DATA_DIR", data.path())
        .env("OCULAR_MODELS_DIR", workspace().join("models"))
        .env("OCULAR_MODELS", "efficientnet-lite0,minilm")
        .env("DATABASE_URL", database_url)
        .env_remove("OCULAR_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ocular serve");
    Replica { child, port, _data: data }
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub(crate) fn http(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

pub(crate) fn multipart(fields: &[(&str, &str)], image: &[u8]) -> (String, Vec<u8>) {
    let b = "ocular-replica-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes());
    }
    body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n").bytes());
    body.extend_from_slice(image);
    body.extend(format!("\r\n--{b}--\r\n").bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn wait_ready(r: &Replica) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        if TcpStream::connect(("127.0.0.1", r.port)).is_ok()
            && http(r.port, "GET", "/health/ready", "text/plain", b"").0 == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("replica on port {} never became ready", r.port);
}

pub(crate) fn first_result_id(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["results"][0]["product"]["id"].as_str().map(str::to_string)
}

#[test]
fn a_write_on_one_replica_is_searched_on_the_other() {
    let Some(server) = database_url() else { return };
    let url = fresh_schema(&server);
    let migrate =
        Command::new(env!("CARGO_BIN_EXE_ocular")).arg("migrate").env("DATABASE_URL", &url).output().expect("migrate");
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let (a, b) = (start(&url), start(&url));
    wait_ready(&a);
    wait_ready(&b);

    let photos = workspace().join("models/photos");
    let left = std::fs::read(photos.join("motorcycle_left.png")).expect("photo");
    let right = std::fs::read(photos.join("motorcycle_right.png")).expect("photo");
    let coffee = std::fs::read(photos.join("coffee.png")).expect("photo");
    for (id, title, image) in [("bike", "Dirt bike 250", &left), ("cup", "Espresso cup", &coffee)] {
        let (ct, body) = multipart(&[("id", id), ("title", title), ("category", "demo"), ("price", "10")], image);
        let (status, resp) = http(a.port, "POST", "/api/v1/products", &ct, &body);
        assert_eq!(status, 201, "create {id} on replica A: {resp}");
    }

    let (ct, body) = multipart(&[("top_k", "2"), ("threshold", "0")], &right);
    let (status, resp) = http(b.port, "POST", "/api/v1/search", &ct, &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(first_result_id(&resp).as_deref(), Some("bike"), "replica B finds A's product: {resp}");
    let (status, resp) = http(
        b.port,
        "POST",
        "/api/v1/search/text",
        "application/json",
        br#"{"query":"a cup of coffee","threshold":0}"#,
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(first_result_id(&resp).as_deref(), Some("cup"), "{resp}");

    let (status, _) = http(a.port, "DELETE", "/api/v1/products/bike", "text/plain", b"");
    assert_eq!(status, 204);
    let (ct, body) = multipart(&[("top_k", "2"), ("threshold", "0")], &right);
    let (_, resp) = http(b.port, "POST", "/api/v1/search", &ct, &body);
    assert_ne!(first_result_id(&resp).as_deref(), Some("bike"), "a deletion on A is seen by B: {resp}");
}

/// One JSON request with extra headers; returns (status, ETag, body).
fn json_with(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body.as_bytes())).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let etag = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("etag")).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_string();
    (status, etag, body.to_string())
}

#[test]
fn two_replicas_writing_one_version_lose_no_update() {
    // Issue 16, finding #11, across two `ocular serve` processes on one PostgreSQL database:
    // both clients read version 1 (from different replicas) and write with If-Match; the
    // second write is refused with 412 instead of undoing the first.
    let Some(server) = database_url() else { return };
    let url = fresh_schema(&server);
    let migrate =
        Command::new(env!("CARGO_BIN_EXE_ocular")).arg("migrate").env("DATABASE_URL", &url).output().expect("migrate");
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let (a, b) = (start(&url), start(&url));
    wait_ready(&a);
    wait_ready(&b);
    let (status, v1, body) = json_with(a.port, "POST", "/api/v1/products", &[], r#"{"id":"mug","title":"Mug"}"#);
    assert_eq!(status, 201, "{body}");
    let (_, seen_on_b, _) = json_with(b.port, "GET", "/api/v1/products/mug", &[], "");
    assert_eq!(seen_on_b, v1, "both replicas show one version");

    let (status, v2, body) =
        json_with(b.port, "PATCH", "/api/v1/products/mug", &[("If-Match", &v1)], r#"{"title":"Blue mug"}"#);
    assert_eq!(status, 200, "{body}");
    assert_ne!(v2, v1);
    let (status, _, body) =
        json_with(a.port, "PATCH", "/api/v1/products/mug", &[("If-Match", &v1)], r#"{"title":"Red mug"}"#);
    assert_eq!(status, 412, "replica A must not overwrite B's write: {body}");
    assert!(body.contains("precondition_failed"), "{body}");
    let (_, etag, body) = json_with(a.port, "GET", "/api/v1/products/mug", &[], "");
    assert!(body.contains("Blue mug") && etag == v2, "{etag} {body}");
}

/// Attribute filters and category facets (issue 19) on PostgreSQL: the filters run in SQL
/// (jsonb) for the pgvector and full-text queries, the facets are one grouped query.
#[test]
fn attribute_filters_and_facets_on_postgres() {
    let Some(server) = database_url() else { return };
    let url = fresh_schema(&server);
    let migrate =
        Command::new(env!("CARGO_BIN_EXE_ocular")).arg("migrate").env("DATABASE_URL", &url).output().expect("migrate");
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let r = start(&url);
    wait_ready(&r);

    let photos = workspace().join("models/photos");
    let left = std::fs::read(photos.join("motorcycle_left.png")).expect("photo");
    let right = std::fs::read(photos.join("motorcycle_right.png")).expect("photo");
    let coffee = std::fs::read(photos.join("coffee.png")).expect("photo");
    let rows = [
        ("red-bike", "Red dirt bike", "bikes", r#"{"colour": "red", "engine_cc": 250}"#, &left),
        ("blue-bike", "Blue dirt bike", "bikes", r#"{"colour": "blue", "engine_cc": 450}"#, &right),
        ("red-cup", "Red espresso cup", "kitchen", r#"{"colour": "red", "capacity_ml": 90}"#, &coffee),
    ];
    for (id, title, category, attributes, image) in rows {
        let fields = [("id", id), ("title", title), ("category", category), ("attributes", attributes)];
        let (ct, body) = multipart(&fields, image);
        let (status, resp) = http(r.port, "POST", "/api/v1/products", &ct, &body);
        assert_eq!(status, 201, "create {id}: {resp}");
    }
    let json = |body: &str| -> serde_json::Value { serde_json::from_str(body).expect("json") };
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|h| h["product"]["id"].as_str().expect("id").to_string())
            .collect();
        ids.sort();
        ids
    };

    let (ct, body) = multipart(&[("threshold", "-1"), ("attributes", r#"{"colour": "red"}"#)], &right);
    let (status, resp) = http(r.port, "POST", "/api/v1/search", &ct, &body);
    assert_eq!(status, 200, "{resp}");
    let v = json(&resp);
    assert_eq!(ids(&v), ["red-bike", "red-cup"], "{resp}");
    assert_eq!(
        v["facets"]["category"],
        serde_json::json!([{"value": "bikes", "count": 1}, {"value": "kitchen", "count": 1}])
    );
    let text = br#"{"query": "dirt bike", "threshold": -1, "attributes": {"engine_cc": {"min": 300}}}"#;
    let (status, resp) = http(r.port, "POST", "/api/v1/search/text", "application/json", text);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(ids(&json(&resp)), ["blue-bike"], "{resp}");
    let (status, resp) = http(
        r.port,
        "GET",
        "/api/v1/products/red-bike/similar?threshold=-1&attributes=%7B%22colour%22%3A%22red%22%7D",
        "text/plain",
        b"",
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(ids(&json(&resp)), ["red-cup"], "{resp}");
    // Facets span the pages: one result per page, both categories counted.
    let (ct, body) = multipart(&[("threshold", "-1"), ("top_k", "1")], &right);
    let (_, resp) = http(r.port, "POST", "/api/v1/search", &ct, &body);
    let v = json(&resp);
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        v["facets"]["category"],
        serde_json::json!([{"value": "bikes", "count": 2}, {"value": "kitchen", "count": 1}]),
        "{resp}"
    );
    // A dotted path steps into nested objects; an empty step names nothing and is refused.
    let bad = br#"{"query": "bike", "attributes": {"engine..cc": 250}}"#;
    let (status, resp) = http(r.port, "POST", "/api/v1/search/text", "application/json", bad);
    assert_eq!(status, 400, "{resp}");
    assert_eq!(json(&resp)["error"]["code"], "invalid_request", "{resp}");
}
