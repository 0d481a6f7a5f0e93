//! JSON request bodies: small, typed, and only when they say they are JSON.
//!
//! An 18 MB body `{"query":"cat","pad":[0,0,…]}` to `/api/v1/search/text` used to be read whole
//! (the 20 MB upload limit applied) and its unknown `pad` kept in a `serde(flatten)` catch-all
//! as a `serde_json::Value`, ~16 bytes per input byte: one anonymous request lifted peak RSS by
//! 300 MB (issue 16). Here:
//!
//! - a body is at most `OCULAR_MAX_JSON_BYTES` (64 KiB by default; a product, a search or a
//!   text to embed needs far less): a larger `Content-Length` is refused before reading a byte,
//!   a longer stream as soon as it passes the cap, both `413 payload_too_large`;
//! - request types hold only their known fields, without `flatten`: serde skips an unknown
//!   field's value in place (`IgnoredAny`), without building it;
//! - the `Content-Type` must be JSON (`application/json` or `…+json`), else
//!   `415 unsupported_content_type`. Browsers send `text/plain` cross-site without asking
//!   (a "simple" request, no CORS preflight), so accepting it let any web page a user visited
//!   create products and analyses on a server it could reach.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};
use crate::state::AppState;

pub use ocular_app::config::DEFAULT_MAX_JSON_BYTES;

/// Whether the request declares a JSON body.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The request's `Content-Type` as given, for error messages (bounded: it is stranger input).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map_or_else(|| "(none)".to_string(), |v| String::from_utf8_lossy(v.as_bytes()).chars().take(100).collect())
}

/// Reads a JSON body's bytes: the content type checked, at most `max` bytes.
pub async fn read(req: Request, max: usize) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedContentType { expected: "JSON", given: content_type(req.headers()) });
    }
    read_capped(req, max).await
}

/// At most `max` bytes of a body: refused from its `Content-Length` before reading when that is
/// too large, and as soon as the stream passes `max` otherwise.
pub async fn read_capped(req: Request, max: usize) -> Result<Bytes, ApiError> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::PayloadTooLarge { max });
    }
    let limited = http_body_util::Limited::new(req.into_body(), max);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge { max }),
        Err(e) if crate::limits::is_budget_error(e.as_ref()) => Err(ApiError::BodyBudget),
        Err(e) if crate::limits::is_timeout_error(e.as_ref()) => Err(ApiError::BodyTimeout),
        Err(e) => Err(ApiError::bad_request(Code::InvalidBody, format!("the body cannot be read: {e}"))),
    }
}

/// A JSON body parsed into the envelope's errors (axum's own rejection is plain text).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(Code::InvalidJson, format!("the JSON body cannot be read: {e}")))
}

/// Extractor: a JSON body of type `T` under the rules above; every refusal is the envelope.
pub struct ApiJson<T>(pub T);

/// The extractor's former name, kept while handlers move to [`ApiJson`].
pub use self::ApiJson as JsonBody;

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read(req, state.config.json_limit()).await?;
        parse(&bytes).map(ApiJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn json_media_types() {
        for ok in ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"] {
            assert!(is_json(&headers(ok)), "{ok}");
        }
        for no in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "json"] {
            assert!(!is_json(&headers(no)), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    /// Unknown fields are skipped, not kept: the type has nowhere to put them.
    #[test]
    fn unknown_fields_are_skipped() {
        #[derive(serde::Deserialize)]
        struct Q {
            query: String,
        }
        let q: Q = parse(br#"{"pad": [[0, {"a": "b"}], 1e9, "x"], "query": "cat"}"#).unwrap();
        assert_eq!(q.query, "cat");
    }
}
