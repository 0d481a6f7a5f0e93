//! Extractors whose rejections are the API's JSON envelope.
//!
//! axum's own `Query` and `Path` reject in plain text (`GET /api/v1/products?limit=x` answered
//! `Failed to deserialize query string: ...` as `text/plain`), which bypassed the error table.
//! Handlers take [`ApiQuery`] and [`ApiPath`] instead (and `crate::json::ApiJson` for bodies,
//! `crate::form::read_form` for multipart forms), so every refusal carries a stable code.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// The query string as `T`; a value that does not parse is `400 invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(Code::InvalidQuery, e.body_text()))
    }
}

/// Path parameters as `T`; one that does not decode is `400 invalid_path`.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| ApiError::bad_request(Code::InvalidPath, e.body_text()))
    }
}
