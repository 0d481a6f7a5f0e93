//! Stored analyses are private by construction (issue 16): with or without `OCULAR_API_KEY`,
//! a stranger can never list, read, download or delete someone else's analysis. The API key
//! sees everything; an analysis's own token opens that analysis and nothing else.

use axum::body::Body;
use axum::http::Request;
use ocular_store::{Analysis, AnalysisImage};
use serde_json::{Value, json};

use crate::common::{TestApp, split};

const KEY: &str = "0123456789abcdef-admin";
const PHOTO: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
const HEATMAP: &[u8] = &[0xFF, 0xD8, 9, 8, 7, 0xFF, 0xD9];

/// Stores an analysis as `POST /api/v1/analyze` does (token hash, photo, heatmap); returns
/// (id, token).
fn stored(app: &TestApp, with_token: bool) -> (String, String) {
    let mut a = Analysis::new(
        json!({"age": 61, "sex": "female", "location": "trunk"}),
        json!({"prediction": {"code": "mel", "name": "Melanoma", "probability": 0.7}, "heatmap": {"class": "mel"}}),
        json!({"total": 80.0}),
    );
    a.thumbnail_jpeg = Some(PHOTO.to_vec());
    a.heatmap_jpeg = Some(HEATMAP.to_vec());
    let (token, hash) = ocular_server::access::new_token();
    if with_token {
        a.token_sha256 = Some(hash);
    }
    app.state.store.insert_analysis(&a).expect("insert");
    (a.id, token)
}

/// Sends `method uri` with optional headers; returns (status, headers, body bytes).
async fn call(
    app: &TestApp,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.send(req.body(Body::empty()).expect("request")).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes().to_vec();
    (status, headers, body)
}

fn code(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).map(|v| v["error"]["code"].clone()).unwrap_or(Value::Null)
}

/// Every way a stranger could reach analysis `id`: all 404 `not_found`, or 401 for the list.
async fn stranger_sees_nothing(app: &TestApp, id: &str, extra: &[(&str, &str)]) {
    let (status, _, body) = call(app, "GET", "/api/v1/analyses", extra).await;
    assert_eq!((status, code(&body)), (401, json!("unauthorized")), "the list: {}", String::from_utf8_lossy(&body));
    for (method, uri) in [
        ("GET", format!("/api/v1/analyses/{id}")),
        ("GET", format!("/api/v1/analyses/{id}/image.jpg")),
        ("GET", format!("/api/v1/analyses/{id}/heatmap.jpg")),
        ("DELETE", format!("/api/v1/analyses/{id}")),
    ] {
        let (status, _, body) = call(app, method, &uri, extra).await;
        assert_eq!((status, code(&body)), (404, json!("not_found")), "{method} {uri} with {extra:?}");
    }
    assert!(app.state.store.get_analysis(id).expect("get").is_some(), "a stranger deleted it");
}

#[tokio::test]
async fn without_a_key_an_analysis_opens_only_with_its_own_token() {
    let app = TestApp::new(&["--preload", "false"]);
    let (id, token) = stored(&app, true);
    let (other_id, other_token) = stored(&app, true);
    let unknown = uuid::Uuid::new_v4().to_string();

    stranger_sees_nothing(&app, &id, &[]).await;
    stranger_sees_nothing(&app, &id, &[("x-analysis-token", "0".repeat(64).as_str())]).await;
    stranger_sees_nothing(&app, &id, &[("x-analysis-token", other_token.as_str())]).await;
    // Not even the key's headers help when no key is configured.
    stranger_sees_nothing(&app, &id, &[("authorization", "Bearer anything-at-all-1234")]).await;
    // An unknown id answers exactly like a hidden one.
    let (s1, _, b1) = call(&app, "GET", &format!("/api/v1/analyses/{id}"), &[]).await;
    let (s2, _, b2) = call(&app, "GET", &format!("/api/v1/analyses/{unknown}"), &[]).await;
    assert_eq!((s1, code(&b1)), (s2, code(&b2)));

    // The holder of the token reads it, without it ever being cached.
    let mine = [("x-analysis-token", token.as_str())];
    let (status, headers, body) = call(&app, "GET", &format!("/api/v1/analyses/{id}"), &mine).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["cache-control"], "no-store");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["id"], json!(id));
    assert!(v.get("token").is_none(), "the token is shown once, at creation");
    let image_url = v["image_url"].as_str().expect("image url").to_string();
    let heatmap_url = v["heatmap"]["url"].as_str().expect("heatmap url").to_string();
    assert!(image_url.ends_with(&format!("?token={token}")), "{image_url}");

    // The image URLs carry the token for an <img>, and are served as inert, uncached images.
    for (url, bytes) in [(&image_url, PHOTO), (&heatmap_url, HEATMAP)] {
        let (status, headers, body) = call(&app, "GET", url, &[]).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(body, bytes);
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["cache-control"], "private, no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("sandbox"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    // The token of one analysis opens nothing of another.
    let (status, _, _) = call(&app, "GET", &format!("/api/v1/analyses/{other_id}/image.jpg?token={token}"), &[]).await;
    assert_eq!(status, 404);

    // The holder deletes it; then it is gone for everyone, and the other one stays.
    let (status, _, _) = call(&app, "DELETE", &format!("/api/v1/analyses/{id}"), &mine).await;
    assert_eq!(status, 204);
    let (status, _, _) = call(&app, "GET", &format!("/api/v1/analyses/{id}"), &mine).await;
    assert_eq!(status, 404);
    assert!(app.state.store.get_analysis(&other_id).expect("get").is_some());
}

#[tokio::test]
async fn the_api_key_lists_reads_and_deletes_every_analysis() {
    let app = TestApp::new(&["--preload", "false", "--api-key", KEY]);
    let (id, token) = stored(&app, true);
    let (legacy, _) = stored(&app, false);

    stranger_sees_nothing(&app, &id, &[]).await;
    stranger_sees_nothing(&app, &id, &[("x-api-key", "0123456789abcdef-wrong")]).await;
    // A token opens its analysis but never the list.
    let (status, _, _) = call(&app, "GET", "/api/v1/analyses", &[("x-analysis-token", token.as_str())]).await;
    assert_eq!(status, 401);
    // An analysis stored before tokens existed opens with the key only.
    stranger_sees_nothing(&app, &legacy, &[("x-analysis-token", token.as_str())]).await;

    let admin = format!("Bearer {KEY}");
    let key = [("authorization", admin.as_str())];
    let (status, headers, body) = call(&app, "GET", "/api/v1/analyses", &key).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["cache-control"], "no-store");
    let list: Value = serde_json::from_slice(&body).expect("json");
    let ids: Vec<&str> = list["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [legacy.as_str(), id.as_str()]);
    for uri in [format!("/api/v1/analyses/{legacy}"), format!("/api/v1/analyses/{legacy}/image.jpg")] {
        assert_eq!(call(&app, "GET", &uri, &key).await.0, 200, "{uri}");
    }
    assert_eq!(call(&app, "DELETE", &format!("/api/v1/analyses/{legacy}"), &key).await.0, 204);
    assert_eq!(call(&app, "GET", &format!("/api/v1/analyses/{legacy}"), &key).await.0, 404);
}

/// Without a key there is no administrator: the list is refused with a message that says
/// how to get one.
#[tokio::test]
async fn listing_needs_a_configured_key() {
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.get("/api/v1/analyses").await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));
    assert!(body["error"]["message"].as_str().unwrap().contains("OCULAR_API_KEY"), "{body}");
}

/// The retention purge removes the images; the token still opens the result.
#[tokio::test]
async fn purged_images_leave_the_result_readable_by_its_token() {
    let app = TestApp::new(&["--preload", "false"]);
    let (id, token) = stored(&app, true);
    assert_eq!(app.state.store.purge_analysis_images_older_than(std::time::Duration::ZERO).expect("purge"), 1);
    assert_eq!(app.state.store.analysis_image(&id, AnalysisImage::Thumbnail).expect("image"), None);
    let (status, body) = split(
        app.send(
            Request::get(format!("/api/v1/analyses/{id}"))
                .header("x-analysis-token", &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["image_url"].is_null() && body["heatmap"]["url"].is_null(), "{body}");
    let (status, _, _) = call(&app, "GET", &format!("/api/v1/analyses/{id}/image.jpg?token={token}"), &[]).await;
    assert_eq!(status, 404);
}
