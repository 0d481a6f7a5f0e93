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

use axum::http::uri::Authority;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The configured origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    List(Vec<String>),
}

/// Parses `OCULAR_CORS_ORIGINS`: empty is `None` (no CORS), `*` alone, or a comma-separated
/// list of `http(s)://host[:port]`.
pub fn parse_origins(raw: &str) -> Result<Option<Origins>, String> {
    let entries: Vec<&str> = raw.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Ok(None);
    }
    if entries.contains(&"*") {
        if entries.len() > 1 {
            return Err("`*` allows every origin and cannot be combined with a list".into());
        }
        return Ok(Some(Origins::Any));
    }
    entries.into_iter().map(origin).collect::<Result<Vec<_>, _>>().map(|list| Some(Origins::List(list)))
}

fn origin(entry: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{entry:?} is not an origin ({why}); write it as https://host[:port]");
    let lower = entry.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| bad("the scheme must be http or https"))?;
    if rest.contains(['/', '?', '#']) {
        return Err(bad("an origin has no path, not even a trailing slash"));
    }
    if rest.contains('@') {
        return Err(bad("user information is not part of an origin"));
    }
    if rest.is_empty() || rest.parse::<Authority>().is_err() {
        return Err(bad("no valid host"));
    }
    // Browsers send scheme and host in lower case; compare the same way.
    Ok(lower)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_invalid_ones_say_why() {
        assert_eq!(parse_origins(""), Ok(None));
        assert_eq!(parse_origins(" , "), Ok(None));
        assert_eq!(parse_origins("*"), Ok(Some(Origins::Any)));
        assert_eq!(
            parse_origins("https://Shop.Example.com, http://localhost:3000"),
            Ok(Some(Origins::List(vec!["https://shop.example.com".into(), "http://localhost:3000".into()])))
        );
        for (bad, why) in [
            ("https://shop.example.com/", "trailing slash"),
            ("https://shop.example.com/app", "no path"),
            ("shop.example.com", "scheme"),
            ("ftp://shop.example.com", "scheme"),
            ("https://user@shop.example.com", "user information"),
            ("*, https://a.example", "cannot be combined"),
        ] {
            let err = parse_origins(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
