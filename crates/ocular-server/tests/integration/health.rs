//! Health, readiness, lazy loading, the error envelope and metrics over HTTP.

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn preload_mode_is_not_ready_until_models_load() {
    let app = TestApp::new(&[]);
    let (status, body) = app.get("/health").await;
    assert_eq!(status, 200, "liveness answers while loading");
    assert_eq!((body["ready"].clone(), body["model_loaded"].clone()), (json!(false), json!(false)));
    let (status, _) = app.get("/health/ready").await;
    assert_eq!(status, 503);

    assert!(app.state.registry.preload_all().await.is_empty());
    let (status, body) = app.get("/health/ready").await;
    assert_eq!((status, body["ready"].clone(), body["model_loaded"].clone()), (200, json!(true), json!(true)));
    let (_, verbose) = app.get("/health?verbose=1").await;
    let model = &verbose["models"][0];
    assert_eq!((model["name"].clone(), model["state"].clone()), (json!("fixture"), json!("ready")));
    assert!(model["bytes"].as_u64().unwrap() > 0 && model["load_ms"].is_u64(), "{model}");
    assert!(verbose["memory"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(verbose["uptime_s"].is_u64() && verbose["version"].is_string());
}

#[tokio::test]
async fn lazy_mode_loads_on_first_use() {
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 200, "lazy mode is ready without models: {body}");
    let (_, verbose) = app.get("/health?verbose=1").await;
    assert_eq!(verbose["models"][0]["state"], json!("not_loaded"));

    let (status, body) = app.post_json("/api/v1/fixture", json!({ "input": [1.0, 2.0, 3.0, 4.0] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"].as_array().unwrap().len(), 3);
    let (_, verbose) = app.get("/health?verbose=1").await;
    assert_eq!(verbose["models"][0]["state"], json!("ready"));
}

#[tokio::test]
async fn legacy_health_route() {
    let app = TestApp::new(&[]);
    assert_eq!(app.get("/api/v1/health").await, (200, json!({ "status": "healthy", "message": "API is running" })));
}

#[tokio::test]
async fn errors_use_one_envelope() {
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.get("/no/such/route").await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("no_route")));
    let (status, body) = app.post_json("/api/v1/fixture", json!({ "input": [1.0] })).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_input")), "{body}");
    let (status, body) = app.post_json("/health", json!({})).await;
    assert_eq!((status, body["error"]["code"].clone()), (405, json!("method_not_allowed")));
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn body_limit_is_enforced_with_a_stable_code() {
    let app = TestApp::new(&["--preload", "false", "--max-body-bytes", "2048"]);
    let big: Vec<f32> = vec![0.5; 4000];
    let (status, body) = app.post_json("/api/v1/fixture", json!({ "input": big })).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")), "{body}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = TestApp::new(&["--preload", "false"]);
    app.post_json("/api/v1/fixture", json!({ "input": [0.0, 0.0, 0.0, 0.0] })).await;
    let resp = app.send(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    let (status, body) = crate::common::split(resp).await;
    let text = body.as_str().expect("text body").to_string();
    assert_eq!(status, 200);
    for needle in [
        "# TYPE ocular_http_requests_total counter",
        "# TYPE ocular_http_request_duration_seconds histogram",
        "# TYPE ocular_model_inference_duration_seconds histogram",
        "# TYPE ocular_model_state gauge",
        "# TYPE ocular_process_resident_memory_bytes gauge",
        "# HELP ocular_http_requests_total ",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // One namespace, Prometheus's conventions: every sample is ours, and counters end in _total.
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.starts_with("ocular_"), "metric outside the ocular_ namespace: {line}");
    }
    for line in text.lines().filter(|l| l.starts_with("# TYPE ") && l.ends_with(" counter")) {
        assert!(line.trim_end_matches(" counter").ends_with("_total"), "counter without _total: {line}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::new(&["--preload", "false"]);
    let req = axum::http::Request::get("/health").header("x-request-id", "lb-7f3a").body(axum::body::Body::empty());
    let resp = app.send(req.unwrap()).await;
    assert_eq!(resp.headers()["x-request-id"], "lb-7f3a", "a load balancer's id flows through");
    let resp = app.send(axum::http::Request::get("/no/such/route").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), 404);
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a fresh UUID when the client sent none: {id}");
}
