//! Who may see what: the API key, and one capability token per stored analysis.
//!
//! Stored analyses are health data: a photo of someone's skin with their age, sex and body
//! site. The services ocular replaces listed them to anyone, and so did ocular until the key
//! and the tokens below (issue 16). The model, the same with or without `OCULAR_API_KEY`:
//!
//! - **the API key is the administrator**: it lists, reads and deletes every analysis (and
//!   writes the catalog, [`crate::products::WriteAccess`]). Without a configured key there is
//!   no administrator over HTTP at all: nobody can list analyses;
//! - **creating an analysis returns a capability**: a random 256-bit token (from the
//!   operating system's CSPRNG), shown once. Its holder can read, download (photo and heatmap)
//!   and delete *that one* analysis, by sending it as `X-Analysis-Token` or `?token=` (so an
//!   `<img>` can load the photo). Only the token's SHA-256 is stored, so a copy of the
//!   database, a backup or a log of SQL opens nothing; comparisons are constant-time;
//! - **anyone else gets 404**, exactly as for an id that does not exist: a stranger cannot even
//!   learn that an analysis exists. Analyses stored before tokens existed have none, and only
//!   the key opens them.
//!
//! The web page keeps the submitter's own analyses (ids and tokens) in the browser's
//! `localStorage`; the server keeps no list of who made what.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The header that carries an analysis's token.
pub const TOKEN_HEADER: &str = "x-analysis-token";

/// The key a request presents, as `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .or_else(|| header("x-api-key"))
        .map(str::trim)
}

/// Compared in constant time: both sides are hashed first, so neither the secret's content
/// nor its length shows in the timing.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    digests_match(&Sha256::digest(given.as_bytes()), &Sha256::digest(expected.as_bytes()))
}

fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries the configured API key. Always false without one: with no
/// key configured there is no administrator.
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    match (state.config.api_key.as_deref(), presented_key(headers)) {
        (Some(key), Some(given)) => secrets_match(given, key),
        _ => false,
    }
}

/// Proof that the request carries the configured API key; `401 unauthorized` otherwise,
/// including when no key is configured (the message then says how to get one).
pub struct AdminAccess;

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if is_admin(state, &parts.headers) {
            return Ok(AdminAccess);
        }
        Err(ApiError::AdminOnly { key_configured: state.config.api_key.is_some() })
    }
}

/// A fresh token and the hex SHA-256 to store. 256 bits: two v4 UUIDs' 16 bytes each come
/// from the operating system's CSPRNG (`getrandom`); their 6 fixed version/variant bits leave
/// 244 random bits, far beyond guessing.
pub fn new_token() -> (String, String) {
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let hash = token_sha256(&token);
    (token, hash)
}

/// The hex SHA-256 of a token, as stored.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// How a request may open one analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opener {
    /// The API key.
    Admin,
    /// The analysis's token, as given (echoed into the image URLs of the answer).
    Token(String),
}

/// The token a request presents: `X-Analysis-Token`, else `?token=`.
fn presented_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    let query = parts.uri.query()?;
    url_query_value(query, "token")
}

/// One `name=value` pair of a query string. Tokens are hex, so no percent-decoding is
/// needed; a value that is not plain hex simply matches no token.
fn url_query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

/// An analysis id from the path that the request may open: the API key, or the analysis's own
/// token. Anything else — no token, a wrong one, an analysis stored before tokens, an unknown
/// id — is the same `404 not_found`, so a stranger learns nothing.
pub struct AnalysisAccess {
    pub id: String,
    pub opener: Opener,
}

impl FromRequestParts<AppState> for AnalysisAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(Code::InvalidPath, e.body_text()))?;
        let hidden = || ApiError::AnalysisHidden(id.chars().take(100).collect());
        if is_admin(state, &parts.headers) {
            return Ok(AnalysisAccess { id, opener: Opener::Admin });
        }
        // The hash is looked up only when a token is presented: no token, no database call.
        let token = presented_token(parts).filter(|t| !t.is_empty() && t.len() <= 256).ok_or_else(hidden)?;
        let key = id.clone();
        let stored = match state.db(move |s| s.analysis_token_sha256(&key)).await {
            Ok(stored) => stored,
            Err(ApiError::Store(ocular_store::StoreError::NotFound(_))) => return Err(hidden()),
            Err(e) => return Err(e),
        };
        let given = Sha256::digest(token.as_bytes());
        let matches = stored.as_deref().and_then(hex_bytes).is_some_and(|s| digests_match(&given, &s));
        if !matches {
            return Err(hidden());
        }
        Ok(AnalysisAccess { id, opener: Opener::Token(token) })
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ha, token_sha256(&a));
        assert_ne!(ha, hb);
        assert_eq!(hex_bytes(&ha).unwrap().as_slice(), Sha256::digest(a.as_bytes()).as_slice());
        assert_eq!(hex_bytes("abc"), None);
        assert_eq!(hex_bytes("zz"), None);
    }

    #[test]
    fn keys_compare_by_content() {
        assert!(secrets_match("0123456789abcdef", "0123456789abcdef"));
        assert!(!secrets_match("0123456789abcdef", "0123456789abcdeF"));
        assert!(!secrets_match("", "x"));
    }

    #[test]
    fn query_values() {
        assert_eq!(url_query_value("a=1&token=abc", "token").as_deref(), Some("abc"));
        assert_eq!(url_query_value("tokens=abc", "token"), None);
    }
}
