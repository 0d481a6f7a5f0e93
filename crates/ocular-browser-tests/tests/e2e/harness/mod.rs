//! Test plumbing: finding the binaries, starting the processes, one browser page per test, and
//! turning a failure into a screenshot plus the evidence needed to understand it.

pub mod env;
pub mod http;
pub mod page;
pub mod process;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;

use futures::FutureExt;

pub use page::Page;

/// Errors of a test body; any error type converts, so `?` works on WebDriver and I/O calls.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult<T = ()> = Result<T, Error>;

/// Fails the test with a formatted message, like `anyhow::bail!`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err(format!($($arg)*).into()) };
}

/// Fails the test with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        let holds: bool = $cond;
        if !holds {
            $crate::fail!($($arg)*);
        }
    };
}

/// What a test body gets: the page, the server's address and the workspace, for fixtures.
pub struct Ctx {
    pub page: Page,
    /// e.g. `http://127.0.0.1:41234`
    pub base: String,
    pub root: PathBuf,
}

impl Ctx {
    /// A fixture file by its path relative to the workspace root.
    pub fn fixture(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// One browser and one server at a time: see the crate docs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs one browser test: starts the server, chromedriver and a browser session, runs `body`,
/// and on failure (error or panic) saves a screenshot and prints what the page and server said.
pub fn run<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let Some(env) = env::Env::detect(name) else { return };
    run_in(name, &env, body);
}

/// [`run`] against a server whose models folder holds the workspace's models plus the models
/// `import` installs into it (it gets the `ocular` binary and the folder), e.g. an imported
/// Keras classifier. The workspace's `models/` is never written: the folder is a temporary one
/// whose entries link to it.
pub fn run_with_models<I, F, Fut>(name: &str, import: I, body: F)
where
    I: FnOnce(&std::path::Path, &std::path::Path) -> TestResult,
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let Some(mut env) = env::Env::detect(name) else { return };
    let models = tempfile::tempdir().expect("a temporary models folder");
    let entries = std::fs::read_dir(&env.models_dir)
        .unwrap_or_else(|e| panic!("{name}: reading {}: {e}", env.models_dir.display()));
    for entry in entries {
        let entry = entry.expect("a models folder entry");
        std::os::unix::fs::symlink(entry.path(), models.path().join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{name}: linking {}: {e}", entry.path().display()));
    }
    import(&env.ocular, models.path()).unwrap_or_else(|e| panic!("{name}: importing models: {e}"));
    env.models_dir = models.path().to_path_buf();
    run_in(name, &env, body);
}

fn run_in<F, Fut>(name: &str, env: &env::Env, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("starting a tokio runtime");
    runtime.block_on(async {
        let server = process::Server::start(env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let driver = process::Driver::start(env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let page = match Page::open(&driver, &server.base, name, env).await {
            Ok(p) => p,
            Err(e) => panic!("{name}: starting a browser session failed: {e}\n{}", driver.log_tail(30)),
        };
        let ctx = Ctx { page: page.clone(), base: server.base.clone(), root: env.root.clone() };
        let outcome = AssertUnwindSafe(body(ctx)).catch_unwind().await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(panic_message(panic.as_ref())),
        };
        match failure {
            None => {
                page.checkpoint("done").await;
                page.close().await;
            }
            Some(message) => {
                let evidence = page.evidence().await;
                page.close().await;
                panic!(
                    "{name} failed: {message}\n{evidence}\n--- server log (last lines) ---\n{}",
                    server.log_tail(40)
                );
            }
        }
    });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}
