//! The two processes a test needs: `ocular serve` and `chromedriver`, each on a free loopback
//! port, each killed when its value is dropped, each with its output in a log file that is
//! printed when a test fails.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::env::Env;
use super::http;

type Result<T> = std::result::Result<T, String>;

/// A child process killed on drop.
struct Guard {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Guard {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Guard> {
        let out = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|e| format!("starting {name} ({cmd:?}): {e}"))?;
        Ok(Guard { name, child, log })
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited early ({status})", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port nobody listens on now. Another process could take it before ours binds; on a test
/// machine that race is rare, and the failure message would say "binding".
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Polls `ready` every 100 ms until it returns true, `guard` exits, or `limit` passes.
fn wait_until(guard: &mut Guard, limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(why) = guard.exited() {
            return Err(format!("{why} while waiting for {what}\n{}", tail(&guard.log, 40)));
        }
        if started.elapsed() > limit {
            return Err(format!("{what} not ready after {limit:?}\n{}", tail(&guard.log, 40)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The original services' variables, which `ocular` also reads: cleared so a developer's shell
/// cannot change what the test server does.
const LEGACY_VARS: &[&str] = &[
    "PORT",
    "PRELOAD_MODEL",
    "LAZY_LOAD_MODEL",
    "ENABLE_GRADCAM",
    "TOP_K",
    "SIMILARITY_THRESHOLD",
    "MAX_BATCH_SIZE",
    "MAX_CONCURRENCY",
    "DATABASE_URL",
    "MONGO_URI",
];

/// `ocular serve` on a free port with a fresh data directory and the workspace's models.
pub struct Server {
    pub base: String,
    guard: Guard,
    // Dropped after `guard`: the process is gone before its files are removed.
    _data: TempDir,
}

impl Server {
    pub fn start(env: &Env) -> Result<Server> {
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut cmd = Command::new(&env.ocular);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("OCULAR_") || LEGACY_VARS.contains(&key.as_str()) {
                cmd.env_remove(&key);
            }
        }
        cmd.arg("serve")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--models-dir")
            .arg(&env.models_dir)
            // Image URLs in these tests point at the test's own loopback listener.
            .env("OCULAR_URL_ALLOW", "127.0.0.1")
            .env("OCULAR_LOG", "info,ort=warn")
            .env("NO_COLOR", "1");
        let mut guard = Guard::spawn("ocular serve", cmd, data.path().join("server.log"))?;
        let base = format!("http://127.0.0.1:{port}");
        // Models are preloaded before readiness; on a busy 2-core machine that can take a while.
        wait_until(&mut guard, Duration::from_secs(180), "ocular's /health/ready", || {
            http::get(&base, "/health/ready").is_ok_and(|r| r.status == 200)
        })?;
        Ok(Server { base, guard, _data: data })
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.guard.log, lines)
    }
}

/// `chromedriver` on a free port; it starts one browser per session.
pub struct Driver {
    pub url: String,
    guard: Guard,
    /// The browser profile (`--user-data-dir`), fresh for every test; removed after the driver.
    pub profile: TempDir,
}

impl Driver {
    pub fn start(env: &Env) -> Result<Driver> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut cmd = Command::new(&env.chromedriver);
        cmd.arg(format!("--port={port}"));
        let log = dir.path().join("chromedriver.log");
        let mut guard = Guard::spawn("chromedriver", cmd, log)?;
        let url = format!("http://127.0.0.1:{port}");
        wait_until(&mut guard, Duration::from_secs(30), "chromedriver", || {
            http::get(&url, "/status").is_ok_and(|r| r.status == 200)
        })?;
        Ok(Driver { url, guard, profile: dir })
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.guard.log, lines)
    }
}
