//! End-to-end tests of ocular's web pages, driven in Debian's `chromium` through `chromedriver`.
//!
//! This crate holds no code: everything lives in the one integration-test binary
//! `tests/e2e/main.rs`, which starts a real `ocular serve` (the binary built by
//! `cargo build -p ocular`, found in `<workspace>/target/debug/ocular` or at `$OCULAR_BIN`) on
//! a free loopback port and uses the pages as a person would. Install the browser with
//! `scripts/install-browser.sh`; without it the tests skip, unless `OCULAR_REQUIRE_BROWSER` is
//! set (CI sets it), in which case they fail.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
