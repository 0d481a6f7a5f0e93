//! The web pages: a small site over the JSON API, for people rather than programs.
//!
//! The original skin service was a web site, and a JSON API alone is not the product. Pages are
//! plain HTML templates with one CSS file and a few JavaScript modules, all compiled into the
//! binary (`include_str!`), so the site works offline, needs no Node build step and cannot drift
//! from the binary that serves it. Pages hold no data: the browser fetches everything from the
//! public API, so the page and a script see exactly the same behaviour and errors.
//!
//! - `pages`: the routes that answer HTML, rendered once from a shared layout;
//! - `assets`: `/assets/{version}/…` with content types and year-long caching; `version` is a
//!   hash of every asset, so a new binary changes every asset URL and no browser keeps stale code.

mod assets;
mod pages;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// Routes of the web pages and their static assets; merge into the application router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/analyze", get(pages::analyze))
        .route("/analyses", get(pages::analyses))
        .route("/analyses/{id}", get(pages::analysis))
        .route("/search", get(pages::search))
        .route("/products", get(pages::products))
        .route("/models", get(pages::models))
        .route("/models/{name}", get(pages::model))
        .route("/api/docs", get(pages::api_docs))
        .route("/favicon.ico", get(assets::favicon))
        .route("/assets/{version}/{*path}", get(assets::serve))
}

#[cfg(test)]
mod tests;
