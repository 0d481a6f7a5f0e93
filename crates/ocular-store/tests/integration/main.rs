//! The one integration-test binary of ocular-store: the backend conformance suite, instantiated
//! for every backend this build has (SQLite in memory and on a file), plus backend-specific
//! tests (persistence across reopen, two handles on one file, transaction atomicity).

mod conformance;
mod sqlite;
