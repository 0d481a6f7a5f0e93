//! The server's one error type and its exhaustive mapping to (HTTP status, stable code).
//!
//! Every error leaves as `{"error": {"code": "...", "message": "..."}}`. Codes are part of the
//! API and never change meaning; client errors say what to fix; internal errors get a generic
//! message and are logged once, here, with their source chain.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ocular_models::{AdmissionError, ModelError};
use ocular_store::StoreError;

pub use crate::code::Code;
use crate::convert;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: Code, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {max} bytes")]
    PayloadTooLarge { max: usize },
    #[error("a valid API key is required for this request")]
    Unauthorized,
    /// Only the API key (the administrator) may do this; `key_configured` says whether a key
    /// exists at all, which changes what the client can do about it.
    #[error("{}", if *key_configured {
        "this needs the API key (Authorization: Bearer KEY or X-Api-Key)"
    } else {
        "this needs the API key, and this server has none (set OCULAR_API_KEY to enable it)"
    })]
    AdminOnly { key_configured: bool },
    /// An analysis that does not exist or that this request may not open: the same answer
    /// for both, so a stranger cannot tell them apart (see `access`).
    #[error(
        "analysis {0} not found; an analysis opens only with the token returned when it was made \
             (X-Analysis-Token or ?token=), or with the API key"
    )]
    AnalysisHidden(String),
    /// A body in a media type the route does not read.
    #[error("this route reads {expected} bodies; the Content-Type was {given:?}")]
    UnsupportedContentType { expected: &'static str, given: String },
    /// Request bodies being received right now already hold the whole in-flight budget.
    #[error("the server is receiving too much data at once; retry in 1 s")]
    BodyBudget,
    /// The client stopped sending its body, or sent it too slowly (`limits::Pace`).
    #[error(
        "the request body stopped arriving, or arrived slower than this server accepts \
         (OCULAR_BODY_TIMEOUT_MS without a byte, or under OCULAR_BODY_MIN_RATE bytes/s on average)"
    )]
    BodyTimeout,
    /// A `Host` this server does not answer to (DNS rebinding, see `limits`).
    #[error("this server does not answer to the host {0:?}; list it in OCULAR_ALLOWED_HOSTS if it should")]
    HostNotAllowed(String),
    /// A browser sent a state-changing request from another site (CSRF).
    #[error("cross-site requests may not change anything here (Sec-Fetch-Site: {0})")]
    CrossSite(String),
    #[error(transparent)]
    Overloaded(#[from] AdmissionError),
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    #[error("the model is not available")]
    ModelUnavailable(#[source] ModelError),
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error(transparent)]
    Image(#[from] ocular_image::ImageError),
    #[error("{}", .0.reason)]
    NotSkin(ocular_models::skin_check::InputCheck),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A URL the client gave could not be fetched (or was refused before any connection).
    #[error(transparent)]
    Fetch(#[from] ocular_fetch::FetchError),
    /// The request conflicts with the server's state (stored embeddings need a reindex, a
    /// concurrent update); the message says what to do.
    #[error("{message}")]
    Conflict { code: Code, message: String },
    /// `If-Match` named another version of the product than the stored one (a lost update
    /// prevented): read it again, then retry with the new `ETag`.
    #[error("{0} has changed since the version named in If-Match; read it again for its current ETag")]
    PreconditionFailed(String),
    /// Any other code of the table, with a message the server wrote for the client (a new
    /// route's refusal needs a row in [`Code`], not a new variant here).
    #[error("{message}")]
    Coded { code: Code, message: String },
    /// Something the request needs is not ready yet (a search index loading).
    #[error("{message}")]
    Unavailable { code: Code, message: String, retry_after_s: u64 },
}

impl ApiError {
    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.status(), StatusCode::BAD_REQUEST, "{code} is not a 400");
        ApiError::BadRequest { code, message: message.into() }
    }

    /// An error with `code` and a message for the client (the status is the code's).
    pub fn coded(code: Code, message: impl Into<String>) -> Self {
        ApiError::Coded { code, message: message.into() }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// The stable code; its status comes from the same row of [`Code`]'s table.
    pub fn code(&self) -> Code {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unavailable { code, .. }
            | ApiError::Coded { code, .. } => *code,
            ApiError::NotFound(_) | ApiError::AnalysisHidden(_) => Code::NotFound,
            ApiError::NoRoute(_) => Code::NoRoute,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            ApiError::Unauthorized | ApiError::AdminOnly { .. } => Code::Unauthorized,
            ApiError::UnsupportedContentType { .. } => Code::UnsupportedContentType,
            ApiError::BodyBudget => Code::BodyBudgetExceeded,
            ApiError::BodyTimeout => Code::BodyTimeout,
            ApiError::CrossSite(_) => Code::CrossSiteRequest,
            ApiError::HostNotAllowed(_) => Code::HostNotAllowed,
            ApiError::PreconditionFailed(_) => Code::PreconditionFailed,
            ApiError::Overloaded(e) => convert::admission(e),
            ApiError::Timeout(_) => Code::RequestTimeout,
            ApiError::ModelUnavailable(ModelError::NotConfigured(_)) => Code::ModelNotConfigured,
            ApiError::ModelUnavailable(_) => Code::ModelUnavailable,
            ApiError::Store(e) => convert::store(e),
            ApiError::Image(e) => convert::image(e),
            ApiError::NotSkin(_) => Code::NotASkinPhoto,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Fetch(e) => convert::fetch(e),
        }
    }

    /// HTTP status and stable code string.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        let code = self.code();
        (code.status(), code.as_str())
    }

    /// Seconds a client should wait before retrying, for 503s.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Overloaded(e) => e.retry_after_s(),
            ApiError::Timeout(_) | ApiError::Store(StoreError::PoolTimeout { .. }) | ApiError::BodyBudget => Some(1),
            ApiError::ModelUnavailable(ModelError::LoadFailed { retry_in_ms, .. }) => {
                Some(retry_in_ms.div_ceil(1000).max(1))
            }
            ApiError::ModelUnavailable(_) => Some(5),
            ApiError::Unavailable { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }
}

/// The one error envelope: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable [`Code`] and a message for people.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// One of the codes of the table (the document lists them with their statuses).
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let expected = matches!(
            self,
            ApiError::Coded { .. }
                | ApiError::Overloaded(_)
                | ApiError::Timeout(_)
                | ApiError::Fetch(_)
                | ApiError::Unavailable { .. }
                | ApiError::BodyBudget
        );
        if status.is_server_error() && matches!(self, ApiError::Coded { .. }) {
            tracing::error!(error.code = code, error = %self, "request failed");
        }
        let message = if status.is_server_error() && !expected {
            tracing::error!(error.code = code, error = %ocular_models::registry::error_chain(&self), "request failed");
            match &self {
                ApiError::ModelUnavailable(e) => format!("the model is not available: {e}"),
                _ => "an internal error occurred; it has been logged".to_string(),
            }
        } else if let ApiError::Image(e) = &self {
            // "image cannot be read" alone does not say what to fix; the cause does.
            ocular_models::registry::error_chain(e)
        } else if let ApiError::Store(e) = &self {
            e.to_string()
        } else if let ApiError::ModelUnavailable(e) = &self {
            // 404 model_not_configured: which model is missing says what to install.
            format!("the model is not available: {e}")
        } else {
            self.to_string()
        };
        let mut resp =
            (status, Json(ErrorBody { error: ErrorDetail { code: code.to_string(), message } })).into_response();
        if let Some(s) = self.retry_after() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_say_whose_fault_they_are() {
        let invalid = ApiError::Store(StoreError::Invalid { field: "price".into(), reason: "negative".into() });
        assert_eq!(invalid.status_code(), (StatusCode::BAD_REQUEST, "invalid_input"));
        let busy = ApiError::Store(StoreError::PoolTimeout { waited_ms: 10_000, size: 8 });
        assert_eq!(busy.status_code(), (StatusCode::SERVICE_UNAVAILABLE, "storage_busy"));
        assert_eq!(busy.retry_after(), Some(1));
        let missing = ApiError::Store(StoreError::NotFound("product x".into()));
        assert_eq!(missing.status_code().0, StatusCode::NOT_FOUND);
    }
}
