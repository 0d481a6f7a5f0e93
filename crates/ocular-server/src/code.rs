//! Every stable error code of the API, with its HTTP status, in one table.
//!
//! A code is part of the API: clients branch on it, so it never changes meaning and is never
//! reused. Before this table about fifty codes were string literals spread over six files, and a
//! typo in one (or a library renaming its own code) silently changed what a client saw. Now a
//! handler can only name a [`Code`], the status comes from the same row as the string (one code
//! never answers two statuses), and the OpenAPI document and the README's table are generated
//! from, or checked against, [`Code::ALL`]. meilisearch's `Code` table is the model.
//!
//! Adding a code: add a row (string in snake_case, the status, one line a client can act on),
//! then run the server's tests; `readme_lists_every_code` prints the README row to paste.

use axum::http::StatusCode;

macro_rules! codes {
    ($( $(#[$attr:meta])* $variant:ident = ($status:ident, $name:literal, $doc:literal); )*) => {
        /// A stable error code (see the module docs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( #[doc = $doc] $(#[$attr])* $variant, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$( Code::$variant, )*];

            /// The string clients see in `error.code`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $name, )* }
            }

            /// The HTTP status every response with this code has.
            pub const fn status(self) -> StatusCode {
                match self { $( Code::$variant => StatusCode::$status, )* }
            }

            /// What the code means, for the API reference and the README.
            pub const fn description(self) -> &'static str {
                match self { $( Code::$variant => $doc, )* }
            }
        }
    };
}

codes! {
    // 400: the request is wrong; the message says what to fix.
    InvalidRequest = (BAD_REQUEST, "invalid_request", "A search option or request field is out of range.");
    InvalidInput = (BAD_REQUEST, "invalid_input", "A stored value is invalid (a field, a vector size).");
    InvalidProduct = (BAD_REQUEST, "invalid_product", "A product field is missing or invalid.");
    InvalidJson = (BAD_REQUEST, "invalid_json", "The JSON body cannot be parsed or lacks a required field.");
    InvalidBody = (BAD_REQUEST, "invalid_body", "The request body cannot be read.");
    InvalidMultipart = (BAD_REQUEST, "invalid_multipart", "The multipart form cannot be read or has too many fields.");
    InvalidField = (BAD_REQUEST, "invalid_field", "A form field is not UTF-8 text.");
    FieldTooLong = (BAD_REQUEST, "field_too_long", "A form text field is longer than 16 KiB.");
    MissingImage = (BAD_REQUEST, "missing_image", "The form has no non-empty image file.");
    InvalidQuery = (BAD_REQUEST, "invalid_query", "A query-string parameter is not valid.");
    InvalidPath = (BAD_REQUEST, "invalid_path", "A path parameter is not valid.");
    InvalidAge = (BAD_REQUEST, "invalid_age", "`age` is not a number from 0 to 120.");
    InvalidSex = (BAD_REQUEST, "invalid_sex", "`sex` is not one of female, male, unknown.");
    InvalidLocation = (BAD_REQUEST, "invalid_location", "`location` is not one of the body sites listed.");
    InvalidLabels = (BAD_REQUEST, "invalid_labels", "`labels` is empty, repeated, too many or too long.");
    LabelsNeedClip = (BAD_REQUEST, "labels_need_clip", "Free-text labels need the CLIP search models.");
    HostNotAllowed = (BAD_REQUEST, "host_not_allowed", "The Host header is not one this server answers to.");
    UrlInvalid = (BAD_REQUEST, "url_invalid", "The image URL cannot be parsed.");
    UrlNotAllowed = (BAD_REQUEST, "url_not_allowed", "The image URL's scheme, credentials or address are refused.");
    ImageUnreadable = (BAD_REQUEST, "image_unreadable", "The upload is empty, not an image, or corrupt.");
    InvalidModelInput = (BAD_REQUEST, "invalid_model_input", "A numeric input the model declares is missing, malformed or the wrong length, or a field is not one of its inputs.");
    // 401, 403
    Unauthorized = (UNAUTHORIZED, "unauthorized", "A valid API key is required.");
    CrossSiteRequest = (FORBIDDEN, "cross_site_request", "A browser on another site may not change anything here.");
    // 404, 405
    NotFound = (NOT_FOUND, "not_found", "No such product, analysis or image (or no access to it).");
    NoRoute = (NOT_FOUND, "no_route", "No route has this path.");
    ModelNotConfigured = (NOT_FOUND, "model_not_configured", "The model this route needs is not installed.");
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed", "The route exists but not with this method.");
    // 408
    BodyTimeout = (REQUEST_TIMEOUT, "body_timeout", "The request body stopped arriving, or arrived slower than the minimum rate.");
    // 409
    Conflict = (CONFLICT, "conflict", "The write conflicts with stored data.");
    ReindexRequired = (CONFLICT, "reindex_required", "Stored embeddings come from another model; run `ocular reindex`.");
    ConcurrentUpdate = (CONFLICT, "concurrent_update", "The product changed meanwhile; retry.");
    ModelReloadFailed = (CONFLICT, "model_reload_failed", "A replaced model could not be loaded; the model served before keeps serving.");
    // 412
    PreconditionFailed = (PRECONDITION_FAILED, "precondition_failed", "The product changed since the ETag given in If-Match.");
    // 413, 415, 422
    PayloadTooLarge = (PAYLOAD_TOO_LARGE, "payload_too_large", "The body is larger than this route accepts.");
    ImageTooLarge = (PAYLOAD_TOO_LARGE, "image_too_large", "The image file is larger than the limit.");
    ImageTooManyPixels = (PAYLOAD_TOO_LARGE, "image_too_many_pixels", "The image has more pixels than the limit.");
    ImageExceedsMemoryBudget = (PAYLOAD_TOO_LARGE, "image_exceeds_memory_budget", "Processing this image needs more memory than the whole budget.");
    UnsupportedContentType = (UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type", "The body's Content-Type is not the one this route reads.");
    UnsupportedFormat = (UNSUPPORTED_MEDIA_TYPE, "unsupported_format", "The image format is not JPEG, PNG or WebP.");
    ImageAspectRatio = (UNPROCESSABLE_ENTITY, "image_aspect_ratio", "One side of the image is over 40 times the other.");
    NotASkinPhoto = (UNPROCESSABLE_ENTITY, "not_a_skin_photo", "The photo does not look like skin (retry with ?force=true).");
    UrlTooLarge = (UNPROCESSABLE_ENTITY, "url_too_large", "The image at the URL is larger than the limit.");
    UrlNotAnImage = (UNPROCESSABLE_ENTITY, "url_not_an_image", "The URL does not serve an image.");
    InvalidCatalog = (UNPROCESSABLE_ENTITY, "invalid_catalog", "The uploaded catalog file cannot be read at all (not UTF-8, a quote or array never closed).");
    // 500: this service failed; logged with its cause, the body stays generic.
    Internal = (INTERNAL_SERVER_ERROR, "internal", "An internal error; it has been logged.");
    StorageError = (INTERNAL_SERVER_ERROR, "storage_error", "The database failed.");
    HeatmapShapeMismatch = (INTERNAL_SERVER_ERROR, "heatmap_shape_mismatch", "A heatmap had the wrong size (a bug).");
    ImageEncodeFailed = (INTERNAL_SERVER_ERROR, "image_encode_failed", "Encoding an image this server made failed.");
    // 502, 504: the remote host of an image URL failed.
    UrlFetchFailed = (BAD_GATEWAY, "url_fetch_failed", "The image URL could not be fetched.");
    UrlTooManyRedirects = (BAD_GATEWAY, "url_too_many_redirects", "The image URL redirected too often.");
    UrlTimeout = (GATEWAY_TIMEOUT, "url_timeout", "The image URL did not answer in time.");
    // 503: try again later (Retry-After says when).
    Overloaded = (SERVICE_UNAVAILABLE, "overloaded", "The server is at capacity.");
    MemoryBudgetExceeded = (SERVICE_UNAVAILABLE, "memory_budget_exceeded", "Requests in flight hold the memory this one needs.");
    BodyBudgetExceeded = (SERVICE_UNAVAILABLE, "body_budget_exceeded", "Bodies being received hold the whole in-flight budget.");
    RequestTimeout = (SERVICE_UNAVAILABLE, "request_timeout", "The request took longer than the server's limit.");
    ModelUnavailable = (SERVICE_UNAVAILABLE, "model_unavailable", "The model failed to load; it is retried.");
    StorageBusy = (SERVICE_UNAVAILABLE, "storage_busy", "No database connection became free in time.");
    IndexLoading = (SERVICE_UNAVAILABLE, "index_loading", "The search index is still loading.");
    ImportBusy = (SERVICE_UNAVAILABLE, "import_busy", "As many import jobs as the server runs at once are running.");
    UrlFetchUnavailable = (SERVICE_UNAVAILABLE, "url_fetch_unavailable", "Fetching URLs is disabled on this server.");
}

impl Code {
    /// The code with this string, if there is one.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The README's table of codes, one row per code (`readme_lists_every_code` checks it).
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | status | meaning |\n|---|---|---|\n");
        for c in Code::ALL {
            out.push_str(&format!("| `{}` | {} | {} |\n", c.as_str(), c.status().as_u16(), c.description()));
        }
        out
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_unique_snake_case_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c}");
            assert!(c.status().is_client_error() || c.status().is_server_error(), "{c}");
            assert_eq!(Code::parse(c.as_str()), Some(*c));
        }
    }

    /// The README's table is this table: a code added here without its row fails, with the
    /// row to paste.
    #[test]
    fn readme_lists_every_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let table = Code::markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's error-code table differs from ocular_server::code::Code; paste this:\n\n{table}"
        );
    }
}
