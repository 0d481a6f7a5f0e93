//! /models and /models/{name}: an imported Keras classifier (the committed Xception-like fixture,
//! which takes a photo plus a 4-number `meta` input and allows exact Grad-CAM) is listed, and
//! trying it in the browser shows the same classes and probabilities as the API answers, with
//! the heatmap overlay; a bad input is caught on the page and a bad upload shows the API's own
//! message.

use std::path::Path;
use std::process::Command;

use crate::harness::{TestResult, http, run, run_with_models};
use crate::{ensure, fail};

const FIXTURE: &str = "fixtures/keras/xception_like.keras";
const PHOTO: &str = "fixtures/keras/sklesion/astronaut.png";
const NAME: &str = "shapes";
const LABELS: [&str; 5] = ["circle", "square", "triangle", "star", "cross"];

/// `ocular models import` of the fixture as `shapes`, with named classes, as an operator would.
pub fn import(ocular: &Path, models: &Path) -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let labels = models.join("shapes-labels.txt");
    std::fs::write(&labels, LABELS.join("\n"))?;
    let out = Command::new(ocular)
        .args(["models", "import"])
        .arg(root.join(FIXTURE))
        .args(["--name", NAME, "--labels"])
        .arg(&labels)
        .arg("--models-dir")
        .arg(models)
        .output()?;
    ensure!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    // Only model folders belong in the models folder the server scans.
    std::fs::remove_file(&labels)?;
    Ok(())
}

/// "62.1%" -> 62.1
fn percent(s: &str) -> TestResult<f64> {
    Ok(s.trim().trim_end_matches('%').parse().map_err(|e| format!("{s:?} is not a percentage: {e}"))?)
}

#[test]
fn an_imported_model_is_listed_and_tried_on_a_photo_with_its_classes_and_heatmap() {
    run_with_models("models_try", import, |ctx| async move {
        let page = ctx.page;
        let photo = ctx.root.join(PHOTO);

        // The list comes from GET /api/v1/models: the imported model, with what it takes, and
        // the skin model, which is tried on /analyze.
        page.goto("/models").await?;
        let item = format!("#models li[data-name='{NAME}']");
        let summary = page.text(&format!("{item} .model-summary")).await?;
        ensure!(summary.contains("5 classes"), "the card does not count the classes: {summary}");
        ensure!(summary.contains("meta (4)"), "the card does not name the extra input: {summary}");
        ensure!(summary.contains("heatmap available"), "the card does not offer the heatmap: {summary}");
        if page.texts("#models li[data-name='sklesion'] a[href$='/analyze']").await?.is_empty() {
            fail!("the skin model is not listed with a link to /analyze");
        }
        page.checkpoint("list").await;
        page.click(&format!("{item} a")).await?;
        page.wait_for("the model page", &format!("return location.pathname === '/models/{NAME}'"), vec![]).await?;

        // The form asks for the extra input by its name, with a label and a hint.
        page.visible("#predict-form").await?;
        ensure!(page.text("#model-name").await? == format!("Try {NAME}"), "the heading does not name the model");
        ensure!(page.text("label[for='extra-meta']").await? == "meta", "the meta field is not labelled");
        ensure!(
            page.text("#extra-meta-help").await?.contains("4 numbers"),
            "the meta field does not say what it takes"
        );

        // A wrong count of numbers is caught on the page, before any upload.
        page.choose_file("#image", &photo).await?;
        page.fill("#extra-meta", "1, 2, 3").await?;
        page.click("#predict-submit").await?;
        ensure!(page.text("#status.error").await?.contains("meta needs 4 numbers"), "no message for a short meta");
        let focused = page.client().execute("return document.activeElement.id", vec![]).await?;
        ensure!(focused == "extra-meta", "the faulty field is not focused: {focused}");

        // A file that is not a photo reaches the server; its envelope's message is what the
        // person reads (the same text the API gives a script for the same upload).
        let not_photo = ctx.root.join("crates/ocular-browser-tests/Cargo.toml");
        let (ty, body) = http::multipart(&[("meta", "0.2 0.4 0.6 0.8")], ("image", &not_photo))?;
        let api = http::request(&ctx.base, "POST", &format!("/api/v1/models/{NAME}/predict"), Some((&ty, &body)))?;
        ensure!(
            api.status == 400 || api.status == 415 || api.status == 422,
            "the API accepted a non-photo: {}",
            api.status
        );
        let message = api.json()?["error"]["message"].as_str().unwrap_or_default().to_string();
        ensure!(!message.is_empty(), "the API gave no message");
        page.choose_file("#image", &not_photo).await?;
        page.fill("#extra-meta", "0.2 0.4 0.6 0.8").await?;
        page.click("#predict-submit").await?;
        let shown = page.text("#status.error").await?;
        ensure!(shown == message, "the page shows {shown:?}, the API says {message:?}");
        ensure!(page.texts("#result:not([hidden])").await?.is_empty(), "a result is shown for a failed upload");
        page.checkpoint("api-error").await;

        // A photo: the three best classes, as the API ranks and scores them, and the heatmap.
        page.choose_file("#image", &photo).await?;
        page.fill("#top-k", "3").await?;
        page.click("#predict-submit").await?;
        page.visible("#result").await?;
        let (ty, body) = http::multipart(&[("meta", "0.2 0.4 0.6 0.8")], ("image", &photo))?;
        let api =
            http::request(&ctx.base, "POST", &format!("/api/v1/models/{NAME}/predict?top_k=3"), Some((&ty, &body)))?;
        ensure!(api.status == 200, "the API refused the photo: {}", String::from_utf8_lossy(&api.body));
        let expected = api.json()?["predictions"].as_array().cloned().unwrap_or_default();
        let labels = page.texts(".bars li .bar-label").await?;
        let values = page.texts(".bars li .bar-value").await?;
        ensure!(labels.len() == 3 && values.len() == 3, "expected 3 class bars, got {labels:?}");
        for ((label, value), want) in labels.iter().zip(&values).zip(&expected) {
            ensure!(want["name"] == label.as_str(), "the page ranks {labels:?}, the API {expected:?}");
            let want = want["probability"].as_f64().unwrap_or(-1.0) * 100.0;
            ensure!((percent(value)? - want).abs() < 0.051, "{label}: the page shows {value}, the API {want}%");
            ensure!(LABELS.contains(&label.as_str()), "{label} is not one of the model's classes");
        }
        ensure!(page.text("#top-name").await? == labels[0], "the top class is not the first bar");
        ensure!(page.texts(".bars li.is-top .bar-label").await? == vec![labels[0].clone()], "top class not marked");

        let (w, h) = page.image_loaded("#heatmap").await?;
        ensure!(w >= 16 && h >= 16, "the overlay is only {w}x{h}");
        page.image_loaded("#photo").await?;
        let alt = page.client().execute("return document.querySelector('#heatmap').alt", vec![]).await?;
        ensure!(
            alt.as_str().is_some_and(|a| a.contains(&labels[0])),
            "the overlay's alt text does not name the class: {alt}"
        );
        let opacity = "return getComputedStyle(document.querySelector('#heatmap')).opacity";
        page.click("#heatmap-toggle").await?;
        page.wait_for("the heatmap to fade out", &format!("{opacity} === '0'"), vec![]).await?;
        page.checkpoint("result").await;

        // Without the heatmap the result says so instead of showing a stale one.
        page.click("#gradcam").await?;
        page.click("#predict-submit").await?;
        page.visible("#result").await?;
        ensure!(page.texts("#heatmap").await?.is_empty(), "a heatmap is shown though none was asked for");
        Ok(())
    })
}

#[test]
fn an_unknown_model_page_says_so() {
    run("models_unknown", |ctx| async move {
        let page = ctx.page;
        page.goto("/models/no-such-model").await?;
        let shown = page.text("#status.error").await?;
        ensure!(shown.contains("no-such-model"), "no message naming the missing model: {shown}");
        ensure!(page.texts("#predict-form:not([hidden])").await?.is_empty(), "a form for a model that does not exist");
        Ok(())
    })
}
