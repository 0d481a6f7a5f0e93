//! Skin analysis over HTTP with the real models: refusals, forced analyses, Grad-CAM, stored
//! analyses and their images, field validation, the original `/upload` route.

use serde_json::json;

use crate::common::{TestApp, photo, schema_fits, workspace_root};

fn ellipse() -> Vec<u8> {
    std::fs::read(workspace_root().join("fixtures/keras/sklesion/ellipse.png")).expect("ellipse fixture")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lesion_is_analysed_stored_and_served() {
    let app = TestApp::real(&[]);
    let (status, body) = app
        .post_form(
            "/api/v1/analyze",
            &[("age", "45"), ("sex", "female"), ("location", "trunk")],
            Some(("image", &ellipse())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["input_check"]["is_skin"], json!(true), "{}", body["input_check"]);
    assert_eq!(body["forced"], json!(false));
    let probs = body["probabilities"].as_array().expect("probabilities");
    let codes: Vec<&str> = probs.iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]);
    let sum: f64 = probs.iter().map(|p| p["probability"].as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    let malignant: f64 =
        probs.iter().filter(|p| p["malignant"] == json!(true)).map(|p| p["probability"].as_f64().unwrap()).sum();
    assert!((body["malignant_probability"].as_f64().unwrap() - malignant).abs() < 1e-6);
    // Keras says vasc 0.837 for this image with these metadata (fixtures/keras/sklesion/reference.json).
    assert_eq!(body["prediction"]["code"], json!("vasc"));
    assert!((body["prediction"]["probability"].as_f64().unwrap() - 0.837).abs() < 1e-3, "{}", body["prediction"]);
    let grid = body["heatmap"]["grid"].as_array().expect("grid");
    assert_eq!((grid.len(), grid[0].as_array().unwrap().len()), (8, 8));
    assert_eq!(body["heatmap"]["class"], json!("vasc"));
    assert_eq!(body["model"]["balanced_accuracy"].as_f64().map(|v| (v * 1000.0).round()), Some(723.0));
    assert_eq!(body["model"]["uses_metadata"], json!(true));
    for key in ["decode", "preprocess", "inference", "gradcam", "total"] {
        assert!(body["timings_ms"][key].is_number(), "timings lack {key}");
    }
    assert!(body["disclaimer"].as_str().unwrap().contains("not a diagnosis"));

    // The answer carries the analysis's capability token, shown this once; a stranger without
    // it finds nothing (see privacy.rs for every route).
    let id = body["id"].as_str().expect("id").to_string();
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(body["page_url"], json!(format!("/analyses/{id}#token={token}")));
    let (status, _) = app.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(status, 404, "no token, no analysis");
    let with_token = |req: axum::http::request::Builder| {
        req.header("x-analysis-token", token.as_str()).body(axum::body::Body::empty()).unwrap()
    };
    let (status, stored) =
        crate::common::split(app.send(with_token(axum::http::Request::get(format!("/api/v1/analyses/{id}")))).await)
            .await;
    assert_eq!(status, 200);
    assert_eq!(stored["probabilities"], body["probabilities"]);
    for url in [body["heatmap"]["url"].as_str().unwrap(), body["image_url"].as_str().unwrap()] {
        assert!(url.contains("?token="), "{url}");
        let resp = app.send(axum::http::Request::get(url).body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.headers()["cache-control"], "private, no-store");
    }
    let (status, _) = app.get("/api/v1/analyses").await;
    assert_eq!(status, 401, "only the API key lists analyses");

    let resp = app.send(with_token(axum::http::Request::delete(format!("/api/v1/analyses/{id}")))).await;
    assert_eq!(resp.status(), 204);
    let (status, body) =
        crate::common::split(app.send(with_token(axum::http::Request::get(format!("/api/v1/analyses/{id}")))).await)
            .await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("not_found")));
}

/// The answer leaves before the photo and overlay are drawn (issue 15); images asked for at
/// once wait for the render instead of 404, and are byte for byte the ones the eager path
/// (`ocular analyze`, `analysis::analyze`) draws from the same upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_drawn_after_the_answer_are_the_eager_ones_and_never_missing() {
    use ocular_models::analysis::{self, AnalyzeOptions};
    use ocular_models::skin::{BodySite, Sex, SkinMeta};

    let app = TestApp::real(&[]);
    let upload = ellipse();
    let form = [("age", "45"), ("sex", "female"), ("location", "trunk")];
    let (status, body) = app.post_form("/api/v1/analyze?gradcam=true", &form, Some(("image", &upload))).await;
    assert_eq!(status, 200, "{body}");
    let (heatmap_url, image_url) =
        (body["heatmap"]["url"].as_str().unwrap().to_string(), body["image_url"].as_str().unwrap().to_string());
    // Straight after the answer, while the render may still run.
    let app_ref = &app;
    let get = |url: String| async move {
        let req = axum::http::Request::get(url).body(axum::body::Body::empty()).unwrap();
        let resp = app_ref.send(req).await;
        assert_eq!(resp.status(), 200);
        axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()
    };
    let (served_overlay, served_photo) = tokio::join!(get(heatmap_url), get(image_url));
    assert_eq!(app.state.renders.in_flight(), 0, "the render unregistered once stored");

    let skin = app.state.registry.skin.clone().expect("skin model").get().await.unwrap();
    let objects = app.state.registry.image.as_ref().expect("image model").get().await.unwrap();
    let meta = SkinMeta { age: Some(45.0), sex: Sex::Female, location: BodySite::Trunk };
    let eager = analysis::analyze(
        &skin,
        Some(&objects),
        &upload,
        &app.state.image_limits(),
        meta,
        AnalyzeOptions { gradcam: true, force: false },
    )
    .unwrap();
    assert!(served_overlay == eager.heatmap_jpeg.unwrap(), "overlay differs from the eager render");
    assert!(served_photo == eager.photo_jpeg, "photo differs from the eager render");
    let answered = body["probabilities"][4]["probability"].as_f64().unwrap();
    assert!((answered - f64::from(eager.probabilities[4])).abs() < 1e-6, "{answered} vs {}", eager.probabilities[4]);

    // The stored analysis names both images once they exist.
    let id = body["id"].as_str().unwrap();
    let req = axum::http::Request::get(format!("/api/v1/analyses/{id}"))
        .header("x-analysis-token", body["token"].as_str().unwrap())
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, stored) = crate::common::split(app.send(req).await).await;
    assert_eq!(status, 200);
    assert!(stored["image_url"].is_string() && stored["heatmap"]["url"].is_string(), "{stored}");

    // The answer leaves before the render: its time is pending (null) there, and the stored
    // analysis carries the real one, counted in its total.
    let (answered, kept) = (&body["timings_ms"], &stored["timings_ms"]);
    assert!(answered["render"].is_null(), "{answered}");
    let render = kept["render"].as_f64().unwrap_or_default();
    assert!(render > 0.0, "no render time stored: {kept}");
    let grew = kept["total"].as_f64().unwrap() - answered["total"].as_f64().unwrap();
    assert!((grew - render).abs() < 0.01, "total grew by {grew}, render took {render}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coffee_cup_is_refused_unless_forced() {
    let app = TestApp::real(&[]);
    let coffee = photo("coffee.png");
    let (status, body) = app.post_form("/api/v1/analyze", &[], Some(("image", &coffee))).await;
    assert_eq!((status, body["error"]["code"].clone()), (422, json!("not_a_skin_photo")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("espresso"), "{body}");

    let (status, body) = app.post_form("/api/v1/analyze?force=true&gradcam=false", &[], Some(("image", &coffee))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["forced"].clone(), body["input_check"]["is_skin"].clone()), (json!(true), json!(false)));
    assert!(body["heatmap"].is_null(), "gradcam=false gives no heatmap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_upload_route_and_gradcam_default() {
    let app = TestApp::real(&["--enable-gradcam", "false"]);
    let (status, body) = app.post_form("/upload", &[], Some(("image", &ellipse()))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["heatmap"].is_null(), "ENABLE_GRADCAM=false is the default for requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_and_images_are_clear_4xx() {
    let app = TestApp::real(&[]);
    let img = ellipse();
    for (fields, code) in [
        (vec![("age", "200")], "invalid_age"),
        (vec![("age", "abc")], "invalid_age"),
        (vec![("sex", "robot")], "invalid_sex"),
        (vec![("location", "elbow")], "invalid_location"),
    ] {
        let (status, body) = app.post_form("/api/v1/analyze", &fields, Some(("image", &img))).await;
        assert_eq!((status, body["error"]["code"].clone()), (400, json!(code)), "{fields:?}: {body}");
    }
    let (status, body) = app.post_form("/api/v1/analyze", &[], None).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("missing_image")));
    let (status, body) = app.post_form("/api/v1/analyze", &[], Some(("image", b"GIF89a\x01\x00\x01\x00"))).await;
    assert_eq!((status, body["error"]["code"].clone()), (415, json!("unsupported_format")), "{body}");
    let (status, body) = app.post_form("/api/v1/analyze", &[], Some(("image", &img[..img.len() / 2]))).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("image_unreadable")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_card_reports_the_published_metrics() {
    let app = TestApp::real(&[]);
    let (status, card) = app.get("/api/v1/models/skin").await;
    assert_eq!(status, 200);
    assert_eq!(card["classes"].as_array().map(Vec::len), Some(7));
    assert!((card["test_report"]["balanced_accuracy"].as_f64().unwrap() - 0.7232).abs() < 1e-3);
    assert!(card["test_report"]["per_class"]["mel"]["recall"].is_number());
    assert!(card["not_a_diagnosis"].as_str().unwrap().contains("not a diagnosis"));
    assert_eq!(card["uses_metadata"], json!(true), "sklesion takes age, sex and site");
    // Every key of the real card is in its OpenAPI schema (`SkinCard`), and the check can fail:
    // a key the test report's classes do not have, a wrong type in the metadata encoding.
    let doc = ocular_server::openapi::document();
    let schema =
        &doc["paths"]["/api/v1/models/skin"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(schema["$ref"].is_string(), "not typed: {schema}");
    schema_fits(doc, schema, &card, "card")
        .unwrap_or_else(|e| panic!("the card does not answer its schema: {e}\n{card:#}"));
    for (pointer, value) in [("/test_report/per_class/mel/auc", json!(0.9)), ("/metadata/age_max", json!("90"))] {
        let mut wrong = card.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        wrong.pointer_mut(parent).unwrap()[key] = value;
        assert!(schema_fits(doc, schema, &wrong, "card").is_err(), "{pointer} passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_retention_purges_photos_and_keeps_the_result() {
    let app = TestApp::real(&["--analysis-image-retention-hours", "0"]);
    let (status, body) = app.post_form("/api/v1/analyze", &[], Some(("image", &ellipse()))).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    let token = body["token"].as_str().expect("token").to_string();
    let image_url = body["image_url"].as_str().expect("image url").to_string();
    assert_eq!(app.get(&image_url).await.0, 200, "the photo is there at first");
    // The first tick of the retention task runs at once; with 0 hours every image is due.
    let task = tokio::spawn(ocular_server::retention::run(app.state.clone()));
    let mut purged = false;
    for _ in 0..50 {
        let (status, _) = app.get(&image_url).await;
        if status == 404 {
            purged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    assert!(purged, "the photo is gone after the retention period");
    let (status, stored) = app.get(&format!("/api/v1/analyses/{id}?token={token}")).await;
    assert_eq!(status, 200);
    assert_eq!(stored["probabilities"], body["probabilities"], "the result itself is kept");
}

/// Shutdown waits for the images of analyses already answered (issue 15): the answer leaves
/// before the photo and overlay are drawn, so a server stopped straight after it must still
/// store them, or the client holds an id whose images are gone for good. A real server on a
/// loopback port, because the wait lives in `serve_until`, below the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_images_still_being_drawn() {
    use ocular_store::types::AnalysisImage;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::real(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ocular_server::serve_until(app.state.clone(), listener, async {
        let _ = stopped.await;
    }));

    let boundary = "ocular-shutdown-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"e.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&ellipse());
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let head = format!(
        "POST /api/v1/analyze?gradcam=true HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&text[text.find("\r\n\r\n").expect("headers end") + 4..]).expect("json body");
    let id = json["id"].as_str().expect("id").to_string();

    // Stopped the moment the answer is in: the render may not even have started.
    let _ = stop.send(());
    server.await.expect("server task").expect("server stops cleanly");
    assert_eq!(app.state.renders.in_flight(), 0, "shutdown returned with a render in flight");
    for which in [AnalysisImage::Thumbnail, AnalysisImage::Heatmap] {
        let stored = app.state.store.analysis_image(&id, which).expect("store");
        assert!(stored.is_some_and(|jpeg| jpeg.starts_with(&[0xFF, 0xD8])), "{which:?} not stored at shutdown");
    }
}
