//! Library errors into the API's [`ApiError`] and [`Code`]s, in one place.
//!
//! Each library keeps its own error enum with its causes (and, for image, fetch and admission
//! errors, a `code()` string its tests and logs use); this module is the only place that decides
//! what a client sees for them. It matches on variants, never on code strings, so a renamed
//! string cannot silently change a status; `library_codes_agree_with_the_table` checks that the
//! libraries' own strings name the same codes.

use ocular_fetch::FetchError;
use ocular_image::ImageError;
use ocular_models::budget::BudgetError;
use ocular_models::{AdmissionError, ModelError};
use ocular_search::SearchError;
use ocular_store::StoreError;

use crate::code::Code;
use crate::error::ApiError;

/// Refusals are the client's to fix; the remote host failing is a bad gateway; its content
/// being unusable is unprocessable.
pub fn fetch(e: &FetchError) -> Code {
    use FetchError as F;
    match e {
        F::InvalidUrl { .. } => Code::UrlInvalid,
        F::SchemeNotAllowed { .. } | F::CredentialsNotAllowed | F::AddressNotAllowed { .. } => Code::UrlNotAllowed,
        F::Timeout { .. } => Code::UrlTimeout,
        F::TooLarge { .. } => Code::UrlTooLarge,
        F::NotAnImage { .. } => Code::UrlNotAnImage,
        F::TooManyRedirects { .. } => Code::UrlTooManyRedirects,
        // Resolve, connect, TLS, HTTP, status and redirect failures, and any variant added
        // later (the enum is non-exhaustive): the remote side failed.
        _ => Code::UrlFetchFailed,
    }
}

pub fn image(e: &ImageError) -> Code {
    use ImageError as E;
    match e {
        E::TooLarge { .. } => Code::ImageTooLarge,
        E::TooManyPixels { .. } => Code::ImageTooManyPixels,
        E::AspectRatio { .. } => Code::ImageAspectRatio,
        E::UnsupportedFormat(_) => Code::UnsupportedFormat,
        E::Unreadable(_) => Code::ImageUnreadable,
        E::HeatmapShape { .. } => Code::HeatmapShapeMismatch,
        E::Encode(_) => Code::ImageEncodeFailed,
        // A variant added later (non-exhaustive enum): its fault decides 4xx or 5xx.
        _ if e.is_client_error() => Code::ImageUnreadable,
        _ => Code::Internal,
    }
}

/// A request larger than the whole memory budget can never run here: the client must send less
/// (413, no Retry-After); anything else is load and passes (503).
pub fn admission(e: &AdmissionError) -> Code {
    match e {
        AdmissionError::Overloaded { .. } | AdmissionError::QueueTimeout { .. } => Code::Overloaded,
        AdmissionError::Memory(BudgetError::Exceeded { .. }) => Code::MemoryBudgetExceeded,
        AdmissionError::Memory(BudgetError::TooLarge { .. }) => Code::ImageExceedsMemoryBudget,
    }
}

pub fn store(e: &StoreError) -> Code {
    match e {
        StoreError::NotFound(_) => Code::NotFound,
        StoreError::Conflict(_) => Code::Conflict,
        StoreError::Stale(_) => Code::ConcurrentUpdate,
        StoreError::PoolTimeout { .. } => Code::StorageBusy,
        // The caller's fault (an invalid field, a wrong vector size): say what to fix.
        e if e.fault() == ocular_store::Fault::Input => Code::InvalidInput,
        _ => Code::StorageError,
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        let message = e.to_string();
        match e {
            SearchError::Invalid { .. } => ApiError::bad_request(Code::InvalidRequest, message),
            SearchError::Image(e) => ApiError::Image(e),
            SearchError::Fetch(e) => ApiError::Fetch(e),
            SearchError::Model(e) => e.into(),
            SearchError::Store(StoreError::NotFound(what)) => ApiError::NotFound(what),
            // A product write the store refused for its content: the product is what to fix.
            SearchError::Store(e)
                if e.fault() == ocular_store::Fault::Input && !matches!(e, StoreError::Conflict(_)) =>
            {
                ApiError::bad_request(Code::InvalidProduct, message)
            }
            SearchError::Store(e) => ApiError::Store(e),
            SearchError::IndexLoading { .. } => {
                ApiError::Unavailable { code: Code::IndexLoading, message, retry_after_s: 2 }
            }
            SearchError::ReindexRequired { .. } => ApiError::Conflict { code: Code::ReindexRequired, message },
            SearchError::Concurrent { .. } => ApiError::Conflict { code: Code::ConcurrentUpdate, message },
            e @ (SearchError::Index(_) | SearchError::IndexFailed { .. } | SearchError::ImageFile { .. }) => {
                ApiError::internal(e)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The image, fetch and admission crates name their errors' codes themselves (their tests
    /// and logs use them); those strings must be this table's.
    #[test]
    fn library_codes_agree_with_the_table() {
        let images = [
            ImageError::TooLarge { bytes: 2, max: 1 },
            ImageError::TooManyPixels { width: 9, height: 9, max: 1 },
            ImageError::AspectRatio { width: 100, height: 1, max: 40 },
            ImageError::UnsupportedFormat("gif".into()),
            ImageError::Unreadable(ocular_image::DecodeError::Empty),
            ImageError::HeatmapShape { len: 1, width: 2, height: 2 },
        ];
        for e in &images {
            assert_eq!(image(e).as_str(), e.code(), "{e}");
            assert_eq!(image(e).status().is_client_error(), e.is_client_error(), "{e}");
        }
        let fetches = [
            FetchError::CredentialsNotAllowed,
            FetchError::TooManyRedirects { limit: 3 },
            FetchError::NotAnImage { content_type: None },
            FetchError::TooLarge { limit: 1, declared: None },
        ];
        for e in &fetches {
            assert_eq!(fetch(e).as_str(), e.code(), "{e}");
        }
        let admissions = [
            AdmissionError::Overloaded { retry_after_s: 1 },
            AdmissionError::QueueTimeout { waited_ms: 1, retry_after_s: 1 },
        ];
        for e in &admissions {
            assert_eq!(admission(e).as_str(), e.code(), "{e}");
        }
    }

    #[test]
    fn search_errors_map_once() {
        let cases: [(SearchError, Code); 5] = [
            (SearchError::invalid("top_k", "0"), Code::InvalidRequest),
            (SearchError::IndexLoading { space: "image" }, Code::IndexLoading),
            (
                SearchError::ReindexRequired { space: "text", expected: "a".into(), found: "b".into() },
                Code::ReindexRequired,
            ),
            (SearchError::Concurrent { id: "p1".into() }, Code::ConcurrentUpdate),
            (SearchError::IndexFailed { space: "text", message: "x".into() }, Code::Internal),
        ];
        for (e, code) in cases {
            assert_eq!(ApiError::from(e).code(), code);
        }
    }
}
