//! Search over HTTP on the demo catalog with the real models: by photo, by URL (allowed and
//! refused), by text (hybrid), filters, threshold, pagination, index life cycle, raw embeddings.

use serde_json::json;

use crate::catalog_app::{CatalogApp, ImageServer, ids};
use crate::common::{photo, workspace_root};

/// The demo catalog, imported with the same code as `ocular import`.
async fn demo(extra: &[&str]) -> CatalogApp {
    let app = CatalogApp::new(extra);
    let catalog = app.state.catalog.clone().expect("search is configured");
    tokio::task::spawn_blocking(move || {
        let embedders = tokio::runtime::Handle::current().block_on(catalog.embedders()).expect("models");
        let options = ocular_search::import::ImportOptions {
            format: ocular_search::import::Format::Jsonl,
            batch_size: 8,
            shared: false,
        };
        let report = ocular_search::import::import_file(
            &catalog,
            embedders.as_ref(),
            &ocular_search::ImageLoader::local(ocular_image::Limits::default()),
            &workspace_root().join("demo/catalog.jsonl"),
            &options,
            &mut NoProgress,
        )
        .expect("import");
        assert_eq!((report.written, report.failed), (21, 0));
    })
    .await
    .expect("import task");
    app.loaded().await
}

struct NoProgress;

impl ocular_search::import::Progress for NoProgress {
    fn update(&mut self, _: u64, _: u64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_catalog_over_http() {
    let app = demo(&[]).await;
    let query = photo("motorcycle_right.png");

    let (status, body) = app.form("POST", "/api/v1/search", &[("top_k", "3"), ("threshold", "0")], Some(&query)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body)[0], "dirt-bike-250");
    assert_eq!(body["results"].as_array().unwrap().len(), 3);
    assert_eq!(body["next_offset"], json!(3));
    for stage in ["decode", "embed", "index", "products", "total"] {
        assert!(body["timings_ms"][stage].is_number(), "no {stage} timing: {}", body["timings_ms"]);
    }

    let (status, body) = app.json("POST", "/api/v1/search/text", json!({"query": "a cup of coffee", "top_k": 5})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body)[0], "espresso-cup");
    let top = &body["results"][0];
    assert!(top["score"].as_f64().unwrap() > 0.0 && top["similarity"].as_f64().unwrap() >= 0.2, "{top}");
    assert!(top["signals"]["keyword_rank"].is_number(), "the title matches a word: {top}");

    // The default threshold (0.2) and an explicit one cut results; filters apply.
    let (_, body) = app.form("POST", "/api/v1/search", &[("threshold", "0.8")], Some(&query)).await;
    assert_eq!(ids(&body), ["dirt-bike-250"]);
    let (_, body) = app
        .form("POST", "/api/v1/search", &[("threshold", "-1"), ("category", "garden"), ("top_k", "10")], Some(&query))
        .await;
    let garden = ["decorative-gravel", "dahlia-bouquet", "artificial-grass"];
    assert!(ids(&body).iter().all(|id| garden.contains(&id.as_str())) && ids(&body).len() == 3, "{body}");
    let (_, body) = app
        .json(
            "POST",
            "/api/v1/search/text",
            json!({"query": "poster", "min_price": 19.0, "max_price": 20.0, "threshold": -1}),
        )
        .await;
    assert_eq!(ids(&body), ["moon-poster"], "{body}");

    // Pages of text results tile the ranking.
    let (_, all) =
        app.json("POST", "/api/v1/search/text", json!({"query": "photo print", "threshold": -1, "top_k": 21})).await;
    let mut paged = Vec::new();
    let mut offset = json!(0);
    while let Some(o) = offset.as_u64() {
        let (_, page) = app
            .json(
                "POST",
                "/api/v1/search/text",
                json!({"query": "photo print", "threshold": -1, "top_k": 5, "offset": o}),
            )
            .await;
        paged.extend(ids(&page));
        offset = page["next_offset"].clone();
    }
    assert_eq!(paged, ids(&all));
    assert_eq!(paged.len(), 21);

    // Prometheus sees the indexes and the searches (values are process-wide, names are ours).
    let (_, metrics) = app.get("/metrics").await;
    let metrics = metrics.as_str().expect("text");
    for name in
        ["ocular_search_index_vectors{space=\"image\"}", "ocular_search_index_state", "ocular_search_duration_seconds"]
    {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // Bad options are the client's to fix.
    let (status, body) = app.json("POST", "/api/v1/search/text", json!({"query": "x", "top_k": 0})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_request")));
    let (status, body) = app.json("POST", "/api/v1/search/text", json!({"top_k": 3})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_json")));
    let (status, body) = app.form("POST", "/api/v1/search", &[("top_k", "many")], Some(&query)).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_request")));
    let (status, body) = app.form("POST", "/api/v1/search", &[], Some(b"not an image")).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("image_unreadable")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_url_is_allowed_only_through_the_allow_list() {
    let server = ImageServer::start(photo("motorcycle_right.png")).await;
    let request = json!({"image_url": server.url("/query.png"), "top_k": 5});

    let refused = CatalogApp::new(&[]).loaded().await;
    let (status, body) = refused.json("POST", "/api/v1/search/url", request.clone()).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("url_not_allowed")), "{body}");
    assert_eq!(server.accepted(), 0, "no connection was made");

    let app = demo(&["--url-allow", "127.0.0.1"]).await;
    let (status, body) = app.json("POST", "/api/v1/search/url", request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body)[0], "dirt-bike-250");
    assert!(body["timings_ms"]["fetch"].is_number());
    assert_eq!(server.accepted(), 1);
    let (status, body) = app.json("POST", "/api/v1/search/url", json!({"image_url": "file:///etc/passwd"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("url_not_allowed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_load_in_the_background_and_refuse_mixed_models() {
    let app = CatalogApp::new(&[]);
    // Loading (as `ocular serve` marks it before streaming): liveness answers, search says so.
    app.state.catalog.as_ref().expect("search configured").begin_loading().expect("begin");
    let (status, health) = app.get("/health?verbose=1").await;
    assert_eq!((status, health["search"][0]["state"].clone()), (200, json!("loading")));
    let req = axum::http::Request::post("/api/v1/search/text")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({"query": "cup"}).to_string()))
        .unwrap();
    let resp = app.send(req).await;
    assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("2"));
    let (status, body) = crate::common::split(resp).await;
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("index_loading")), "{body}");

    // Vectors made by another image model are never searched together with new ones.
    let store = app.state.store.clone();
    let mut p = ocular_store::NewProduct::new("old", "Old product");
    p.description = "embedded by an older model".into();
    let stale = [ocular_store::Embedding::new("image", "old-model@0.9", vec![0.1; 1280])];
    store.create_product(&p, &stale).expect("stale product");
    let app = app.reopen(&[]).loaded().await;
    let (status, body) = app.form("POST", "/api/v1/search", &[], Some(&photo("coffee.png"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("reindex_required")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ocular reindex"));
    let (_, health) = app.get("/health?verbose=1").await;
    let image = &health["search"][0];
    assert_eq!(
        (image["space"].clone(), image["state"].clone()),
        (json!("image"), json!("reindex_required")),
        "{health}"
    );
    assert_eq!(image["found"], json!(["old-model@0.9"]));
    assert_eq!(health["search"][1]["state"], json!("ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_embeddings_for_your_own_vector_database() {
    let app = CatalogApp::new(&[]);
    let (status, body) = app.form("POST", "/api/v1/embed/image", &[], Some(&photo("coffee.png"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["dim"].clone(), body["embedding"].as_array().unwrap().len()), (json!(1280), 1280));
    assert_eq!(body["model"], json!("efficientnet-lite0@0.1.0"));
    assert_eq!(body["labels"].as_array().unwrap().len(), 5);
    assert_eq!(body["labels"][0]["name"], json!("espresso"));
    assert!(body["labels"][0]["probability"].as_f64().unwrap() > 0.9);
    let norm: f64 = body["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap().powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-4);

    let (status, body) = app.json("POST", "/api/v1/embed/text", json!({"text": "a photo of a cat"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["dim"].clone(), body["model"].clone()), (json!(384), json!("minilm@0.1.0")));
    let (status, body) = app.json("POST", "/api/v1/embed/text", json!({"text": "  "})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_request")));
}

#[test]
fn the_url_allow_list_is_checked_at_start_up() {
    let ok = crate::common::config(&["--url-allow", "127.0.0.1, images.internal,10.0.0.0/8"]);
    assert!(ok.validate().is_ok());
    let bad = crate::common::config(&["--url-allow", "images.internal,10.0.0.0/99"]);
    let err = bad.validate().unwrap_err();
    assert!(err.contains("OCULAR_URL_ALLOW") && err.contains("10.0.0.0/99"), "{err}");
}

/// "More like this" (issue 19): no upload, the stored photo vector; filters and errors as for
/// every search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_products_over_http() {
    let app = demo(&[]).await;
    let (status, body) = app.get("/api/v1/products/dirt-bike-250/similar?top_k=5&threshold=-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).len(), 5);
    assert!(!ids(&body).contains(&"dirt-bike-250".to_string()), "never itself: {body}");
    assert_eq!(body["next_offset"], json!(5));

    let (status, body) = app.get("/api/v1/products/dirt-bike-250/similar?category=posters&threshold=-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).len(), 4, "astronaut, rocket, deep field, moon: {body}");

    let (status, body) = app.get("/api/v1/products/no-such-product/similar").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = app.get("/api/v1/products/dirt-bike-250/similar?top_k=lots").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");
    let (status, body) = app.get("/api/v1/products/dirt-bike-250/similar?top_k=500").await;
    assert_eq!(status, 400, "{body}");
}

/// Attribute filters and category facets (issue 19) on every search route: the JSON routes
/// take an `attributes` object, the multipart form and the query string its JSON text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_filters_and_facets_over_http() {
    let app = demo(&[]).await;
    let query = photo("motorcycle_right.png");
    let sorted = |body: &serde_json::Value| {
        let mut ids = ids(body);
        ids.sort();
        ids
    };

    // Equality on a string attribute, by photo (multipart), text (JSON) and similar (query).
    let (status, body) = app
        .form(
            "POST",
            "/api/v1/search",
            &[("threshold", "-1"), ("top_k", "10"), ("attributes", r#"{"size_cm": "50x70"}"#)],
            Some(&query),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sorted(&body), ["astronaut-poster", "rocket-launch-poster"]);
    assert_eq!(body["facets"]["category"], json!([{"value": "posters", "count": 2}]), "{body}");
    let (status, body) = app
        .json(
            "POST",
            "/api/v1/search/text",
            json!({"query": "poster", "threshold": -1, "attributes": {"size_cm": "50x50"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sorted(&body), ["deep-field-poster", "moon-poster"]);
    let (status, body) =
        app.get("/api/v1/products/espresso-cup/similar?threshold=-1&attributes=%7B%22colour%22%3A%22red%22%7D").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), ["dirt-bike-250"]);
    // Ranges are inclusive and numeric: the 8 cm sticker is out, the 60 cm decal in; a text
    // attribute ("30x20") never passes a range.
    let (_, body) = app
        .json(
            "POST",
            "/api/v1/search/text",
            json!({"query": "wall", "threshold": -1, "attributes": {"width_cm": {"min": 8.5}}}),
        )
        .await;
    assert_eq!(ids(&body), ["horse-wall-decal"], "{body}");
    let (_, body) = app
        .json(
            "POST",
            "/api/v1/search/text",
            json!({"query": "wall", "threshold": -1, "attributes": {"width_cm": {"min": 8, "max": 60}}}),
        )
        .await;
    assert_eq!(sorted(&body), ["horse-wall-decal", "snake-logo-sticker"], "{body}");
    // A dotted path is accepted on every route and steps into objects only: `width_cm` is a
    // number, so `width_cm.x` is nowhere (the semantics are the store conformance suite's).
    let (status, body) = app
        .json(
            "POST",
            "/api/v1/search/text",
            json!({"query": "wall", "threshold": -1, "attributes": {"width_cm.x": 60}}),
        )
        .await;
    assert_eq!((status, ids(&body)), (200, Vec::<String>::new()), "{body}");
    let (status, body) =
        app.get("/api/v1/products/espresso-cup/similar?threshold=-1&attributes=%7B%22a.b.c.d%22%3A1%7D").await;
    assert_eq!((status, ids(&body)), (200, Vec::<String>::new()), "{body}");
    let (_, body) = app
        .json("POST", "/api/v1/search/url", json!({"image_url": "http://x", "attributes": {"size_cm": {"min": 0}}}))
        .await;
    assert_ne!(body["error"]["code"], json!("invalid_request"), "a valid range is not refused: {body}");

    // Facets count every match above the threshold before paging, not the page: the same on
    // every page, most first then by name, and they follow the filters and the threshold.
    let (_, first) = app.form("POST", "/api/v1/search", &[("threshold", "-1"), ("top_k", "2")], Some(&query)).await;
    let (_, second) =
        app.form("POST", "/api/v1/search", &[("threshold", "-1"), ("top_k", "2"), ("offset", "2")], Some(&query)).await;
    let facets = first["facets"]["category"].as_array().expect("category facets").clone();
    assert_eq!(first["facets"], second["facets"]);
    assert_eq!(facets.iter().map(|f| f["count"].as_u64().unwrap()).sum::<u64>(), 21, "{facets:?}");
    assert_eq!(
        &facets[..3],
        [
            json!({"value": "art", "count": 4}),
            json!({"value": "posters", "count": 4}),
            json!({"value": "garden", "count": 3})
        ]
    );
    let (_, body) = app.form("POST", "/api/v1/search", &[("threshold", "0.8")], Some(&query)).await;
    assert_eq!(body["facets"]["category"], json!([{"value": "vehicles", "count": 1}]), "{body}");
    let (_, body) = app
        .form("POST", "/api/v1/search", &[("threshold", "-1"), ("category", "garden"), ("top_k", "1")], Some(&query))
        .await;
    assert_eq!(body["facets"]["category"], json!([{"value": "garden", "count": 3}]), "{body}");
    // Text search: the facets of a query are the categories of all its results.
    let (_, all) =
        app.json("POST", "/api/v1/search/text", json!({"query": "photo print", "threshold": 0.1, "top_k": 21})).await;
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for r in all["results"].as_array().unwrap() {
        *want.entry(r["product"]["category"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let (_, page) = app
        .json("POST", "/api/v1/search/text", json!({"query": "photo print", "threshold": 0.1, "top_k": 1, "offset": 1}))
        .await;
    let got: std::collections::BTreeMap<String, u64> = page["facets"]["category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "{page}");

    // Bounded input: refused with stable codes before any search runs.
    let text = |attributes: serde_json::Value| json!({"query": "x", "attributes": attributes});
    let many: serde_json::Map<String, serde_json::Value> = (0..9).map(|i| (format!("k{i}"), json!("v"))).collect();
    for bad in [
        json!(many),
        json!({"a..b": "x"}),
        json!({"a.b.c.d.e": "x"}),
        json!({"dims.wi dth": "x"}),
        json!({"k".repeat(65): "x"}),
        json!({"size": ""}),
        json!({"size": "x".repeat(201)}),
        json!({"size": {"min": 5, "max": 1}}),
        json!({"size": {}}),
    ] {
        let (status, body) = app.json("POST", "/api/v1/search/text", text(bad.clone())).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{bad}: {body}");
    }
    for bad in [json!({"size": [1]}), json!({"size": {"min": 1, "step": 2}}), json!(["size"]), json!({"size": true})] {
        let (status, body) = app.json("POST", "/api/v1/search/text", text(bad.clone())).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")), "{bad}: {body}");
    }
    let (status, body) = app.form("POST", "/api/v1/search", &[("attributes", "colour=red")], Some(&query)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = app.get("/api/v1/products/espresso-cup/similar?attributes=colour").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");
}
