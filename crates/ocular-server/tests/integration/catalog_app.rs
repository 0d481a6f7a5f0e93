//! An app over the real search models (EfficientNet-Lite0 + MiniLM, loaded once per test binary)
//! whose database can be reopened by a second app, as after a restart; multipart and JSON
//! helpers; and a loopback image server that counts the connections it accepts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, Response};
use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions};
use ocular_server::AppState;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::common::{config, ort_library, split, workspace_root};

fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let registry = Registry::discover(RegistryOptions {
                models_dir: workspace_root().join("models"),
                ort_library: Some(ort_library()),
                session: SessionOptions::default(),
                enabled: Some(vec!["efficientnet-lite0".into(), "minilm".into()]),
            })
            .expect("registry");
            assert!(registry.image.is_some() && registry.text.is_some(), "run `ocular models fetch` first");
            Arc::new(registry)
        })
        .clone()
}

pub struct CatalogApp {
    pub state: AppState,
    dir: Arc<tempfile::TempDir>,
}

impl CatalogApp {
    /// A fresh database; indexes not loaded yet.
    pub fn new(extra: &[&str]) -> Self {
        Self::open(Arc::new(tempfile::tempdir().expect("tempdir")), extra)
    }

    /// A new app over the same database, as after a restart.
    pub fn reopen(&self, extra: &[&str]) -> Self {
        Self::open(self.dir.clone(), extra)
    }

    fn open(dir: Arc<tempfile::TempDir>, extra: &[&str]) -> Self {
        let models = workspace_root().join("models");
        let mut args =
            vec!["--models-dir", models.to_str().expect("utf8"), "--data-dir", dir.path().to_str().expect("utf8")];
        args.extend_from_slice(extra);
        let store = ocular_store::open(&ocular_store::Location::Sqlite(dir.path().join("t.db")), true).expect("store");
        let state = AppState::new(config(&args), registry(), store);
        Self { state, dir }
    }

    /// Loads the search indexes as `ocular serve` does, and waits for them.
    pub async fn loaded(self) -> Self {
        ocular_server::search::spawn_index_load(&self.state).expect("search is configured").await.expect("load");
        self
    }

    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        ocular_server::router(self.state.clone()).oneshot(req).await.expect("infallible")
    }

    pub async fn call(&self, req: Request<Body>) -> (u16, Value) {
        split(self.send(req).await).await
    }

    pub async fn get(&self, uri: &str) -> (u16, Value) {
        self.call(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    pub async fn json(&self, method: &str, uri: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.call(req).await
    }

    pub async fn form(&self, method: &str, uri: &str, fields: &[(&str, &str)], image: Option<&[u8]>) -> (u16, Value) {
        self.call(form_request(method, uri, fields, image)).await
    }
}

/// A multipart request: text fields and an optional `image` file.
pub fn form_request(method: &str, uri: &str, fields: &[(&str, &str)], image: Option<&[u8]>) -> Request<Body> {
    let boundary = "ocular-catalog-test-5b1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    if let Some(bytes) = image {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .expect("request")
}

pub fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["product"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// Serves one PNG on `127.0.0.1` (404 for paths containing "missing") and counts accepted
/// connections.
pub struct ImageServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ImageServer {
    pub async fn start(png: Vec<u8>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let png = png.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    // A path containing "missing" is a 404: an upstream failure.
                    let missing = String::from_utf8_lossy(&head).lines().next().is_some_and(|l| l.contains("missing"));
                    let (status, body) = if missing { ("404 Not Found", &[][..]) } else { ("200 OK", &png[..]) };
                    let header = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(header.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                });
            }
        });
        Self { addr, accepted, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
