//! Where things are: the workspace, the `ocular` binary, the models, the browser; and the one
//! decision to skip (no browser, and `OCULAR_REQUIRE_BROWSER` unset).

use std::path::{Path, PathBuf};

use ocular_test_support::Need;

pub struct Env {
    pub root: PathBuf,
    pub ocular: PathBuf,
    pub models_dir: PathBuf,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    /// Failure screenshots go here.
    pub screenshots: PathBuf,
    /// Set by `OCULAR_SCREENSHOTS` (a folder, relative to the workspace root): every checkpoint
    /// is saved too, into that folder.
    pub on_demand: bool,
}

impl Env {
    /// The environment for one test, or `None` after printing why the test is skipped.
    pub fn detect(test: &str) -> Option<Env> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let root = root.canonicalize().unwrap_or(root);
        let (chromium, chromedriver) = match (chromium(), chromedriver()) {
            (Some(c), Some(d)) => (c, d),
            (c, d) => {
                let missing = [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(" and ");
                // Skips, or fails when OCULAR_REQUIRE_BROWSER is set (`ocular_test_support::Need`).
                return Need::Browser.available(Err(format!("browser test {test}: {missing} not found")));
            }
        };
        let target = target_dir(&root);
        let ocular = ocular_binary(&target);
        let (screenshots, on_demand) = match std::env::var_os("OCULAR_SCREENSHOTS").filter(|v| !v.is_empty()) {
            // A relative folder is taken from the workspace root, not this crate's folder.
            Some(dir) => (root.join(dir), true),
            None => (target.join("screenshots"), false),
        };
        Some(Env { models_dir: root.join("models"), root, ocular, chromium, chromedriver, screenshots, on_demand })
    }
}

/// `$name` if set, else the first of `candidates` that exists, else `names` on `PATH`.
fn find(var: &str, candidates: &[&str], names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).flat_map(|dir| names.iter().map(move |n| dir.join(n))).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.iter().map(PathBuf::from).chain(on_path).find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    find("OCULAR_CHROMIUM", &["/usr/bin/chromium"], &["chromium", "chromium-browser"])
}

fn chromedriver() -> Option<PathBuf> {
    find("OCULAR_CHROMEDRIVER", &["/usr/bin/chromedriver"], &["chromedriver"])
}

/// The cargo target directory this test binary was built into (`<target>/<profile>/deps/e2e-…`),
/// so a custom `CARGO_TARGET_DIR` or profile just works; `<workspace>/target` otherwise.
fn target_dir(root: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent()?.parent().map(Path::to_path_buf))
        .filter(|t| t.is_dir())
        .unwrap_or_else(|| root.join("target"))
}

/// `$OCULAR_BIN`, or `ocular` next to this test's profile directory, or `target/debug/ocular`.
/// Building it here would take minutes; a missing binary is a setup mistake worth a clear
/// message instead.
fn ocular_binary(target: &Path) -> PathBuf {
    if let Some(bin) = std::env::var_os("OCULAR_BIN").map(PathBuf::from) {
        assert!(bin.is_file(), "OCULAR_BIN={} does not exist", bin.display());
        return bin;
    }
    let profile_dir = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.to_path_buf()));
    let candidates = profile_dir.into_iter().map(|d| d.join("ocular")).chain([target.join("debug/ocular")]);
    let tried: Vec<PathBuf> = candidates.collect();
    tried.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "the ocular binary was not found (looked at {}): run `cargo build -p ocular` first, or set OCULAR_BIN",
            tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}
