//! Errors of the search service, each with a stable code and the party at fault.
//!
//! The server maps [`SearchError`] onto HTTP statuses and codes (in `ocular-server`'s
//! `convert.rs`, the one place that names codes) and the CLI prints it; both need to tell
//! "fix your request" from "wait" (an index still loading) from "an operator must act" (stored
//! embeddings made by another model) from "this service failed". Causes stay attached as
//! sources so logs show the whole chain.

use std::path::PathBuf;

use ocular_fetch::FetchError;
use ocular_index::IndexError;
use ocular_models::ModelError;
use ocular_store::StoreError;

/// Who must act on a [`SearchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request or the input file is wrong; the caller can fix it.
    Input,
    /// A state that passes by itself (an index loading); retry shortly.
    Transient,
    /// An operator must act (run `ocular reindex`).
    Operator,
    /// Something outside the caller's control failed (a model, the database, a remote host).
    Runtime,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A search option or product field is out of range.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Image(#[from] ocular_image::ImageError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot read image file {path}")]
    ImageFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("vector index failed")]
    Index(#[from] IndexError),
    /// The index of a space is being loaded from the store (start-up or after a reindex).
    #[error("the {space} index is still loading; retry in a moment")]
    IndexLoading { space: &'static str },
    /// Stored vectors of a space come from another model than the configured one: mixing them
    /// would rank by meaningless cosines, so the space refuses to search until reindexed.
    #[error(
        "the {space} embeddings were made by {found}, but the configured model is {expected}; run `ocular reindex`"
    )]
    ReindexRequired { space: &'static str, expected: String, found: String },
    /// The index of a space could not be built (a damaged database, a dimension clash).
    #[error("the {space} index failed to load: {message}")]
    IndexFailed { space: &'static str, message: String },
    /// A product changed between reading it and writing the patch computed from it.
    #[error("product {id} was changed by another request meanwhile; retry")]
    Concurrent { id: String },
}

impl SearchError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SearchError::Invalid { field, reason: reason.into() }
    }

    pub fn fault(&self) -> Fault {
        match self {
            SearchError::Invalid { .. } | SearchError::ImageFile { .. } | SearchError::Concurrent { .. } => {
                Fault::Input
            }
            SearchError::Image(e) if e.is_client_error() => Fault::Input,
            SearchError::Fetch(e) if e.is_refusal() => Fault::Input,
            SearchError::Store(e) if e.fault() == ocular_store::Fault::Input => Fault::Input,
            SearchError::Index(e) if e.fault() == ocular_index::Fault::Input => Fault::Input,
            SearchError::IndexLoading { .. } => Fault::Transient,
            SearchError::ReindexRequired { .. } => Fault::Operator,
            _ => Fault::Runtime,
        }
    }
}
