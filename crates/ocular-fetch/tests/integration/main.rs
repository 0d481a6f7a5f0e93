//! End-to-end tests of `ocular-fetch`, against listeners this binary starts on loopback.
//!
//! Safety rule of this suite: nothing here may connect anywhere but 127.0.0.1 or ::1. Refused
//! targets are loopback listeners in disguise, whose accept counters must stay at zero; other
//! ranges (169.254.169.254 above all) appear only as URLs that must be refused before any
//! connect, which `Fetcher::connect_attempts` confirms. As a second line of defence the crate's
//! test build has the `loopback-only` feature, which refuses any non-loopback socket. Names are
//! resolved by a fixed table, so no test queries DNS either.

mod allowed;
mod content;
mod disguises;
mod limits;
mod props;
mod redirects;
mod schemes;
mod server;
mod tls;
