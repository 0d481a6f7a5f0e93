//! Static assets compiled into the binary, served under a content-hashed prefix.
//!
//! Every asset URL is `/assets/{VERSION}/{path}`, where `VERSION` hashes all assets together.
//! That lets responses carry `Cache-Control: immutable` for a year (a phone on a slow link
//! fetches the CSS and scripts once), while a new binary changes every URL. Scripts import each
//! other by relative paths, so an import resolves under the same version as its importer. A
//! request with another version (a page cached before an upgrade) still gets today's file, but
//! with `no-cache`, so it is never pinned for a year under the wrong name.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::ApiPath;

/// One compiled-in file.
pub(super) struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ty:expr) => {
        Asset { path: $path, content_type: $ty, body: include_bytes!(concat!("../../assets/", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

pub(super) static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/drop.js", JS),
    asset!("js/home.js", JS),
    asset!("js/analyze.js", JS),
    asset!("js/result.js", JS),
    asset!("js/analyses.js", JS),
    asset!("js/analysis.js", JS),
    asset!("js/mine.js", JS),
    asset!("js/search.js", JS),
    asset!("js/products.js", JS),
    asset!("js/card.js", JS),
    asset!("js/apidocs.js", JS),
    asset!("js/models.js", JS),
    asset!("js/model.js", JS),
];

/// Hash of every asset's path and bytes (FNV-1a, 64 bits): a cache key, not a security check.
pub(super) static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for a in ASSETS {
        for &b in a.path.as_bytes().iter().chain([0u8].iter()).chain(a.body) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:012x}", h >> 16)
});

/// The URL prefix under which the current assets are served, e.g. `/assets/1a2b3c4d5e6f`.
pub(super) fn prefix() -> String {
    format!("/assets/{}", *VERSION)
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /assets/{version}/{*path}`.
/// Takes [`ApiPath`]: a path that does not decode (`%FF`) is refused in the envelope, not in
/// axum's plain text.
pub(super) async fn serve(ApiPath((version, path)): ApiPath<(String, String)>) -> Result<Response, ApiError> {
    let asset = find(&path).ok_or_else(|| ApiError::NotFound(format!("asset {}", truncate(&path))))?;
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    Ok(respond(asset, cache))
}

/// `GET /favicon.ico`: browsers ask for it whatever the page says; answer with the SVG icon.
pub(super) async fn favicon() -> Result<Response, ApiError> {
    let icon = find("icon.svg").ok_or_else(|| ApiError::NotFound("favicon".into()))?;
    Ok(respond(icon, "public, max-age=86400"))
}

fn respond(asset: &'static Asset, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        asset.body,
    )
        .into_response()
}

/// Paths come from strangers; keep what is echoed in an error message short.
fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}
