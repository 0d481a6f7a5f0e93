//! What strangers can make the server hold or reveal before a handler decides anything
//! (issue 16): the in-flight body budget, the connection cap, cross-site writes, internals on
//! a public address, the deep-paging bound, and health probes that never block the runtime.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use hyper::body::Frame;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestApp, split};

const KEY: &str = "0123456789abcdef-admin";

/// A request body that sends its chunks, then stalls until `release` is dropped (a slow
/// client in the middle of an upload).
struct Stalling {
    chunks: VecDeque<Bytes>,
    release: tokio::sync::oneshot::Receiver<()>,
}

impl hyper::body::Body for Stalling {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match Pin::new(&mut self.release).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Err(std::io::Error::other("client gone")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future;

fn multipart_head(boundary: &str) -> Vec<u8> {
    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n").into_bytes()
}

/// Bodies are counted as they arrive: while one slow upload holds most of the budget, a
/// second upload that does not fit is refused with `503 body_budget_exceeded` (it used to be
/// buffered whatever the total), and once the first ends the budget is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_in_flight_share_one_budget() {
    let mib = 1 << 20;
    // The real skin model is configured, so the analysis route reads the upload.
    let app = Arc::new(TestApp::real(&[
        "--preload",
        "false",
        "--max-body-bytes",
        &(2 * mib).to_string(),
        "--max-inflight-body-bytes",
        &(2 * mib).to_string(),
    ]));
    assert_eq!(app.state.body_budget.in_use_bytes(), 0);
    let boundary = "budget-boundary";
    let (release, released) = tokio::sync::oneshot::channel();
    let slow = Stalling {
        chunks: [multipart_head(boundary), vec![0xAB; 3 * mib / 2]].map(Bytes::from).into(),
        release: released,
    };
    let req = Request::post("/api/v1/analyze")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::new(slow))
        .unwrap();
    let first = tokio::spawn({
        let app = app.clone();
        async move { app.send(req).await.status().as_u16() }
    });
    let started = Instant::now();
    while app.state.body_budget.in_use_bytes() < 3 * mib / 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "the slow upload never took its budget");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut body = multipart_head(boundary);
    body.extend(vec![0xCD; mib]);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let req = Request::post("/api/v1/analyze")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body.clone()))
        .unwrap();
    let resp = app.send(req).await;
    assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    let (status, answer) = split(resp).await;
    assert_eq!((status, answer["error"]["code"].clone()), (503, json!("body_budget_exceeded")), "{answer}");

    drop(release);
    first.await.expect("first request");
    assert_eq!(app.state.body_budget.in_use_bytes(), 0, "every byte went back");
    // Now it fits (and is refused only because it is no image).
    let req = Request::post("/api/v1/analyze")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap();
    let (status, answer) = split(app.send(req).await).await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!("image_unreadable")), "{answer}");
}

/// A server at capacity refuses an upload before reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_refuses_uploads_unread() {
    let app = TestApp::real(&["--preload", "false", "--max-concurrency", "1", "--max-queue", "0"]);
    let running = app.state.admission.admit().await.expect("the only slot");
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let never = Stalling { chunks: VecDeque::new(), release: released };
    let req = Request::post("/api/v1/analyze")
        .header("content-type", "multipart/form-data; boundary=x")
        .body(Body::new(never))
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), async { split(app.send(req).await).await })
        .await
        .expect("answered without waiting for the body");
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("overloaded")), "{body}");
    drop((running, release));
}

/// A declared body over the limit is refused before a byte of it is read.
#[tokio::test]
async fn an_oversized_content_length_is_refused_unread() {
    let app = TestApp::new(&["--preload", "false", "--max-body-bytes", "4096"]);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let never = Stalling { chunks: VecDeque::new(), release: released };
    let req = Request::post("/api/v1/analyze")
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", "18000000")
        .body(Body::new(never))
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), async { split(app.send(req).await).await })
        .await
        .expect("answered without waiting for the body");
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")));
    drop(release);
}

/// A browser's cross-site write (a form post needs no CORS preflight) is refused; the same
/// request from the page itself, from an allowed origin, or from a program, is not.
#[tokio::test]
async fn cross_site_writes_from_browsers_are_refused() {
    let app = TestApp::new(&["--preload", "false", "--cors-origins", "https://shop.example"]);
    let post = |site: &str, origin: &str| {
        let mut req = Request::post("/api/v1/fixture").header("content-type", "application/json");
        if !site.is_empty() {
            req = req.header("sec-fetch-site", site).header("origin", origin);
        }
        req.body(Body::from(json!({"input": [1.0, 2.0, 3.0, 4.0]}).to_string())).unwrap()
    };
    let (status, body) = split(app.send(post("cross-site", "https://evil.example")).await).await;
    assert_eq!((status, body["error"]["code"].clone()), (403, json!("cross_site_request")), "{body}");
    let (status, _) = split(app.send(post("same-site", "https://sub.evil.example")).await).await;
    assert_eq!(status, 403);
    for (site, origin) in [("same-origin", "http://127.0.0.1:8000"), ("cross-site", "https://shop.example"), ("", "")] {
        let (status, body) = split(app.send(post(site, origin)).await).await;
        assert_eq!(status, 200, "{site} {origin}: {body}");
    }
    // Reads stay open cross-site (CORS decides what a page may read).
    let get = Request::get("/health").header("sec-fetch-site", "cross-site").body(Body::empty()).unwrap();
    assert_eq!(app.send(get).await.status(), 200);
}

/// On a public address, verbose health and `/metrics` are internals: strangers get the short
/// health body and a 401; the key sees them. On loopback they stay open.
#[tokio::test]
async fn internals_need_the_key_on_a_public_address() {
    let public = TestApp::new(&["--preload", "false", "--host", "0.0.0.0", "--api-key", KEY]);
    let (status, body) = public.get("/health?verbose=1").await;
    assert_eq!(status, 200);
    assert!(body.get("memory").is_none() && body.get("models").is_none(), "internals leaked: {body}");
    assert!(body["status"].is_string() && body["model_loaded"].is_boolean(), "the short body stays: {body}");
    let (status, body) = public.get("/metrics").await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));
    let with_key =
        |uri: &str| Request::get(uri).header("authorization", format!("Bearer {KEY}")).body(Body::empty()).unwrap();
    let (status, body) = split(public.send(with_key("/health?verbose=1")).await).await;
    assert!(status == 200 && body["memory"].is_object(), "{body}");
    assert_eq!(public.send(with_key("/metrics")).await.status(), 200);

    let opted_in = TestApp::new(&["--preload", "false", "--host", "0.0.0.0", "--allow-public-without-key", "true"]);
    assert!(opted_in.get("/health?verbose=1").await.1.get("memory").is_none());
    assert_eq!(opted_in.get("/metrics").await.0, 401);

    let local = TestApp::new(&["--preload", "false"]);
    assert!(local.get("/health?verbose=1").await.1["memory"].is_object());
    assert_eq!(local.get("/metrics").await.0, 200);
}

/// Deep pages multiply a search's work; past the bound the request is refused.
#[tokio::test]
async fn deep_pages_are_refused() {
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.post_json("/api/v1/search/text", json!({"query": "cup", "offset": 10_000})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_request")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("offset"), "{body}");
}

/// A health probe waiting on the database (here: the SQLite writer held by a long
/// transaction) runs off the async runtime: other tasks keep running meanwhile, and the probe
/// answers "not ready" after its own deadline instead of waiting as long as the database.
#[tokio::test(flavor = "current_thread")]
async fn health_probes_never_block_the_runtime() {
    let data = tempfile::tempdir().expect("tempdir");
    let sqlite = Arc::new(ocular_store::sqlite::SqliteStore::open(&data.path().join("t.db")).expect("store"));
    ocular_store::Store::migrate(sqlite.as_ref()).expect("migrate");
    let app = TestApp::with_store(&["--preload", "false"], sqlite.clone());
    assert_eq!(app.get("/health/ready").await.0, 200);

    let (held, hold) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        sqlite
            .with(|_| {
                held.send(()).expect("signal");
                std::thread::sleep(ocular_server::health::STORAGE_TIMEOUT + Duration::from_secs(1));
                Ok(())
            })
            .expect("hold the writer")
    });
    hold.recv().expect("the writer is held");

    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let (status, body) = app.get("/health/ready").await;
    let took = started.elapsed();
    ticker.abort();
    assert_eq!((status, body["ready"].clone()), (503, json!(false)), "{body}");
    assert!(took < ocular_server::health::STORAGE_TIMEOUT + Duration::from_millis(500), "{took:?}");
    assert!(ticks.load(Ordering::Relaxed) > 20, "the runtime stood still while the probe waited");
    writer.join().expect("writer");
}

/// At the connection cap the server stops accepting; the next client is served as soon as a
/// connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped() {
    let app = TestApp::new(&["--preload", "false", "--max-connections", "1", "--header-timeout-ms", "5000"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ocular_server::serve_until(app.state.clone(), listener, async {
        let _ = stopped.await;
    }));
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    let mut first = TcpStream::connect(addr).await.expect("first");
    first.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 512];
    assert!(first.read(&mut buf).await.expect("read") > 0, "the first connection is served");
    // It stays open (keep-alive) and holds the only slot.
    let mut second = TcpStream::connect(addr).await.expect("the kernel queues the second");
    second.write_all(request).await.expect("write");
    let waited = tokio::time::timeout(Duration::from_millis(400), second.read(&mut buf)).await;
    assert!(waited.is_err(), "a second connection was served past the cap");
    drop(first);
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), second.read_to_end(&mut out))
        .await
        .expect("served once the first closed")
        .expect("read");
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
    let _ = stop.send(());
    server.await.expect("server").expect("stops");
}

/// DNS rebinding: a page that points its own name at 127.0.0.1 talks to a loopback server as
/// its own origin. Only loopback names and OCULAR_ALLOWED_HOSTS are answered there.
#[tokio::test]
async fn a_loopback_server_answers_loopback_names_only() {
    let app = TestApp::new(&["--preload", "false", "--allowed-hosts", "ocular.internal"]);
    let get = |host: &str| Request::get("/api/v1/health").header("host", host).body(Body::empty()).unwrap();
    for ok in ["127.0.0.1:8000", "localhost", "[::1]:8000", "ocular.internal:443", "OCULAR.internal"] {
        assert_eq!(app.send(get(ok)).await.status(), 200, "{ok}");
    }
    let (status, body) = split(app.send(get("rebind.evil.example:8000")).await).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("host_not_allowed")), "{body}");
    // A public server answers any name unless the list is set.
    let public = TestApp::new(&["--preload", "false", "--host", "0.0.0.0", "--api-key", KEY]);
    assert_eq!(public.send(get("shop.example.com")).await.status(), 200);
    let listed = TestApp::new(&[
        "--preload",
        "false",
        "--host",
        "0.0.0.0",
        "--api-key",
        KEY,
        "--allowed-hosts",
        "shop.example.com",
    ]);
    assert_eq!(listed.send(get("shop.example.com")).await.status(), 200);
    assert_eq!(listed.send(get("other.example.com")).await.status(), 400);
}
