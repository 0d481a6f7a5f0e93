//! The memory budget over HTTP with the real models: a photo that does not fit now waits, then
//! gets 503 `memory_budget_exceeded` + Retry-After while a small one is served; a photo that
//! can never fit gets 413 at once; the server stays healthy and gives every byte back.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use ocular_image::image::{Rgb, RgbImage};
use ocular_models::{Admission, LimitSource, MemoryBudget};
use serde_json::json;

use crate::common::{TestApp, split, workspace_root};

const MIB: u64 = 1 << 20;

/// A photo-like 12-megapixel JPEG (texture keeps its encoded size realistic).
fn large_photo() -> Vec<u8> {
    let (w, h) = (4000, 3000);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        Rgb([(180 + n) as u8, (120 + x * 40 / w) as u8, (100 + y * 40 / h) as u8])
    });
    let mut out = Vec::new();
    ocular_image::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("jpeg");
    out
}

/// A PNG header declaring 6000x6000 16-bit RGBA (36 MP, within the pixel cap): 288 MB of
/// native pixels before the RGB copy. Nothing after the header: it must never be decoded.
fn png_claiming_a_lot() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0DIHDR".to_vec();
    b.extend_from_slice(&6000u32.to_be_bytes());
    b.extend_from_slice(&6000u32.to_be_bytes());
    b.extend_from_slice(&[16, 6, 0, 0, 0, 0, 0, 0, 0]);
    b
}

async fn analyze(app: &TestApp, photo: &[u8]) -> (u16, Option<String>, serde_json::Value) {
    let boundary = "ocular-budget-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(photo);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let req = Request::post("/api/v1/analyze?force=true")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .expect("request");
    let resp = app.send(req).await;
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
    let (status, json) = split(resp).await;
    (status, retry, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_that_does_not_fit_gets_503_while_a_small_one_is_served() {
    let mut app = TestApp::real(&["--memory-budget", "300MiB", "--queue-timeout-ms", "300"]);
    // The configured budget is what admission uses and what /health shows.
    let (status, health) = app.get("/health?verbose=1").await;
    assert_eq!(status, 200);
    let shown = &health["memory_budget"];
    assert_eq!((shown["limit_bytes"].clone(), shown["source"].clone()), (json!(300 * MIB), json!("config")), "{shown}");
    assert!(shown["usage_bytes"].as_u64().is_some_and(|u| u > 0), "this process's memory: {shown}");
    assert_eq!(shown["reserved_bytes"], json!(0));
    assert_eq!(app.state.admission.memory().limit(), Some(300 * MIB));

    // Other tests in this binary decode photos at the same time, which moves this process's
    // RSS; the budget's usage is pinned at the RSS measured now, so only this test's
    // reservations (and the real estimates) decide. 250 MiB above it, a 180 MiB request in
    // flight leaves 70 MiB: enough for a small photo (~41 MiB), not for 12 MP (~86 MiB).
    let rss = ocular_server::memory::in_use().expect("anonymous RSS");
    let budget = MemoryBudget::new(Some(rss + 250 * MIB), LimitSource::Config, Arc::new(move || Some(rss)));
    app.state.admission = Admission::new(10, 32, Duration::from_millis(300)).with_memory_budget(budget.clone());
    let in_flight = budget.reserve(180 * MIB, Duration::ZERO).await.expect("fits");

    let large = large_photo();
    let limits = app.state.image_limits();
    let cost = ocular_models::estimate::analyze(&large, &limits);
    assert!((80 * MIB..100 * MIB).contains(&cost), "12 MP analysis estimated at {} MiB", cost / MIB);

    let (status, retry, body) = analyze(&app, &large).await;
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("memory_budget_exceeded")), "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    let small = std::fs::read(workspace_root().join("fixtures/keras/sklesion/ellipse.png")).expect("fixture");
    let (status, _, body) = analyze(&app, &small).await;
    assert_eq!(status, 200, "a small photo fits beside the running request: {body}");

    // Once the other request is done, the same large photo is analysed.
    drop(in_flight);
    let (status, _, body) = analyze(&app, &large).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["image"], json!({ "width": 4000, "height": 3000 }));

    // A photo that could not fit even in an idle process is refused at once, never decoded.
    let (status, retry, body) = analyze(&app, &png_claiming_a_lot()).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("image_exceeds_memory_budget")), "{body}");
    assert_eq!(retry, None, "retrying cannot help");

    // The 200s above were answered before their overlays were drawn: each render keeps its
    // request's reservation until it has stored the images, then gives it back.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while budget.status().reserved_bytes != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(budget.status().reserved_bytes, 0, "every reservation was given back");
    let (status, health) = app.get("/health?verbose=1").await;
    assert_eq!((status, health["status"].clone()), (200, json!("ok")));
}

#[test]
fn invalid_budgets_stop_start_up() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ocular_server::Config,
    }
    let err = Cli::try_parse_from(["ocular", "--memory-budget", "lots"]).err().expect("refused");
    assert!(err.to_string().contains("memory budget"), "{err}");
    let off = Cli::try_parse_from(["ocular", "--memory-budget", "off"]).expect("off").config;
    assert_eq!(ocular_server::memory::resolve_budget(off.memory_budget).0, None);
}
