//! One span per request, carrying the route template and a request id.
//!
//! Why: an internal error is logged once, where it becomes a response (`error.rs`), but a log
//! line saying "request failed: database is locked" is useless without knowing which request.
//! Every event a request causes — the error line included — runs inside this span, so text logs
//! prefix it with `request{method=POST route=/api/v1/products/{id} request_id=…}` and JSON logs
//! carry it as `span`/`spans` fields.
//!
//! - The route is axum's [`MatchedPath`] (`/api/v1/products/{id}`), never the raw path, so a
//!   stranger cannot fill the logs with arbitrary text (the same reason `metrics.rs` labels by
//!   template); requests no route matched are `unmatched`.
//! - The request id is the client's `x-request-id` when it is a plausible id (1–128 visible ASCII
//!   characters: a proxy's or load balancer's id flows through), else a fresh UUID v4. Either
//!   way the handler sees it in the request's headers and the client gets it back in the
//!   response's, so a user's bug report can quote the id that finds the log lines.
//!
//! The model is axum's `TraceLayer::make_span_with(MatchedPath)`; this is a plain middleware
//! instead because it also owns the request id.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id that is kept.
const MAX_ID_LEN: usize = 128;

/// Middleware: runs the request inside a `request` span and returns its id in `x-request-id`.
pub async fn span(mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = id.to_str().unwrap_or_default(),
    );
    req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(status = resp.status().as_u16(), duration_ms = started.elapsed().as_millis(), "request done");
    });
    resp.headers_mut().insert(REQUEST_ID.clone(), id);
    resp
}

/// The client's id if acceptable, else a new UUID v4.
fn request_id(req: &Request) -> HeaderValue {
    req.headers().get(&REQUEST_ID).filter(|v| acceptable(v.as_bytes())).cloned().unwrap_or_else(|| {
        // A hyphenated UUID is always a valid header value; the fallback is unreachable.
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).unwrap_or(HeaderValue::from_static("invalid-uuid"))
    })
}

/// 1–128 visible ASCII characters: safe to log and to echo, too short to flood anything.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::ApiError;

    /// Log output captured in memory, one JSON object per line.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            let bytes = self.0.lock().expect("lock").clone();
            String::from_utf8(bytes).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
        }
    }

    async fn failing(axum::extract::Path(id): axum::extract::Path<String>) -> Result<&'static str, ApiError> {
        if id == "ok" {
            return Ok("fine");
        }
        Err(ApiError::Internal(Box::new(std::io::Error::other(format!("disk on fire for {id}")))))
    }

    async fn fallback() -> StatusCode {
        tracing::warn!("no such route");
        StatusCode::NOT_FOUND
    }

    /// Built like `crate::router`: routes and a fallback, then the layer.
    fn app() -> Router {
        Router::new().route("/items/{id}", get(failing)).fallback(fallback).layer(axum::middleware::from_fn(span))
    }

    /// Sends one request with the JSON log output captured (the subscriber is this thread's,
    /// and a current-thread runtime keeps the request on this thread).
    async fn send(req: Request<Body>) -> (Response, Vec<serde_json::Value>) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let resp = app().oneshot(req).await.expect("infallible");
        (resp, captured.lines())
    }

    fn get_req(uri: &str) -> axum::http::request::Builder {
        Request::get(uri)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_internal_error_is_logged_once_inside_the_request_span() {
        let req = get_req("/items/42").header("x-request-id", "req-abc.123").body(Body::empty()).expect("request");
        let (resp, lines) = send(req).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[&REQUEST_ID], "req-abc.123", "the client's id comes back");

        let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
        assert_eq!(errors.len(), 1, "logged exactly once: {lines:#?}");
        let error = errors[0];
        assert_eq!(error["span"]["name"], "request", "{error}");
        assert_eq!(error["span"]["route"], "/items/{id}", "the template, not /items/42: {error}");
        assert_eq!(error["span"]["method"], "GET", "{error}");
        assert_eq!(error["span"]["request_id"], "req-abc.123", "{error}");
        assert!(error["fields"]["error"].as_str().is_some_and(|e| e.contains("disk on fire for 42")), "{error}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_without_an_acceptable_id_gets_a_fresh_one() {
        let too_long = "x".repeat(MAX_ID_LEN + 1);
        for header in [None, Some(""), Some("has space"), Some(too_long.as_str())] {
            let mut req = get_req("/items/ok");
            if let Some(h) = header {
                req = req.header("x-request-id", h);
            }
            let (resp, lines) = send(req.body(Body::empty()).expect("request")).await;
            assert_eq!(resp.status(), StatusCode::OK);
            let id = resp.headers()[&REQUEST_ID].to_str().expect("ascii").to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{header:?} -> {id}");
            let done = lines.iter().find(|l| l["fields"]["message"] == "request done").expect("a completion line");
            assert_eq!(done["span"]["request_id"], id.as_str(), "the log and the client see the same id");
            assert_eq!(done["fields"]["status"], 200);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unmatched_requests_are_labelled_so() {
        let (resp, lines) = send(get_req("/nowhere/at/all").body(Body::empty()).expect("request")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().contains_key(&REQUEST_ID));
        let warn = lines.iter().find(|l| l["level"] == "WARN").expect("the fallback's line");
        assert_eq!(warn["span"]["route"], "unmatched", "never the raw path: {warn}");
    }
}
