//! Errors of the index, each marked with who is at fault so the server can map it to a status
//! (bad input is the caller's to fix; a failing rescorer is a runtime problem).

/// Who caused an [`IndexError`]: decides between a 4xx and a 5xx answer upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The vector or query given to the index was invalid.
    Input,
    /// The index was built with an impossible configuration (a programming error at start-up).
    Config,
    /// Something outside the caller's control failed (an external rescorer, a full index).
    Runtime,
}

/// Everything that can go wrong when writing to or searching an index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("vector has {got} dimensions, but the index expects {expected}")]
    DimensionMismatch { expected: usize, got: usize },

    #[error("vector contains a NaN or infinite component")]
    NonFinite,

    #[error("vector has zero length, so it has no direction to compare")]
    ZeroVector,

    #[error("invalid index configuration: {0}")]
    InvalidConfig(&'static str),

    #[error("index is full: it holds at most {max} vectors")]
    Capacity { max: usize },

    #[error("rescorer returned a {got}-dimensional vector for id {id}, the index expects {expected}")]
    RescorerDimension { id: u64, expected: usize, got: usize },

    #[error("rescorer failed to fetch full-precision vectors")]
    Rescorer(#[source] Box<dyn std::error::Error + Send + Sync>),

    #[error("id {id} is too large for a compact index (ids must be below 2^32)")]
    IdOutOfRange { id: u64 },

    #[error("the compact index's vector file could not be written")]
    Io(#[source] std::io::Error),
}

impl IndexError {
    /// Who is at fault, for mapping to an HTTP status.
    pub fn fault(&self) -> Fault {
        match self {
            Self::DimensionMismatch { .. } | Self::NonFinite | Self::ZeroVector | Self::IdOutOfRange { .. } => {
                Fault::Input
            }
            Self::InvalidConfig(_) => Fault::Config,
            Self::Capacity { .. } | Self::RescorerDimension { .. } | Self::Rescorer(_) | Self::Io(_) => Fault::Runtime,
        }
    }
}
