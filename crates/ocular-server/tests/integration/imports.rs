//! `POST /api/v1/imports` and `GET /api/v1/imports/{id}` with the real search models and a
//! real SQLite file: catalogs uploaded as JSON Lines and CSV (each with a bad record), the job
//! polled to `done`, the products found by search, failures listed with their lines; the
//! bounds (no key, over the cap, not a catalog); a restarted server answering for a finished
//! job; and an interrupted job resumed by posting the same file again.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use ocular_search::import::{ImportOptions, Progress};
use serde_json::{Value, json};

use crate::catalog_app::CatalogApp;

const KEY: &str = "import-key-0123456789ab";

fn upload(content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post("/api/v1/imports")
        .header("content-type", content_type)
        .header("x-api-key", KEY)
        .body(body.into())
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header("x-api-key", KEY).body(Body::empty()).unwrap()
}

/// Posts a catalog; returns the job's view after `202`.
async fn post(app: &CatalogApp, content_type: &str, body: &str) -> Value {
    let resp = app.send(upload(content_type, body.to_string())).await;
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    let (status, view) = crate::common::split(resp).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(location, Some(format!("/api/v1/imports/{}", view["id"].as_str().unwrap())));
    view
}

/// Polls the job until it is done (or fails the test after a minute).
async fn finished(app: &CatalogApp, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, view) = app.call(get(&format!("/api/v1/imports/{id}"))).await;
        assert_eq!(status, 200, "{view}");
        match view["state"].as_str() {
            Some("done") => return view,
            Some("queued" | "running") => {}
            other => panic!("unexpected state {other:?}: {view}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "import not done: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_hits(app: &CatalogApp, query: &str) -> Vec<String> {
    let (status, found) = app.json("POST", "/api/v1/search/text", json!({"query": query, "threshold": 0})).await;
    assert_eq!(status, 200, "{found}");
    found["results"].as_array().unwrap().iter().filter_map(|r| r["product"]["id"].as_str().map(String::from)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_sync_over_http() {
    let app = CatalogApp::new(&["--api-key", KEY, "--max-import-bytes", "4096"]).loaded().await;

    // JSON Lines: a record with invalid JSON on line 2, one whose photo is a server path on 4.
    let jsonl = concat!(
        "{\"id\":\"kettle\",\"title\":\"Blue enamel kettle\",\"price\":24.5}\n",
        "{not json}\n",
        "\n",
        "{\"id\":\"peek\",\"title\":\"Sneaky\",\"image\":\"/etc/ssl/certs/x.jpg\"}\n",
        "{\"id\":\"lamp\",\"title\":\"Green desk lamp\",\"category\":\"lighting\"}\n",
    );
    let view = post(&app, "application/x-ndjson", jsonl).await;
    assert_eq!(view["lines"], 4, "{view}");
    let done = finished(&app, view["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["imported"].clone(), done["failed"].clone(), done["processed"].clone()),
        (json!(2), json!(2), json!(4))
    );
    assert_eq!(done["unchanged"], 0, "{done}");
    let failures = done["failures"].as_array().unwrap();
    assert_eq!(
        failures.iter().map(|f| (f["record"].clone(), f["line"].clone())).collect::<Vec<_>>(),
        [(json!(2), json!(2)), (json!(3), json!(4))]
    );
    assert!(failures[0]["error"].as_str().unwrap().contains("invalid JSON"), "{done}");
    assert!(failures[1]["error"].as_str().unwrap().contains("URL, not a path"), "{done}");
    assert!(done["started_at"].is_string() && done["finished_at"].is_string(), "{done}");
    assert_eq!(text_hits(&app, "enamel kettle").await.first().map(String::as_str), Some("kettle"));

    // CSV from a comma-decimal spreadsheet (`;`), a row with too many fields on line 3.
    let csv = "id;title;price;currency\nmug;\"White mug; 300 ml\";12,90;eur\nbad;Too;1;eur;extra\nrug;Wool rug;1.249,00;EUR\n";
    let view = post(&app, "text/csv", csv).await;
    let done = finished(&app, view["id"].as_str().unwrap()).await;
    assert_eq!((done["imported"].clone(), done["failed"].clone()), (json!(2), json!(1)), "{done}");
    assert_eq!(done["failures"][0]["line"], 3, "{done}");
    assert!(done["failures"][0]["error"].as_str().unwrap().contains("header names 4"), "{done}");
    let (_, mug) = app.get("/api/v1/products/mug").await;
    assert_eq!((mug["price"].clone(), mug["title"].clone()), (json!(12.9), json!("White mug; 300 ml")));
    assert_eq!(app.get("/api/v1/products/rug").await.1["price"], 1249.0);
    assert_eq!(text_hits(&app, "white mug").await.first().map(String::as_str), Some("mug"));

    // The same CSV again: a new job (the first finished), every product unchanged.
    let again = post(&app, "text/csv; charset=utf-8", csv).await;
    let again = finished(&app, again["id"].as_str().unwrap()).await;
    assert_eq!((again["imported"].clone(), again["unchanged"].clone()), (json!(2), json!(2)), "{again}");

    // Refusals: no key; over the cap (declared, and streamed without a length); no format;
    // not a catalog; an unknown job.
    let (status, body) = app
        .call(Request::post("/api/v1/imports").header("content-type", "text/csv").body(Body::from(csv)).unwrap())
        .await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));
    let big = "{\"id\":\"x\",\"title\":\"y\"}\n".repeat(300);
    let (status, body) = app.call(upload("application/x-ndjson", big.clone())).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"), "the limit is named: {body}");
    let chunks = futures_chunks(big.into_bytes());
    let (status, body) = app.call(upload("application/x-ndjson", chunks)).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")), "{body}");
    let spool = app.state.config.data_dir.join("imports");
    assert!(no_uploads(&spool), "nothing of a refused upload is kept");
    let (status, body) = app.call(upload("text/plain", "x")).await;
    assert_eq!((status, body["error"]["code"].clone()), (415, json!("unsupported_content_type")), "{body}");
    let (status, body) = app.call(upload("text/csv", "id,title\na,\"never closed\n")).await;
    assert_eq!((status, body["error"]["code"].clone()), (422, json!("invalid_catalog")), "{body}");
    let (status, _) = app.call(get("/api/v1/imports/00000000-0000-4000-8000-000000000000")).await;
    assert_eq!(status, 404);

    // A restarted server answers for a finished job, counts included.
    let restarted = app.reopen(&["--api-key", KEY]);
    let (status, view) = restarted.call(get(&format!("/api/v1/imports/{}", done["id"].as_str().unwrap()))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["state"].clone(), view["imported"].clone(), view["failed"].clone()),
        (json!("done"), json!(2), json!(1))
    );
    assert_eq!(view["failures"][0]["line"], 3);
    assert!(no_uploads(&spool), "spool files go when their job ends");
}

/// A body of many chunks and no length, as a streamed upload arrives.
fn futures_chunks(bytes: Vec<u8>) -> Body {
    struct Chunks(std::collections::VecDeque<bytes::Bytes>);
    impl hyper::body::Body for Chunks {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }
    Body::new(Chunks(bytes.chunks(1000).map(bytes::Bytes::copy_from_slice).collect()))
}

fn no_uploads(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().all(|e| e.path().extension().is_none_or(|x| x != "upload"))
}

/// Stops the run after its first batch, as a killed process would: its claim stays behind.
struct KilledAfterOneBatch(usize);

impl Progress for KilledAfterOneBatch {
    fn update(&mut self, _: u64, _: u64) {}

    fn admit(&mut self, _: usize) -> Box<dyn std::any::Any> {
        self.0 += 1;
        assert!(self.0 < 2, "killed");
        Box::new(())
    }
}

/// A job cut off part-way (the process died) is `interrupted` after a restart, and posting the
/// same file again resumes it under the same id, without redoing the records it had finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_job_resumes_when_the_file_is_posted_again() {
    let app = CatalogApp::new(&["--api-key", KEY, "--max-batch-size", "2"]).loaded().await;
    let lines: String = (1..=12).map(|i| format!("{{\"id\":\"p{i}\",\"title\":\"Product number {i}\"}}\n")).collect();
    let file = app.state.config.data_dir.join("catalog.jsonl");
    std::fs::write(&file, &lines).unwrap();

    // The first run, through the same functions the server calls, dies after one batch.
    let catalog = app.state.catalog.clone().unwrap();
    let embedders = catalog.embedders().await.unwrap();
    let options = ImportOptions { format: ocular_search::import::Format::Jsonl, batch_size: 2, shared: false };
    let id = tokio::task::spawn_blocking(move || {
        let job = ocular_search::import::begin_import(&catalog, &file, &options).unwrap();
        let id = job.id.clone();
        let loader = ocular_search::ImageLoader::urls_only(Default::default(), None);
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ocular_search::import::run_import(
                &catalog,
                embedders.as_ref(),
                &loader,
                &file,
                &options,
                job,
                &mut KilledAfterOneBatch(0),
            )
        }));
        assert!(died.is_err());
        id
    })
    .await
    .unwrap();

    let restarted = app.reopen(&["--api-key", KEY, "--max-batch-size", "2"]).loaded().await;
    let (_, view) = restarted.call(get(&format!("/api/v1/imports/{id}"))).await;
    assert_eq!((view["state"].clone(), view["imported"].clone()), (json!("interrupted"), json!(2)), "{view}");

    let resumed = post(&restarted, "application/x-ndjson", &lines).await;
    assert_eq!(resumed["id"], id, "the same bytes resume the same job");
    let done = finished(&restarted, &id).await;
    assert_eq!(
        (done["imported"].clone(), done["failed"].clone(), done["lines"].clone()),
        (json!(12), json!(0), json!(12))
    );
    assert!(text_hits(&restarted, "product number 12").await.contains(&"p12".to_string()));
    for i in 1..=12 {
        assert_eq!(restarted.get(&format!("/api/v1/products/p{i}")).await.0, 200, "p{i}");
    }
}
