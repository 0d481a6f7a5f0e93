//! The one error contract: every code's envelope, and the refusals that used to bypass it
//! (axum's plain-text `Query` and body-limit rejections, a 413 that said "larger than 0 bytes").

use axum::body::Body;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use ocular_server::{ApiError, Code};

use crate::common::{TestApp, split};

const KEY: &str = "0123456789abcdef-errors";

/// Asserts the exact envelope: `{"error": {"code", "message"}}` and nothing else, JSON typed.
fn assert_envelope(status: u16, body: &serde_json::Value, code: Code) {
    assert_eq!(status, code.status().as_u16(), "{code}: {body}");
    let obj = body.as_object().unwrap_or_else(|| panic!("{code}: not a JSON object: {body}"));
    assert_eq!(obj.len(), 1, "{code}: {body}");
    let err = body["error"].as_object().unwrap_or_else(|| panic!("{code}: {body}"));
    assert_eq!(err.len(), 2, "{code}: exactly code and message: {body}");
    assert_eq!(err["code"], code.as_str(), "{body}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{code}: a message says what happened: {body}");
}

/// One envelope per code in the table: the status is the code's row, the body the one shape.
#[tokio::test]
async fn every_code_answers_its_status_in_the_envelope() {
    for &code in Code::ALL {
        let resp = ApiError::coded(code, format!("test message for {code}")).into_response();
        let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{code}");
        let (status, body) = split(resp).await;
        assert_envelope(status, &body, code);
    }
}

#[tokio::test]
async fn bad_query_strings_are_the_envelope_not_plain_text() {
    let app = TestApp::new(&["--preload", "false", "--api-key", KEY]);
    let (status, body) = app.get("/api/v1/products?limit=x").await;
    assert_envelope(status, &body, Code::InvalidQuery);
    let req = Request::get("/api/v1/analyses?offset=x").header("x-api-key", KEY).body(Body::empty()).unwrap();
    let (status, body) = split(app.send(req).await).await;
    assert_envelope(status, &body, Code::InvalidQuery);
    // A path parameter that is not UTF-8 once decoded (axum's `Path` said so in plain text).
    let (status, body) = app.get("/api/v1/products/%FF").await;
    assert_envelope(status, &body, Code::InvalidPath);
    // The pages' assets too (their route is not under /api, its refusals are still the envelope).
    let (status, body) = app.get("/assets/x/%FF.js").await;
    assert_envelope(status, &body, Code::InvalidPath);
    // And well-formed ones still work.
    let (status, _) = app.get("/api/v1/products?limit=5&offset=0").await;
    assert_eq!(status, 200);
}

/// A streamed body (no Content-Length) over the limit is refused while reading it, and the
/// 413 names the real limit.
#[tokio::test]
async fn an_oversized_streamed_form_names_the_limit() {
    let app = TestApp::new(&["--preload", "false", "--max-body-bytes", "4096", "--max-json-bytes", "1024"]);
    let boundary = "b0undary";
    let mut form =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\"\r\n\r\n")
            .into_bytes();
    form.extend(std::iter::repeat_n(b'x', 10_000));
    form.extend(format!("\r\n--{boundary}--\r\n").bytes());
    // In-process requests carry no Content-Length unless a test sets one: the body is read
    // as a stream, so the limit applies while reading, not before.
    let body = Body::from(form);
    let req = Request::post("/api/v1/fixture")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .unwrap();
    let (status, body) = split(app.send(req).await).await;
    // The fixture route reads JSON: a multipart body is refused for its type first.
    assert_envelope(status, &body, Code::UnsupportedContentType);

    for uri in ["/api/v1/search", "/api/v1/analyze"] {
        let mut form =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\"\r\n\r\n")
                .into_bytes();
        form.extend(std::iter::repeat_n(b'x', 10_000));
        form.extend(format!("\r\n--{boundary}--\r\n").bytes());
        let req = Request::post(uri)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(form))
            .unwrap();
        let (status, body) = split(app.send(req).await).await;
        if status == 404 {
            // No model installed in this app for the route: refused before reading, as designed.
            assert_envelope(status, &body, Code::ModelNotConfigured);
            continue;
        }
        assert_envelope(status, &body, Code::PayloadTooLarge);
        let m = body["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains("4096"), "{uri}: the message names the limit: {m}");
    }

    // A JSON body streamed past the JSON limit.
    let mut json = b"{\"input\": [".to_vec();
    json.extend(std::iter::repeat_n(b' ', 3000));
    let req =
        Request::post("/api/v1/fixture").header("content-type", "application/json").body(Body::from(json)).unwrap();
    let (status, body) = split(app.send(req).await).await;
    assert_envelope(status, &body, Code::PayloadTooLarge);
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("1024"), "{body}");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_the_envelope() {
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_envelope(status, &body, Code::NoRoute);
    let req = Request::delete("/api/v1/search/text").body(Body::empty()).unwrap();
    let (status, body) = split(app.send(req).await).await;
    assert_envelope(status, &body, Code::MethodNotAllowed);
    let (status, body) = app.post_json("/api/v1/fixture", serde_json::json!({"wrong": 1})).await;
    assert_envelope(status, &body, Code::InvalidJson);
}

/// A browser client on another origin can read the id an error was logged under.
#[tokio::test]
async fn cors_clients_can_read_the_request_id() {
    let app = TestApp::new(&["--preload", "false", "--cors-origins", "https://shop.example.com"]);
    let req = Request::get("/api/v1/nothing").header("origin", "https://shop.example.com").body(Body::empty()).unwrap();
    let resp = app.send(req).await;
    let exposed = resp.headers().get("access-control-expose-headers").map(|v| v.to_str().unwrap().to_lowercase());
    let exposed = exposed.expect("expose header");
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"), "{exposed}");
    assert!(resp.headers().contains_key("x-request-id"));
}
