//! Cross-origin access for browser front-ends on another origin (`OCULAR_CORS_ORIGINS`).
//!
//! Off by default: without CORS headers a browser lets only pages served by ocular itself
//! read its answers, which is right for the built-in web pages and for server-to-server
//! clients (CORS does not concern them). A deployer who serves a front-end elsewhere lists its
//! origins, or `*`. Origins are validated at start-up: a browser sends `scheme://host[:port]`
//! exactly, so an entry with a path or a trailing slash would silently never match, and is
//! refused with the reason instead.
//!
//! Allowed: the API's methods and the headers its clients send (`Content-Type`, and the API
//! key as `Authorization: Bearer` or `X-Api-Key`, see `products::WriteAccess`); `Retry-After`
//! is exposed so a browser client can honour a 503's back-off, and `x-request-id` so it can
//! quote the id an error was logged under. Credentials (cookies) are never
//! allowed: ocular has none, and `*` with credentials is forbidden by the spec anyway.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use ocular_app::origins::{Origins, parse_origins};

/// The layer for a validated configuration; `None` when CORS is off.
pub fn layer(raw: &str) -> Result<Option<CorsLayer>, String> {
    let Some(origins) = parse_origins(raw)? else { return Ok(None) };
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(
            list.iter()
                .map(|o| HeaderValue::from_str(o).map_err(|e| format!("{o:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("x-api-key")])
            .expose_headers([header::RETRY_AFTER, crate::trace::REQUEST_ID.clone()])
            .max_age(Duration::from_secs(600)),
    ))
}
