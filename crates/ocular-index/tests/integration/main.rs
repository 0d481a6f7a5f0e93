//! One integration-test binary for the crate (faster linking, one place to look).

mod behaviour;
mod concurrency;
mod data;
mod exactness;
