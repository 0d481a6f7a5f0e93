//! CORS: off by default; with `--cors-origins`, preflights from listed origins get the headers
//! and others do not.

use axum::body::Body;
use axum::http::{Request, Response};

use crate::common::TestApp;

async fn preflight(app: &TestApp, origin: &str) -> Response<Body> {
    let req = Request::options("/api/v1/products")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-api-key")
        .body(Body::empty())
        .expect("request");
    app.send(req).await
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().expect("ascii"))
}

#[tokio::test]
async fn default_sends_no_cors_headers() {
    let app = TestApp::new(&["--preload", "false"]);
    let resp = preflight(&app, "https://shop.example.com").await;
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    let resp = app
        .send(Request::get("/health").header("origin", "https://shop.example.com").body(Body::empty()).unwrap())
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn listed_origins_get_the_headers_others_do_not() {
    let app = TestApp::new(&["--preload", "false", "--cors-origins", "https://shop.example.com,http://localhost:3000"]);
    let resp = preflight(&app, "https://shop.example.com").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("https://shop.example.com"));
    let methods = header(&resp, "access-control-allow-methods").expect("methods");
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header(&resp, "access-control-allow-headers").expect("headers").to_ascii_lowercase();
    for h in ["authorization", "x-api-key", "content-type"] {
        assert!(headers.contains(h), "{headers}");
    }

    let resp = preflight(&app, "https://evil.example.net").await;
    assert_eq!(header(&resp, "access-control-allow-origin"), None, "an unlisted origin is not allowed");

    // A simple request from a listed origin: the answer carries the header and exposes Retry-After.
    let resp =
        app.send(Request::get("/health").header("origin", "http://localhost:3000").body(Body::empty()).unwrap()).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("http://localhost:3000"));
    assert!(
        header(&resp, "access-control-expose-headers").is_some_and(|h| h.to_ascii_lowercase().contains("retry-after"))
    );
}

#[tokio::test]
async fn star_allows_any_origin_and_bad_origins_stop_start_up() {
    let app = TestApp::new(&["--preload", "false", "--cors-origins", "*"]);
    let resp = preflight(&app, "https://anyone.example.org").await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));

    let config = crate::common::config(&["--cors-origins", "https://shop.example.com/"]);
    let err = config.validate().expect_err("a trailing slash never matches an Origin header");
    assert!(err.contains("OCULAR_CORS_ORIGINS"), "{err}");
}
