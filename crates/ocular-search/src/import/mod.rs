//! Bulk catalog import (`ocular import FILE`): parse, embed in batches, write, resume.
//!
//! - [`parse`]: JSON Lines, CSV and `mongoexport` files into product records;
//! - [`csv`]: CSV through the `csv` crate (quoting, delimiter sniffing, line numbers);
//! - [`source`]: a catalog file read as a stream of records (one chunk in memory at a time);
//! - [`run`]: the resumable run over the store's import bookkeeping.

pub mod csv;
pub mod parse;
pub mod run;
pub mod source;

#[cfg(test)]
mod parse_tests;

pub use parse::{Format, ImageRef, Parsed, Record};
pub use run::{ImportOptions, ImportReport, Progress, begin_import, import_file, run_import};

use std::path::PathBuf;

/// Why an import could not run at all (a bad record never fails the import).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid catalog file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("import bookkeeping failed")]
    Store(#[from] ocular_store::StoreError),
    #[error(transparent)]
    Search(#[from] crate::error::SearchError),
}
