//! Multipart forms from strangers, read with bounds.
//!
//! axum's `Multipart` streams fields; this reads at most one file field (by name) up to the
//! body limit and small text fields up to [`MAX_TEXT_FIELD`] bytes, and refuses forms with an
//! unreasonable number of fields, so no form can make the server buffer without bound.

use std::collections::HashMap;

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request};
use bytes::Bytes;

use crate::error::{ApiError, Code};
use crate::state::AppState;

pub const MAX_TEXT_FIELD: usize = 16 * 1024;
const MAX_FIELDS: usize = 64;
/// Longest field name: ours are short words, and names are echoed in error messages.
const MAX_NAME: usize = 256;

#[derive(Debug, Default)]
pub struct Form {
    pub file: Option<Bytes>,
    pub fields: HashMap<String, String>,
}

fn multipart_error(e: MultipartError, max: usize) -> ApiError {
    if crate::limits::is_budget_error(&e) {
        ApiError::BodyBudget
    } else if crate::limits::is_timeout_error(&e) {
        ApiError::BodyTimeout
    } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { max }
    } else {
        ApiError::bad_request(Code::InvalidMultipart, format!("the multipart form cannot be read: {}", e.body_text()))
    }
}

/// Reads a form whose file part is named `file_field`; `max` is the body limit it is read under
/// (for the 413's message).
pub async fn read(mut mp: Multipart, file_field: &str, max: usize) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut count = 0;
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(e, max))? {
        count += 1;
        if count > MAX_FIELDS {
            return Err(ApiError::bad_request(Code::InvalidMultipart, format!("more than {MAX_FIELDS} form fields")));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name.len() > MAX_NAME {
            return Err(ApiError::bad_request(
                Code::InvalidMultipart,
                format!("a field name is over {MAX_NAME} bytes"),
            ));
        }
        if name == file_field {
            if form.file.is_some() {
                return Err(ApiError::bad_request(
                    Code::InvalidMultipart,
                    format!("more than one `{file_field}` field"),
                ));
            }
            form.file = Some(collect(field).await.map_err(|e| multipart_error(e, max))?);
            continue;
        }
        let bytes = field.bytes().await.map_err(|e| multipart_error(e, max))?;
        if bytes.len() > MAX_TEXT_FIELD {
            return Err(ApiError::bad_request(
                Code::FieldTooLong,
                format!("field `{name}` is longer than {MAX_TEXT_FIELD} bytes"),
            ));
        }
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request(Code::InvalidField, format!("field `{name}` is not UTF-8 text")))?;
        form.fields.insert(name, text);
    }
    Ok(form)
}

/// A file field's bytes: its chunks are kept as they arrive and joined once at the end, into a
/// buffer of exactly their size. `Field::bytes` grows one buffer by doubling instead, so a
/// stalled upload held up to twice what it had sent, and the in-flight body budget counts
/// each byte once (docs/DEPLOY.md, "Slow uploads").
async fn collect(mut field: axum::extract::multipart::Field<'_>) -> Result<Bytes, MultipartError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        chunks.push(chunk);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            for chunk in chunks.drain(..) {
                all.extend_from_slice(&chunk);
            }
            Bytes::from(all)
        }
    })
}

/// A typed multipart text field; absent or blank is `None`.
pub fn parse_field<T: std::str::FromStr>(form: &Form, name: &str) -> Result<Option<T>, ApiError> {
    form.text(name)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(Code::InvalidRequest, format!("field `{name}` is not valid: {v:?}")))
        })
        .transpose()
}

/// A multipart form from a request, with envelope errors.
pub async fn read_form(req: Request, state: &AppState, file_field: &str) -> Result<Form, ApiError> {
    let mp = Multipart::from_request(req, state).await.map_err(|e| {
        ApiError::bad_request(Code::InvalidMultipart, format!("expected a multipart/form-data body: {}", e.body_text()))
    })?;
    read(mp, file_field, state.config.max_body_bytes).await
}

impl Form {
    /// A trimmed, non-empty text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// The file part, or a 400 naming the field.
    pub fn require_file(&mut self, name: &str) -> Result<Bytes, ApiError> {
        self.file.take().filter(|b| !b.is_empty()).ok_or_else(|| {
            ApiError::bad_request(Code::MissingImage, format!("the form needs a non-empty `{name}` file"))
        })
    }
}
