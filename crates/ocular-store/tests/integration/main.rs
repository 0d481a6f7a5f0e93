//! The one integration-test binary of ocular-store: the backend conformance suite, instantiated
//! for every backend (SQLite in memory and on a file; PostgreSQL in a fresh schema per case),
//! plus backend-specific tests (persistence across reopen, two handles on one file, transaction
//! atomicity, upgrading a populated version 7 database; two replicas on one database,
//! concurrent claims, pgvector search).

mod conformance;
mod postgres;
mod sqlite;
mod sqlite_upgrade;
