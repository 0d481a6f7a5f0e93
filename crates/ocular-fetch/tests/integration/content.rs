//! Only images come back: a declared `image/*`, or no (or a generic) type and an image
//! signature in the body.

use ocular_fetch::{FetchError, Fetched};

use crate::server::{PNG, Reply, TestServer, fetcher, response};

async fn fetch_with(content_type: Option<&str>, body: &[u8]) -> Result<Fetched, FetchError> {
    let headers: Vec<(&str, &str)> = content_type.map(|ct| ("Content-Type", ct)).into_iter().collect();
    let raw = response("200 OK", &headers, body);
    let server = TestServer::start(move |_| Reply::Raw(raw.clone())).await;
    fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{}/", server.port())).await
}

#[tokio::test]
async fn non_image_types_are_refused() {
    for content_type in ["text/html; charset=utf-8", "application/json", "image/", "video/mp4"] {
        let err = fetch_with(Some(content_type), b"<html>hello</html>").await.unwrap_err();
        assert!(matches!(err, FetchError::NotAnImage { .. }), "{content_type}: {err:?}");
        assert_eq!(err.code(), "url_not_an_image");
    }
    // A declared non-image type is refused even if the body is an image: the type is checked
    // before the body is read.
    let err = fetch_with(Some("text/plain"), PNG).await.unwrap_err();
    assert_eq!(err.code(), "url_not_an_image");
}

#[tokio::test]
async fn untyped_bodies_must_carry_an_image_signature() {
    let image = fetch_with(None, PNG).await.unwrap();
    assert_eq!(image.content_type, None);
    let image = fetch_with(Some("application/octet-stream"), b"\xFF\xD8\xFF\xE0jpeg").await.unwrap();
    assert_eq!(image.content_type.as_deref(), Some("application/octet-stream"));

    let err = fetch_with(None, b"<!doctype html><p>not found</p>").await.unwrap_err();
    assert_eq!(err.code(), "url_not_an_image");
    let err = fetch_with(Some("binary/octet-stream"), b"PK\x03\x04zip").await.unwrap_err();
    assert_eq!(err.code(), "url_not_an_image");
}
