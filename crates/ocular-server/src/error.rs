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
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
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
    Conflict { code: &'static str, message: String },
    /// Something the request needs is not ready yet (a search index loading).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String, retry_after_s: u64 },
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// HTTP status and stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized | ApiError::AdminOnly { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::AnalysisHidden(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::UnsupportedContentType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type"),
            ApiError::BodyBudget => (StatusCode::SERVICE_UNAVAILABLE, "body_budget_exceeded"),
            ApiError::CrossSite(_) => (StatusCode::FORBIDDEN, "cross_site_request"),
            ApiError::HostNotAllowed(_) => (StatusCode::BAD_REQUEST, "host_not_allowed"),
            // A request larger than the whole memory budget can never run here: the client must
            // send less (413, no Retry-After); anything else is load and passes (503).
            ApiError::Overloaded(e) if e.is_client_error() => (StatusCode::PAYLOAD_TOO_LARGE, e.code()),
            ApiError::Overloaded(e) => (StatusCode::SERVICE_UNAVAILABLE, e.code()),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "request_timeout"),
            ApiError::ModelUnavailable(ModelError::NotConfigured(_)) => (StatusCode::NOT_FOUND, "model_not_configured"),
            ApiError::ModelUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "model_unavailable"),
            ApiError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Store(StoreError::PoolTimeout { .. }) => (StatusCode::SERVICE_UNAVAILABLE, "storage_busy"),
            // The caller's fault (an invalid field, a wrong vector size): say what to fix.
            ApiError::Store(e) if e.fault() == ocular_store::Fault::Input => (StatusCode::BAD_REQUEST, "invalid_input"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
            ApiError::Image(e) => (image_status(e), e.code()),
            ApiError::NotSkin(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_skin_photo"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Fetch(e) => (fetch_status(e), e.code()),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
        }
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

/// Refusals are the client's to fix; the remote host failing is a bad gateway; its content
/// being unusable is unprocessable.
fn fetch_status(e: &ocular_fetch::FetchError) -> StatusCode {
    match e.code() {
        "url_invalid" | "url_not_allowed" => StatusCode::BAD_REQUEST,
        "url_timeout" => StatusCode::GATEWAY_TIMEOUT,
        "url_too_large" | "url_not_an_image" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_GATEWAY,
    }
}

fn image_status(e: &ocular_image::ImageError) -> StatusCode {
    use ocular_image::ImageError as E;
    match e {
        E::TooLarge { .. } | E::TooManyPixels { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        E::AspectRatio { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ if e.is_client_error() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ocular_models::analysis::AnalyzeError> for ApiError {
    fn from(e: ocular_models::analysis::AnalyzeError) -> Self {
        use ocular_models::analysis::AnalyzeError as A;
        match e {
            A::Image(e) => ApiError::Image(e),
            A::NotSkin(check) => ApiError::NotSkin(check),
            A::Model(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Join(_) | ModelError::Invalid { .. } => ApiError::internal(e),
            other => ApiError::ModelUnavailable(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let expected = matches!(
            self,
            ApiError::Overloaded(_)
                | ApiError::Timeout(_)
                | ApiError::Fetch(_)
                | ApiError::Unavailable { .. }
                | ApiError::BodyBudget
        );
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
        let mut resp = (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response();
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
