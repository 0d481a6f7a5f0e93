//! The application's composition, shared by `ocular serve` and every admin command: the one
//! [`Config`] (clap + `OCULAR_*` variables), which models sit behind search
//! ([`search_models`]), the catalog and URL fetcher built from them ([`catalog`]), the
//! retention rules ([`retention`]), the memory probes, budget and allocator tuning
//! ([`memory`]), and the API key file ([`secrets`]).
//!
//! Nothing here speaks HTTP: `ocular-server` builds its routes on top of this crate, and the
//! admin commands (`import`, `search`, `reindex`, `purge`, …) use it without the web crate.

// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod catalog;
pub mod config;
pub mod memory;
pub mod origins;
pub mod retention;
pub mod search_models;
pub mod secrets;

pub use config::Config;
