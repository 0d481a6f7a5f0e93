//! The product catalog over HTTP with the real models: CRUD, every write visible to the next
//! search without a restart, nothing lost across a restart, the API key, product photos by URL.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;

use crate::catalog_app::{CatalogApp, ImageServer, form_request, ids};
use crate::common::photo;

fn motorcycle_query() -> Vec<u8> {
    photo("motorcycle_right.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_visible_to_the_next_search_and_survive_a_restart() {
    let app = CatalogApp::new(&[]).loaded().await;
    let cup = photo("coffee.png");
    let fields = [
        ("id", "cup"),
        ("title", "Espresso cup"),
        ("description", "For coffee"),
        ("category", "kitchen"),
        ("price", "9.5"),
        ("currency", "EUR"),
        ("attributes", r#"{"color":"white"}"#),
    ];
    let (status, body) = app.form("POST", "/api/v1/products", &fields, Some(&cup)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["image_url"], json!("/api/v1/products/cup/image"));
    assert_eq!((body["source_url"].clone(), body["attributes"]["color"].clone()), (json!(null), json!("white")));
    assert!(body.get("key").is_none() && body.get("image_sha256").is_none(), "internal fields stay inside: {body}");
    let (status, body) = app.form("POST", "/api/v1/products", &fields, Some(&cup)).await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("conflict")));

    // The stored photo, with its type and a validator.
    let resp = app.send(Request::get("/api/v1/products/cup/image").body(Body::empty()).unwrap()).await;
    assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, "image/png"));
    let etag = resp.headers()["etag"].clone();
    // The upload without its metadata (coffee.png's timestamp chunk): see the strip tests.
    let stored = ocular_image::strip_metadata(&cup).unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes().as_ref(), stored.as_slice());
    let again = Request::get("/api/v1/products/cup/image").header("if-none-match", etag).body(Body::empty()).unwrap();
    assert_eq!(app.send(again).await.status(), 304);

    // Add: the motorcycle is found at once.
    let bike = photo("motorcycle_left.png");
    let (status, _) = app
        .form(
            "POST",
            "/api/v1/products",
            &[("id", "bike"), ("title", "Dirt bike"), ("category", "vehicles"), ("price", "4999")],
            Some(&bike),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app.form("POST", "/api/v1/search", &[("threshold", "0")], Some(&motorcycle_query())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body)[0], "bike");
    assert!(body["results"][0]["score"].as_f64().unwrap() > 0.9, "{body}");

    // Patch the title: the text space follows; the price alone re-embeds nothing.
    let (status, body) = app.json("PATCH", "/api/v1/products/bike", json!({"title": "Red motocross racer"})).await;
    assert_eq!((status, body["title"].clone()), (200, json!("Red motocross racer")), "{body}");
    let (_, body) = app.json("POST", "/api/v1/search/text", json!({"query": "motocross racer", "threshold": 0})).await;
    assert_eq!(ids(&body)[0], "bike", "{body}");
    let (status, body) =
        app.json("PATCH", "/api/v1/products/bike", json!({"price": 4500, "attributes": {"cc": 250}})).await;
    assert_eq!(
        (status, body["price"].clone(), body["image_url"].clone()),
        (200, json!(4500.0), json!("/api/v1/products/bike/image"))
    );

    // Replace the bike's photo with a rocket: the motorcycle query no longer finds it first.
    let (status, body) =
        app.form("PUT", "/api/v1/products/bike", &[("title", "Rocket poster")], Some(&photo("rocket.jpg"))).await;
    assert_eq!((status, body["category"].clone()), (200, json!(null)), "PUT replaces every field: {body}");
    let (_, body) = app.form("POST", "/api/v1/search", &[("threshold", "0.5")], Some(&motorcycle_query())).await;
    assert_eq!(ids(&body), Vec::<String>::new(), "{body}");

    // List, then delete: gone from reads and from search.
    let (status, body) = app.get("/api/v1/products?limit=1").await;
    assert_eq!((status, body["total"].clone(), body["next_offset"].clone()), (200, json!(2), json!(1)));
    let (_, body) = app.get("/api/v1/products?category=kitchen").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let resp = app.send(Request::delete("/api/v1/products/cup").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.get("/api/v1/products/cup").await.0, 404);
    let (_, body) = app.form("POST", "/api/v1/search", &[("threshold", "-1")], Some(&cup)).await;
    assert_eq!(ids(&body), ["bike"]);

    // A restart (a new process over the same database) loses nothing.
    let restarted = app.reopen(&[]).loaded().await;
    let (_, body) =
        restarted.json("POST", "/api/v1/search/text", json!({"query": "rocket poster", "threshold": 0})).await;
    assert_eq!(ids(&body), ["bike"], "{body}");
    let (status, body) = restarted.get("/api/v1/products/bike").await;
    assert_eq!((status, body["title"].clone(), body["attributes"].clone()), (200, json!("Rocket poster"), json!({})));
    let resp = restarted.send(Request::get("/api/v1/products/bike/image").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_api_key_when_one_is_set() {
    let key = "s3cret-key-0123456789";
    let app = CatalogApp::new(&["--api-key", key]).loaded().await;
    let product = json!({"id": "card", "title": "Gift card"});
    let post = |auth: Option<(&str, String)>| {
        let mut req = Request::post("/api/v1/products").header("content-type", "application/json");
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        req.body(Body::from(product.to_string())).unwrap()
    };
    for auth in
        [None, Some(("authorization", "Bearer wrong-key-0123456789".into())), Some(("x-api-key", key[1..].into()))]
    {
        let (status, body) = app.call(post(auth)).await;
        assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));
    }
    assert_eq!(app.call(post(Some(("authorization", format!("Bearer {key}"))))).await.0, 201);
    let delete = Request::delete("/api/v1/products/card").body(Body::empty()).unwrap();
    assert_eq!(app.call(delete).await.0, 401);
    let delete = Request::delete("/api/v1/products/card").header("x-api-key", key).body(Body::empty()).unwrap();
    assert_eq!(app.call(delete).await.0, 204);
    // Reads, searches included, stay open.
    assert_eq!(app.get("/api/v1/products").await.0, 200);
    assert_eq!(app.json("POST", "/api/v1/search/text", json!({"query": "card"})).await.0, 200);
    let unauthorized_form = form_request("POST", "/api/v1/products", &[("id", "x"), ("title", "x")], None);
    assert_eq!(app.call(unauthorized_form).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_photos_by_url_go_through_the_allow_list() {
    let server = ImageServer::start(photo("coffee.png")).await;
    let url = server.url("/cup.png");
    let product = json!({"id": "cup", "title": "Espresso cup", "image_url": url});

    let refused = CatalogApp::new(&[]).loaded().await;
    let (status, body) = refused.json("POST", "/api/v1/products", product.clone()).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("url_not_allowed")), "{body}");
    assert_eq!(server.accepted(), 0, "a refused URL is never connected to");

    let app = CatalogApp::new(&["--url-allow", "127.0.0.1"]).loaded().await;
    let (status, body) = app.json("POST", "/api/v1/products", product).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["source_url"].as_str(), body["image_url"].as_str()),
        (Some(url.as_str()), Some("/api/v1/products/cup/image"))
    );
    assert_eq!(server.accepted(), 1);
    // Sending the product back unchanged keeps the stored photo without fetching it again.
    let (status, body) = app.json("PUT", "/api/v1/products/cup", body).await;
    assert_eq!((status, server.accepted()), (200, 1), "{body}");
    let (_, body) = app.form("POST", "/api/v1/search", &[], Some(&photo("coffee.png"))).await;
    assert_eq!(ids(&body), ["cup"]);
    // A URL the remote host cannot serve is the upstream's failure.
    let dead = json!({"id": "dead", "title": "x", "image_url": server.url("/missing.png")});
    let (status, body) = app.json("POST", "/api/v1/products", dead).await;
    assert_eq!((status, body["error"]["code"].clone()), (502, json!("url_fetch_failed")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_bodies_are_bounded() {
    let app = CatalogApp::new(&["--max-body-bytes", "4096"]);
    let big = json!({"id": "big", "title": "x", "description": "d".repeat(8000)});
    let (status, body) = app.json("POST", "/api/v1/products", big).await;
    assert_eq!((status, body["error"]["code"].clone()), (413, json!("payload_too_large")), "{body}");
    let (status, body) = app.json("POST", "/api/v1/products", json!(["not", "an", "object"])).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_json")));
    let (status, body) = app.json("POST", "/api/v1/products", json!({"id": "no title"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_product")), "{body}");
    let (status, body) = app.json("POST", "/api/v1/products", json!({"id": "a b", "title": "t"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_product")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("id"));
}

/// A JSON write with an optional `If-Match`; returns (status, ETag, body).
async fn write_if(
    app: &CatalogApp,
    method: &str,
    uri: &str,
    if_match: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    let resp = app.send(req.body(Body::from(body.to_string())).unwrap()).await;
    let status = resp.status().as_u16();
    let etag = resp.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, etag, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_turns_a_lost_update_into_412() {
    // Issue 16, finding #11: two clients read version 1 and both write; the second must not
    // silently undo the first.
    let app = CatalogApp::new(&[]).loaded().await;
    let (status, v1, _) =
        write_if(&app, "POST", "/api/v1/products", None, json!({"id": "mug", "title": "Mug", "price": 5.0})).await;
    assert_eq!(status, 201);
    let v1 = v1.expect("a created product has an ETag");
    let resp = app.send(Request::get("/api/v1/products/mug").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), v1, "GET shows the same version");

    let (status, v2, body) =
        write_if(&app, "PATCH", "/api/v1/products/mug", Some(&v1), json!({"title": "Blue mug"})).await;
    assert_eq!(status, 200, "{body}");
    let v2 = v2.unwrap();
    assert_ne!(v2, v1, "a write is a new version");

    // The second client still holds version 1.
    let (status, _, body) = write_if(&app, "PATCH", "/api/v1/products/mug", Some(&v1), json!({"price": 7.0})).await;
    assert_eq!((status, body["error"]["code"].clone()), (412, json!("precondition_failed")), "{body}");
    let (status, _, body) =
        write_if(&app, "PUT", "/api/v1/products/mug", Some(&v1), json!({"title": "Old mug", "price": 5.0})).await;
    assert_eq!(status, 412, "{body}");
    let (_, stored) = app.get("/api/v1/products/mug").await;
    assert_eq!((stored["title"].clone(), stored["price"].clone()), (json!("Blue mug"), json!(5.0)), "v2 survives");

    // `*` means "whatever version exists"; a missing product fails it; a create cannot use it.
    let (status, _, _) =
        write_if(&app, "PUT", "/api/v1/products/mug", Some("*"), json!({"title": "Mug", "price": 6.0})).await;
    assert_eq!(status, 200);
    let (status, _, _) = write_if(&app, "PUT", "/api/v1/products/ghost", Some("*"), json!({"title": "G"})).await;
    assert_eq!(status, 412);
    assert_eq!(app.get("/api/v1/products/ghost").await.0, 404, "nothing was created");
    let (status, _, body) =
        write_if(&app, "POST", "/api/v1/products", Some(&v2), json!({"id": "x", "title": "X"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_product")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_product_photos_lose_their_metadata() {
    // Issue 16, finding #9: a product photo is served to anyone, so what the camera or editor
    // wrote into it (here china.jpg's XMP block) is not stored; the pixels are.
    let app = CatalogApp::new(&[]).loaded().await;
    let upload = photo("china.jpg");
    let has_xmp = |b: &[u8]| b.windows(12).any(|w| w == b"ns.adobe.com");
    assert!(has_xmp(&upload), "the fixture carries XMP");
    let (status, body) =
        app.form("POST", "/api/v1/products", &[("id", "vase"), ("title", "Vase")], Some(&upload)).await;
    assert_eq!(status, 201, "{body}");
    let resp = app.send(Request::get("/api/v1/products/vase/image").body(Body::empty()).unwrap()).await;
    let served = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(!has_xmp(&served), "the XMP block is gone");
    let pixels = |b: &[u8]| ocular_image::image::load_from_memory(b).unwrap().to_rgb8();
    assert!(pixels(&served) == pixels(&upload), "the same image, not a re-encoding");
}

/// Further photos (`images`) in a multipart write, checked as a JSON body's are, within
/// `OCULAR_MAX_PHOTOS_PER_PRODUCT` (here 3: the main photo and two more) on every write route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_writes_send_further_photos_within_the_configured_limit() {
    let server = ImageServer::start(photo("coffee.png")).await;
    let app = CatalogApp::new(&["--url-allow", "127.0.0.1", "--max-photos-per-product", "3"]).loaded().await;
    let (a, b, c) = (server.url("/a.png"), server.url("/b.png"), server.url("/c.png"));
    let two = json!([a, b]).to_string();
    let bike = motorcycle_query();
    // The main photo is a motorcycle upload, the further ones cups fetched by URL.
    let fields = [("id", "mug"), ("title", "Item 1"), ("images", two.as_str())];
    let (status, body) = app.form("POST", "/api/v1/products", &fields, Some(&bike)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["images"], json!([a, b]));
    assert_eq!(server.accepted(), 2);
    let (status, body) =
        app.form("POST", "/api/v1/products", &[("id", "bike"), ("title", "Item 2")], Some(&bike)).await;
    assert_eq!(status, 201, "{body}");
    let resp = app.send(Request::get("/api/v1/products/mug/image?photo=2").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status().as_u16(), 200);
    // A cup finds the product by a further photo: they were embedded, not only listed.
    let (status, body) = app.form("POST", "/api/v1/search", &[], Some(&photo("coffee.png"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).first().map(String::as_str), Some("mug"), "{body}");
    assert!(body["results"][0]["photo"]["index"].as_u64().is_some_and(|i| i >= 1), "{body}");

    // One photo too many, in a form or a JSON body, on POST, PUT and PATCH: refused before
    // anything is fetched.
    let three = json!([a, b, c]).to_string();
    let too_many = [
        app.form("POST", "/api/v1/products", &[("id", "x"), ("title", "x"), ("images", &three)], Some(&bike)).await,
        app.form("PUT", "/api/v1/products/mug", &[("title", "x"), ("images", &three)], Some(&bike)).await,
        app.form("PATCH", "/api/v1/products/mug", &[("images", &three)], None).await,
        app.json("PATCH", "/api/v1/products/mug", json!({"images": [a, b, c]})).await,
        app.json("POST", "/api/v1/products", json!({"id": "y", "title": "y", "images": [a, b, c]})).await,
    ];
    for (status, body) in too_many {
        assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_product")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("at most 2 further photos"), "{body}");
    }
    assert_eq!(server.accepted(), 2, "nothing fetched for a refused write");
    // The same shape rules as a JSON body's `images`: an array of URL strings.
    for bad in ["not json", "[1]", r#"{"url": "x"}"#, r#""https://shop.example/a.png""#] {
        let (status, body) =
            app.form("PUT", "/api/v1/products/mug", &[("title", "x"), ("images", bad)], Some(&bike)).await;
        assert_eq!((status, body["error"]["code"].clone()), (400, json!("invalid_product")), "{bad}: {body}");
    }
    // A form PUT replaces the list; a form PATCH with `[]` clears it, without one keeps it.
    let one = json!([c]).to_string();
    let (status, body) =
        app.form("PUT", "/api/v1/products/mug", &[("title", "Item 1"), ("images", &one)], Some(&bike)).await;
    assert_eq!((status, body["images"].clone()), (200, json!([c])), "{body}");
    let (status, body) = app.form("PATCH", "/api/v1/products/mug", &[("title", "Item 1b")], None).await;
    assert_eq!((status, body["images"].clone()), (200, json!([c])), "{body}");
    let (status, body) = app.form("PATCH", "/api/v1/products/mug", &[("images", "[]")], None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("images").is_none(), "{body}");
}
