//! `POST /api/v1/products:delete`: many products deleted in one request, with the real search
//! models, so the index is checked as well as the store.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::catalog_app::CatalogApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_products_go_in_one_request() {
    let key = "bulk-key-0123456789ab";
    let app = CatalogApp::new(&["--api-key", key]).loaded().await;
    let write = |method: &str, uri: &str, body: serde_json::Value| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    for (id, title) in
        [("kettle", "Blue enamel kettle"), ("lamp", "Green desk lamp"), ("delete", "A product called delete")]
    {
        let (status, body) = app.call(write("POST", "/api/v1/products", json!({"id": id, "title": title}))).await;
        assert_eq!(status, 201, "{body}");
    }

    // Without the key: refused like every write.
    let (status, body) = app.json("POST", "/api/v1/products:delete", json!({"ids": ["kettle"]})).await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));

    let ids = json!({"ids": ["kettle", "nothing-here", "kettle", "lamp"]});
    let (status, body) = app.call(write("POST", "/api/v1/products:delete", ids)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"deleted": ["kettle", "lamp"], "not_found": ["nothing-here"]}));
    assert_eq!(app.get("/api/v1/products/kettle").await.0, 404);
    let (_, found) = app.json("POST", "/api/v1/search/text", json!({"query": "enamel kettle", "threshold": 0})).await;
    let hits: Vec<&str> =
        found["results"].as_array().unwrap().iter().filter_map(|r| r["product"]["id"].as_str()).collect();
    assert!(!hits.contains(&"kettle") && !hits.contains(&"lamp"), "deleted products are not searched: {hits:?}");
    // A product named `delete` keeps its own URL.
    assert_eq!(app.get("/api/v1/products/delete").await.0, 200);
    // Sending the same list again is harmless.
    let (_, again) = app.call(write("POST", "/api/v1/products:delete", json!({"ids": ["kettle"]}))).await;
    assert_eq!(again, json!({"deleted": [], "not_found": ["kettle"]}));

    // Bounded: no ids, too many ids, unknown fields.
    for bad in [json!({"ids": []}), json!({"ids": vec!["x"; 1001]}), json!({"ids": ["x"], "all": true})] {
        let (status, body) = app.call(write("POST", "/api/v1/products:delete", bad)).await;
        assert_eq!(status, 400, "{body}");
        assert!(matches!(body["error"]["code"].as_str(), Some("invalid_request" | "invalid_json")), "{body}");
    }
}
