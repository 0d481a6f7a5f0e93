//! One integration-test binary for the crate (faster linking, one place to look).

mod behaviour;
mod catalogs;
mod compact;
mod concurrency;
mod data;
mod exactness;
mod snapshot;
