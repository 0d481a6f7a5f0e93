//! Tests of the `ocular` binary as a user runs it.

mod admin;
mod analyze_cli;
mod architecture;
mod backup;
mod import_keras;
mod live_sync;
mod replicas;
mod search_cli;
