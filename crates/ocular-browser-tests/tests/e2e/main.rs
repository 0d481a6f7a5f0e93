//! ocular's web pages, used as a person would: in Debian's `chromium`, driven through
//! `chromedriver`, against a real `ocular serve` with the real models.
//!
//! Each test starts its own server (a fresh temporary data directory, a free loopback port,
//! `--models-dir <workspace>/models`) and its own headless browser, so tests share nothing but
//! the binaries; a lock runs them one at a time because a 2-core machine cannot run several
//! browsers and model servers at once without timing out.
//!
//! - Needs: `target/<profile>/ocular` (built by `cargo build -p ocular`, or `$OCULAR_BIN`), the
//!   models (`ocular models fetch`), and the browser (`scripts/install-browser.sh`).
//! - Without chromium/chromedriver the tests print why and pass, unless `OCULAR_REQUIRE_BROWSER`
//!   is set (CI sets it), in which case they fail.
//! - On failure a screenshot goes to `target/screenshots/` (or `$OCULAR_SCREENSHOTS`), and the
//!   page's status messages, the browser console and the server log are printed. With
//!   `OCULAR_SCREENSHOTS=dir` every test also saves a screenshot at each checkpoint.

mod harness;

mod analyze;
mod catalog;
mod models;
mod pages;
mod products;
mod search;
