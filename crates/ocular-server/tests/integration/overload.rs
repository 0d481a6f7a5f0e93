//! Beyond capacity the server answers 503 + Retry-After at once, and recovers.

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn full_capacity_answers_503_with_retry_after() {
    let app = TestApp::new(&["--preload", "false", "--max-concurrency", "1", "--max-queue", "0"]);
    // Occupy the only inference slot as a slow request would.
    let held = app.state.admission.admit().await.expect("first admission");
    let req = axum::http::Request::post("/api/v1/fixture")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({ "input": [1.0, 1.0, 1.0, 1.0] }).to_string()))
        .unwrap();
    let resp = app.send(req).await;
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let (status, body) = crate::common::split(resp).await;
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("overloaded")), "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));

    drop(held);
    let (status, _) = app.post_json("/api/v1/fixture", json!({ "input": [1.0, 1.0, 1.0, 1.0] })).await;
    assert_eq!(status, 200, "capacity frees up again");
}
