//! SSRF at the HTTP level: every URL-taking endpoint (search by URL, product `image_url` by
//! POST/PUT/PATCH, JSON and form) refuses loopback in all its disguises and non-HTTP schemes
//! with `400 url_not_allowed` and no connection; with the allow-list set to one loopback
//! address, redirects to the metadata service, a private address or another loopback address
//! are refused before connecting. Only loopback listeners exist here, and the fetcher is built
//! with `loopback-only`, so nothing can leave the machine even if a check failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestApp, photo};
use crate::hostile::{Payload, file, form, send, text};

/// A loopback listener that counts the connections it accepts and answers each request with
/// a PNG or a redirect.
struct Recorder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    async fn start(bind: &str, redirect_to: Option<String>) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await.ok()?;
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let png = Arc::new(photo("coffee.png"));
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let (png, redirect_to) = (png.clone(), redirect_to.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply = match &redirect_to {
                        Some(to) => {
                            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes()
                        }
                        None => {
                            let h = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                png.len()
                            );
                            [h.as_bytes(), &png].concat()
                        }
                    };
                    let _ = socket.write_all(&reply).await;
                });
            }
        });
        Some(Self { addr, accepted, task })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The real models, loaded indexes, and a product `existing` to PATCH.
async fn app(extra: &[&str]) -> TestApp {
    let mut args = vec!["--preload", "false"];
    args.extend_from_slice(extra);
    let app = TestApp::real(&args);
    ocular_server::search::spawn_index_load(&app.state).expect("search configured").await.expect("load");
    let created = send(
        &app,
        "POST",
        "/api/v1/products",
        &form(&[text("id", "existing"), text("title", "Cup"), file("image", &photo("coffee.png"))]),
    )
    .await;
    assert_eq!(created.0, 201, "{}", created.1);
    app
}

fn json_body(v: Value) -> Payload {
    Payload { content_type: "application/json".into(), body: v.to_string().into_bytes() }
}

/// Every request that makes the server fetch `url`, labelled.
fn url_requests(url: &str, i: usize) -> Vec<(String, &'static str, String, Payload)> {
    vec![
        ("search".into(), "POST", "/api/v1/search/url".into(), json_body(json!({"image_url": url}))),
        (
            "create (JSON)".into(),
            "POST",
            "/api/v1/products".into(),
            json_body(json!({"id": format!("u{i}"), "title": "t", "image_url": url})),
        ),
        (
            "create (form)".into(),
            "POST",
            "/api/v1/products".into(),
            form(&[text("id", &format!("f{i}")), text("title", "t"), text("image_url", url)]),
        ),
        ("replace".into(), "PUT", format!("/api/v1/products/r{i}"), json_body(json!({"title": "t", "image_url": url}))),
        ("patch".into(), "PATCH", "/api/v1/products/existing".into(), json_body(json!({"image_url": url}))),
    ]
}

async fn assert_refused(app: &TestApp, url: &str, i: usize) {
    for (label, method, uri, payload) in url_requests(url, i) {
        let (status, body) = send(app, method, &uri, &payload).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("url_not_allowed")), "{url} → {label}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_in_every_disguise_is_refused_without_a_connection() {
    let v4 = Recorder::start("127.0.0.1:0", None).await.expect("bind loopback");
    let v6 = Recorder::start("[::1]:0", None).await;
    let app = app(&[]).await;
    let p = v4.port();
    let mut urls: Vec<String> = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "0x7f.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
        "localhost.",
        "user@127.0.0.1",
        "user:pw@localhost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{p}/a.png"))
    .collect();
    urls.extend([
        format!("https://127.1:{p}/a.png"),
        "file:///etc/passwd".into(),
        format!("gopher://127.0.0.1:{p}/_GET%20/"),
        format!("ftp://127.0.0.1:{p}/a.png"),
        format!("dict://127.0.0.1:{p}/"),
    ]);
    if let Some(v6) = &v6 {
        urls.push(format!("http://[::1]:{}/a.png", v6.port()));
        urls.push(format!("http://[0:0:0:0:0:0:0:1]:{}/a.png", v6.port()));
    }
    for (i, url) in urls.iter().enumerate() {
        assert_refused(&app, url, i).await;
    }
    assert_eq!(v4.accepted(), 0, "a refused URL reached the listener");
    assert_eq!(v6.as_ref().map_or(0, Recorder::accepted), 0, "a refused URL reached the v6 listener");

    // Nothing was written by the refused requests.
    let (_, list) = app.get("/api/v1/products").await;
    assert_eq!(list["total"], json!(1), "{list}");
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_forbidden_targets_are_refused_before_connecting() {
    // A second loopback address (all of 127/8 is loopback on Linux) that is not on the list.
    let hidden = Recorder::start("127.0.0.2:0", None).await.expect("bind 127.0.0.2");
    let image = Recorder::start("127.0.0.1:0", None).await.expect("bind loopback");
    // Only 127.0.0.1 is trusted, as a deployer would list an internal image host.
    let app = app(&["--url-allow", "127.0.0.1"]).await;

    // Positive control: an allowed redirect is followed, so the zero counts below mean refusal.
    let front = Recorder::start("127.0.0.1:0", Some(format!("http://127.0.0.1:{}/p.png", image.port()))).await.unwrap();
    let (status, body) = send(
        &app,
        "POST",
        "/api/v1/search/url",
        &json_body(json!({"image_url": format!("http://127.0.0.1:{}/", front.port())})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((front.accepted(), image.accepted()), (1, 1));

    let locations = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
        "http://2852039166/latest/meta-data/".into(),
        "http://[::ffff:169.254.169.254]/".into(),
        "http://10.0.0.1/".into(),
        "http://192.168.1.1/".into(),
        "http://100.64.0.1/".into(),
        "http://[fd00::1]/".into(),
        format!("http://127.0.0.2:{}/x.png", hidden.port()),
        format!("http://localhost:{}/x.png", image.port()),
        format!("http://[::1]:{}/x.png", image.port()),
        "file:///etc/passwd".into(),
    ];
    for (i, location) in locations.iter().enumerate() {
        let front = Recorder::start("127.0.0.1:0", Some(location.clone())).await.unwrap();
        let url = format!("http://127.0.0.1:{}/start.png", front.port());
        assert_refused(&app, &url, 100 + i).await;
        assert_eq!(front.accepted(), url_requests(&url, 0).len(), "{location}: each request reached the front once");
    }
    assert_eq!(hidden.accepted(), 0, "the unlisted loopback address was contacted");
    assert_eq!(image.accepted(), 1, "only the positive control reached the image server");
}
