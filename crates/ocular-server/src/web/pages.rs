//! HTML pages: one shared layout, one template per page, rendered once per process.
//!
//! Templates contain no request data at all (an analysis page reads its id from its own URL in
//! the browser), so there is nothing to escape on the server and a rendered page can be reused
//! for every request. Placeholders are `{{asset}}` (the versioned asset prefix), and in the
//! layout `{{title}}`, `{{nav}}`, `{{main}}`, `{{script}}`.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::assets;

const LAYOUT: &str = include_str!("../../assets/templates/layout.html");

/// Content-Security-Policy for every page: nothing but this server, no inline script or style.
/// Data from the API (product titles, descriptions) is stranger input; even if some were ever
/// placed into the page as markup by mistake, it could not run a script or load from elsewhere.
/// `blob:` is for previews of the photo being uploaded, which never leave the browser.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The sections of the site, in navigation order: (href, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/analyze", "Analyse a photo"),
    ("/analyses", "Past analyses"),
    ("/search", "Search products"),
    ("/products", "Catalog"),
    ("/models", "Models"),
];

pub(super) struct Page {
    /// The nav entry this page belongs to.
    section: &'static str,
    /// True when the page *is* that entry (not a page inside the section).
    exact: bool,
    title: &'static str,
    body: &'static str,
    /// Module under `assets/js/` that drives the page.
    script: &'static str,
}

pub(super) const PAGES: &[Page] = &[
    Page {
        section: "/",
        exact: true,
        title: "Image AI on small machines",
        body: include_str!("../../assets/templates/home.html"),
        script: "home.js",
    },
    Page {
        section: "/analyze",
        exact: true,
        title: "Analyse a skin photo",
        body: include_str!("../../assets/templates/analyze.html"),
        script: "analyze.js",
    },
    Page {
        section: "/analyses",
        exact: true,
        title: "Past analyses",
        body: include_str!("../../assets/templates/analyses.html"),
        script: "analyses.js",
    },
    Page {
        section: "/analyses",
        exact: false,
        title: "Analysis",
        body: include_str!("../../assets/templates/analysis.html"),
        script: "analysis.js",
    },
    Page {
        section: "/search",
        exact: true,
        title: "Search products",
        body: include_str!("../../assets/templates/search.html"),
        script: "search.js",
    },
    Page {
        section: "/products",
        exact: true,
        title: "Catalog",
        body: include_str!("../../assets/templates/products.html"),
        script: "products.js",
    },
    Page {
        section: "/models",
        exact: true,
        title: "Models",
        body: include_str!("../../assets/templates/models.html"),
        script: "models.js",
    },
    Page {
        section: "/models",
        exact: false,
        title: "Try a model",
        body: include_str!("../../assets/templates/model.html"),
        script: "model.js",
    },
    Page {
        section: "/api/docs",
        exact: true,
        title: "API reference",
        body: include_str!("../../assets/templates/api.html"),
        script: "apidocs.js",
    },
];

/// Index into [`PAGES`] by handler.
const HOME: usize = 0;
const ANALYZE: usize = 1;
const ANALYSES: usize = 2;
const ANALYSIS: usize = 3;
const SEARCH: usize = 4;
const PRODUCTS: usize = 5;
const MODELS: usize = 6;
const MODEL: usize = 7;
const API_DOCS: usize = 8;

fn nav(page: &Page) -> String {
    NAV.iter()
        .map(|&(href, label)| {
            let current = match (href == page.section, page.exact) {
                (true, true) => " aria-current=\"page\"",
                (true, false) => " aria-current=\"true\"",
                _ => "",
            };
            format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
        })
        .collect()
}

pub(super) fn render(page: &Page) -> String {
    let asset = assets::prefix();
    LAYOUT
        .replace("{{title}}", page.title)
        .replace("{{nav}}", &nav(page))
        .replace("{{main}}", page.body)
        .replace("{{script}}", page.script)
        .replace("{{asset}}", &asset)
}

static RENDERED: LazyLock<Vec<String>> = LazyLock::new(|| PAGES.iter().map(render).collect());

fn respond(index: usize) -> Response {
    let html = RENDERED.get(index).cloned().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // Pages are tiny and name the current asset version: always revalidate them.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        ],
        html,
    )
        .into_response()
}

pub(super) async fn home() -> Response {
    respond(HOME)
}

pub(super) async fn analyze() -> Response {
    respond(ANALYZE)
}

pub(super) async fn analyses() -> Response {
    respond(ANALYSES)
}

/// `GET /analyses/{id}`: the same page for any id; its script fetches the analysis and shows
/// the API's own "not found" when there is none.
pub(super) async fn analysis() -> Response {
    respond(ANALYSIS)
}

pub(super) async fn search() -> Response {
    respond(SEARCH)
}

pub(super) async fn products() -> Response {
    respond(PRODUCTS)
}

/// `GET /models`: every served model, listed in the browser from `GET /api/v1/models`.
pub(super) async fn models() -> Response {
    respond(MODELS)
}

/// `GET /models/{name}`: the same page for any name; its script finds the model's card and says
/// so when no such model is served (the list is the API's, so page and API cannot disagree).
pub(super) async fn model() -> Response {
    respond(MODEL)
}

/// `GET /api/docs`: the API reference, rendered in the browser from `/api/v1/openapi.json`.
pub(super) async fn api_docs() -> Response {
    respond(API_DOCS)
}
