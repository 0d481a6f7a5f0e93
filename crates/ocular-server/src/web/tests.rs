//! Checks that need no server: every page renders completely, every asset a page or script
//! names is compiled in, responses carry the right types and cache rules, and no script can
//! turn API data into markup.

use axum::body::to_bytes;
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::assets::{self, ASSETS, VERSION};
use super::pages::{self, PAGES};
use crate::extract::ApiPath;

fn asset_exists(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

async fn body(resp: Response) -> String {
    String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

#[test]
fn every_page_renders_without_placeholders() {
    for page in PAGES {
        let html = pages::render(page);
        assert!(!html.contains("{{"), "unfilled placeholder in:\n{html}");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains(&format!("/assets/{}/js/", *VERSION)));
        assert!(html.contains("<main id=\"main\""));
    }
}

#[test]
fn every_referenced_asset_is_compiled_in() {
    let prefix = format!("/assets/{}/", *VERSION);
    for page in PAGES {
        let html = pages::render(page);
        for part in html.split(&prefix).skip(1) {
            let path: String = part.chars().take_while(|c| !matches!(c, '"' | '\'' | ' ' | '>')).collect();
            assert!(asset_exists(&path), "page names missing asset {path}");
        }
    }
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let src = std::str::from_utf8(a.body).unwrap();
        for line in src.lines().filter(|l| l.starts_with("import ")) {
            let spec = line.split(['\'', '"']).nth(1).unwrap();
            let target = spec.strip_prefix("./").expect("imports are relative to the importer");
            assert!(asset_exists(&format!("js/{target}")), "{} imports missing {spec}", a.path);
        }
    }
}

#[test]
fn no_script_builds_markup_from_strings() {
    // API data is stranger input: it must reach the page as text, never parsed as HTML.
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let src = std::str::from_utf8(a.body).unwrap();
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!src.contains(sink), "{} uses {sink}", a.path);
        }
    }
}

#[tokio::test]
async fn assets_are_typed_and_cached_for_a_year_under_the_current_version() {
    let resp = assets::serve(ApiPath((VERSION.clone(), "js/api.js".into()))).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(body(resp).await.contains("export async function api"));

    let css = assets::serve(ApiPath((VERSION.clone(), "app.css".into()))).await.unwrap();
    assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");

    // A page from an older binary still gets the file, but never caches it under that name.
    let stale = assets::serve(ApiPath(("0000".into(), "app.css".into()))).await.unwrap();
    assert_eq!(stale.headers()[header::CACHE_CONTROL], "no-cache");

    let missing = assets::serve(ApiPath((VERSION.clone(), "../Cargo.toml".into()))).await.unwrap_err();
    assert_eq!(missing.status_code().0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_html_with_a_strict_content_security_policy() {
    let resp = pages::search().await;
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = body(resp).await;
    assert!(html.contains("<title>Search products · ocular</title>"));
    assert!(html.contains(r#"<a href="/search" aria-current="page">"#));
}

#[tokio::test]
async fn an_analysis_page_marks_its_section_not_itself() {
    let html = body(pages::analysis().await).await;
    assert!(html.contains(r#"<a href="/analyses" aria-current="true">"#));
}

/// The API reference is one of the pages (same CSP, scripts from this server only) and its
/// script is a served asset.
#[tokio::test]
async fn the_api_reference_is_a_page_under_the_same_policy() {
    let resp = pages::api_docs().await;
    let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = body(resp).await;
    assert!(html.contains("<title>API reference · ocular</title>"));
    let script = format!("{}/js/apidocs.js", assets::prefix());
    assert!(html.contains(&script), "{html}");
    assert!(!html.contains("https://"), "no third-party host");
    let js = assets::serve(ApiPath((VERSION.clone(), "js/apidocs.js".into()))).await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(body(js).await.contains("/api/v1/openapi.json"));
}

/// `/models` is a section of its own, and `/models/{name}` is a page inside it, both under the
/// pages' policy and driven by their own scripts.
#[tokio::test]
async fn the_model_pages_are_a_section_under_the_same_policy() {
    let list = pages::models().await;
    let csp = list.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = body(list).await;
    assert!(html.contains("<title>Models · ocular</title>"), "{html}");
    assert!(html.contains(r#"<a href="/models" aria-current="page">"#), "{html}");
    assert!(html.contains(&format!("{}/js/models.js", assets::prefix())), "{html}");

    let one = body(pages::model().await).await;
    assert!(one.contains(r#"<a href="/models" aria-current="true">"#), "{one}");
    assert!(one.contains(&format!("{}/js/model.js", assets::prefix())), "{one}");
    // The result region and the live status exist before any script runs.
    assert!(one.contains(r#"id="status" class="status" role="status" aria-live="polite""#), "{one}");
    assert!(one.contains(r#"<section id="result""#), "{one}");
}

/// The try page reads the model list and posts to the predict route, the two API routes the
/// issue names; a renamed route would leave the page calling nothing.
#[test]
fn the_model_scripts_call_the_models_api() {
    let src = |path: &str| std::str::from_utf8(ASSETS.iter().find(|a| a.path == path).unwrap().body).unwrap();
    assert!(src("js/models.js").contains("api('/api/v1/models')"));
    let model = src("js/model.js");
    assert!(model.contains("api('/api/v1/models')"));
    assert!(model.contains("`/api/v1/models/${encodeURIComponent(name)}/predict`"));
    // Errors come from the API envelope (api.js's ApiError message), not a generic text.
    assert!(model.contains("errorText(err)"));
}

/// Every form control on every page has a label pointing at it (or is a hidden/submit control):
/// a field a screen reader cannot name is a field nobody can fill in by ear.
#[test]
fn every_form_control_has_a_label() {
    for page in PAGES {
        let html = pages::render(page);
        for tag in ["<input", "<select", "<textarea"] {
            for part in html.split(tag).skip(1) {
                let element = &part[..part.find('>').unwrap()];
                if ["type=\"hidden\"", "type=\"submit\""].iter().any(|t| element.contains(t)) {
                    continue;
                }
                let id = element
                    .split("id=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{}: a control without an id: {tag}{element}>", page_title(&html)));
                let labelled = html.contains(&format!("<label for=\"{id}\""))
                    || element.contains("aria-label=")
                    || element.contains("aria-labelledby=");
                assert!(labelled, "{}: control #{id} has no label", page_title(&html));
            }
        }
    }
}

fn page_title(html: &str) -> &str {
    html.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("?")
}
