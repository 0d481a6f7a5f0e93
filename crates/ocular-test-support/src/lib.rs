//! The one rule for tests that need something the repository does not hold: the real models
//! and ONNX Runtime, a PostgreSQL server with pgvector, or a browser.
//!
//! Why it exists: a test that silently passes because its model file is missing is worse than
//! no test, yet a newcomer running `cargo test -p ocular-index` should not need 300 MB of
//! weights and a database first. So the decision is made here, once, by [`Need`]:
//!
//! - **CI requires.** `scripts/test.sh` installs everything and sets `OCULAR_REQUIRE_MODELS=1`,
//!   `OCULAR_REQUIRE_POSTGRES=1` and `OCULAR_REQUIRE_BROWSER=1`; with those set a missing
//!   resource is a test *failure*, never a skip.
//! - **Locally, a test that can skip, skips loudly.** [`Need::available`] prints one
//!   `SKIP (…)` line per distinct reason (straight to stderr, past the harness's output capture,
//!   so it shows on a passing run) naming the command that installs what is missing.
//! - **Helpers that cannot skip fail with the same message.** A helper that must hand back a
//!   value (an app built on ONNX Runtime, say) calls [`Need::require`], which always fails,
//!   telling the reader what to install instead of a bare `unwrap` panic.
//!
//! docs/TESTING.md lists what each crate's tests need.
//!
//! [`hostile`] holds the one generator of hostile image headers that the decoder's tests, the
//! server's hostile corpus and the load generator's attacks share.

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod hostile;

use std::collections::HashSet;
use std::fmt::Display;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Something outside the repository that a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    /// ONNX Runtime and the real models under `./models` (and their source weights under
    /// `./models/.cache/src`), as `ocular models fetch` installs them.
    Models,
    /// A PostgreSQL server with pgvector (`OCULAR_TEST_DATABASE_URL`, or the one
    /// `scripts/pg-test-server.sh start` runs).
    Postgres,
    /// Chromium and chromedriver.
    Browser,
}

impl Need {
    /// The environment variable that turns a skip into a failure.
    pub const fn require_var(self) -> &'static str {
        match self {
            Need::Models => "OCULAR_REQUIRE_MODELS",
            Need::Postgres => "OCULAR_REQUIRE_POSTGRES",
            Need::Browser => "OCULAR_REQUIRE_BROWSER",
        }
    }

    /// The command that installs it, for the message.
    pub const fn install_hint(self) -> &'static str {
        match self {
            Need::Models => "cargo run -p ocular -- models fetch",
            Need::Postgres => "scripts/pg-test-server.sh start, or set OCULAR_TEST_DATABASE_URL",
            Need::Browser => "crates/ocular-browser-tests/scripts/install-browser.sh",
        }
    }

    /// Whether this run must fail rather than skip: the variable is set to anything but
    /// empty, `0` or `false`.
    pub fn is_required(self) -> bool {
        is_truthy(std::env::var(self.require_var()).ok().as_deref())
    }

    /// The value, or `None` after printing why the test is skipped; a failure instead when
    /// [`Need::is_required`]. Use it where the test can simply `return`.
    #[track_caller]
    pub fn available<T, E: Display>(self, found: Result<T, E>) -> Option<T> {
        match decide(self, self.is_required(), found) {
            Decision::Use(value) => Some(value),
            Decision::Skip(line) => {
                say_once(line);
                None
            }
            Decision::Fail(message) => panic!("{message}"),
        }
    }

    /// The value, or a failure that says what to install. For helpers that must return a
    /// value and so cannot skip; the message is the same as a required [`Need::available`].
    #[track_caller]
    pub fn require<T, E: Display>(self, found: Result<T, E>) -> T {
        match decide(self, true, found) {
            Decision::Use(value) => value,
            Decision::Skip(message) | Decision::Fail(message) => panic!("{message}"),
        }
    }

    /// Skips (or, when required, fails) a test that found `why` missing.
    #[track_caller]
    pub fn skip(self, why: impl Display) {
        self.available::<(), _>(Err(why));
    }
}

/// What to do with a lookup's result.
#[derive(Debug, PartialEq, Eq)]
enum Decision<T> {
    Use(T),
    Skip(String),
    Fail(String),
}

fn decide<T, E: Display>(need: Need, required: bool, found: Result<T, E>) -> Decision<T> {
    match found {
        Ok(value) => Decision::Use(value),
        Err(why) if required => Decision::Fail(format!(
            "{why} (install with `{}`; {} requires it)",
            need.install_hint(),
            if need.is_required() { need.require_var() } else { "this test" }
        )),
        Err(why) => Decision::Skip(format!(
            "SKIP ({need:?}): {why} (install with `{}`; set {}=1 to fail instead)",
            need.install_hint(),
            need.require_var()
        )),
    }
}

fn is_truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Prints `line` to the process's stderr once per test binary: a suite of 40 PostgreSQL tests
/// says "no PostgreSQL" once, not 40 times.
fn say_once(line: String) {
    static SAID: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = SAID.get_or_init(Default::default).lock().map(|mut said| said.insert(line.clone())).unwrap_or(true);
    if first {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// The PostgreSQL test server's URL: `OCULAR_TEST_DATABASE_URL`, else what
/// `scripts/pg-test-server.sh url` prints; `None` (after saying why, under [`Need::available`])
/// when there is none and none is required. `what` names the tests in the skip message.
///
/// Looked up once per test binary: a suite of 60 PostgreSQL tests runs the script once, not 60
/// times.
pub fn postgres_url(what: &str) -> Option<String> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    let server = SERVER.get_or_init(|| match std::env::var("OCULAR_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-test-server.sh"))
            .arg("url")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|url| !url.is_empty()),
    });
    Need::Postgres.available(server.clone().ok_or(format!("no PostgreSQL for the {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_set_non_false_value_requires() {
        for off in [None, Some(""), Some("0"), Some("false"), Some("FALSE")] {
            assert!(!is_truthy(off), "{off:?}");
        }
        for on in [Some("1"), Some("true"), Some("yes")] {
            assert!(is_truthy(on), "{on:?}");
        }
    }

    #[test]
    fn found_values_are_used_whatever_is_required() {
        assert_eq!(decide::<_, String>(Need::Models, true, Ok(7)), Decision::Use(7));
        assert_eq!(decide::<_, String>(Need::Models, false, Ok(7)), Decision::Use(7));
    }

    #[test]
    fn missing_skips_unless_required_and_says_how_to_install() {
        let skip = decide::<(), _>(Need::Postgres, false, Err("no server"));
        let Decision::Skip(line) = skip else { panic!("{skip:?}") };
        assert!(line.starts_with("SKIP (Postgres): no server"), "{line}");
        assert!(
            line.contains("scripts/pg-test-server.sh start") && line.contains("OCULAR_REQUIRE_POSTGRES=1"),
            "{line}"
        );

        let fail = decide::<(), _>(Need::Models, true, Err("no libonnxruntime.so"));
        let Decision::Fail(message) = fail else { panic!("{fail:?}") };
        assert!(message.starts_with("no libonnxruntime.so") && message.contains("models fetch"), "{message}");
    }

    #[test]
    #[should_panic(expected = "install with `crates/ocular-browser-tests/scripts/install-browser.sh`")]
    fn require_fails_even_when_not_required() {
        Need::Browser.require::<(), _>(Err("chromium not found"));
    }
}
