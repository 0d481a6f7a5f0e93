//! One headless Chromium session, with the few verbs the tests speak: go to a page, wait for
//! something a person would see, click, type, choose a file, and take screenshots.
//!
//! Every wait polls what the page shows (an element, a text, a loaded image) with a deadline,
//! never a fixed sleep, so tests are as fast as the machine allows and fail with the thing
//! that never appeared.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::env::Env;
use super::process::Driver;
use super::{TestResult, http};

/// How long any one thing may take to appear: an analysis with Grad-CAM on a loaded 2-core
/// machine takes a second or two; this leaves room without hiding a hang.
const WAIT: Duration = Duration::from_secs(30);

/// Chromium's flags. The background-networking ones matter: this machine's closed network
/// refuses the connections Chromium otherwise opens on its own.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

#[derive(Clone)]
pub struct Page {
    client: Client,
    base: String,
    driver: String,
    name: String,
    shots: PathBuf,
    on_demand: bool,
    step: Arc<AtomicUsize>,
}

impl Page {
    pub async fn open(driver: &Driver, base: &str, name: &str, env: &Env) -> TestResult<Page> {
        let profile = driver.profile.path().join("chromium-profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": env.chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!("a JSON object literal") };
        let client = ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&driver.url).await?;
        Ok(Page {
            client,
            base: base.to_string(),
            driver: driver.url.clone(),
            name: name.to_string(),
            shots: env.screenshots.clone(),
            on_demand: env.on_demand,
            step: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `path` on the server and waits until the document has loaded.
    pub async fn goto(&self, path: &str) -> TestResult {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        self.wait_for(&format!("{path} to load"), "return document.readyState === 'complete'", vec![]).await?;
        Ok(())
    }

    /// The path (and query) of the page shown now.
    pub async fn path(&self) -> TestResult<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// Runs `script` (which must `return` something) until it returns a truthy value.
    pub async fn wait_for(&self, what: &str, script: &str, args: Vec<Value>) -> TestResult<Value> {
        let started = Instant::now();
        loop {
            let value = self.client.execute(script, args.clone()).await?;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if started.elapsed() > WAIT {
                crate::fail!("timed out after {WAIT:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching `css`, once it exists and is displayed.
    pub async fn visible(&self, css: &str) -> TestResult<Element> {
        let script = "const e = document.querySelector(arguments[0]); \
                      return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0";
        self.wait_for(&format!("{css} to be visible"), script, vec![json!(css)]).await?;
        Ok(self.client.find(Locator::Css(css)).await?)
    }

    pub async fn click(&self, css: &str) -> TestResult {
        self.visible(css).await?.click().await?;
        Ok(())
    }

    /// Replaces the text of an input.
    pub async fn fill(&self, css: &str, text: &str) -> TestResult {
        let el = self.visible(css).await?;
        el.clear().await?;
        el.send_keys(text).await?;
        Ok(())
    }

    pub async fn select(&self, css: &str, value: &str) -> TestResult {
        self.visible(css).await?.select_by_value(value).await?;
        Ok(())
    }

    /// Chooses a file in an `<input type=file>`, as the file dialog would.
    pub async fn choose_file(&self, css: &str, path: &Path) -> TestResult {
        crate::ensure!(path.is_file(), "fixture {} is missing", path.display());
        let el = self.visible(css).await?;
        el.send_keys(&path.canonicalize()?.to_string_lossy()).await?;
        Ok(())
    }

    /// Drops a file onto the element matching `css`, as dragging it from a file manager would.
    /// WebDriver cannot drag from outside the browser, so the drag events are dispatched with
    /// a real `DataTransfer` holding the file's bytes. Returns whether the drop target was
    /// highlighted while the file was over it.
    pub async fn drop_file(&self, css: &str, path: &Path) -> TestResult<bool> {
        let bytes = std::fs::read(path)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("photo");
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        };
        self.visible(css).await?;
        let script = "const [css, name, type, bytes] = arguments; \
                      const dt = new DataTransfer(); \
                      dt.items.add(new File([new Uint8Array(bytes)], name, { type })); \
                      const zone = document.querySelector(css); \
                      const init = { dataTransfer: dt, bubbles: true, cancelable: true }; \
                      zone.dispatchEvent(new DragEvent('dragenter', init)); \
                      zone.dispatchEvent(new DragEvent('dragover', init)); \
                      const highlighted = zone.classList.contains('dragging'); \
                      zone.dispatchEvent(new DragEvent('drop', init)); \
                      return highlighted";
        let args = vec![json!(css), json!(name), json!(kind), json!(bytes)];
        Ok(self.client.execute(script, args).await? == true)
    }

    /// The visible text of the first element matching `css`, once that text is not empty.
    pub async fn text(&self, css: &str) -> TestResult<String> {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null";
        let v = self.wait_for(&format!("text in {css}"), script, vec![json!(css)]).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The texts of every element matching `css` (possibly none), right now.
    pub async fn texts(&self, css: &str) -> TestResult<Vec<String>> {
        let script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText.trim())";
        let v = self.client.execute(script, vec![json!(css)]).await?;
        Ok(v.as_array().into_iter().flatten().map(|s| s.as_str().unwrap_or_default().to_string()).collect())
    }

    /// Waits until the image matching `css` has really loaded (decoded, non-zero size).
    pub async fn image_loaded(&self, css: &str) -> TestResult<(u64, u64)> {
        let script = "const i = document.querySelector(arguments[0]); \
                      return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null";
        let v = self.wait_for(&format!("image {css} to load"), script, vec![json!(css)]).await?;
        Ok((v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)))
    }

    /// Saves a screenshot when `OCULAR_SCREENSHOTS` is set.
    pub async fn checkpoint(&self, label: &str) {
        if self.on_demand {
            let _ = self.screenshot(label).await;
        }
    }

    /// A screenshot of the whole page, not just the visible part: the window is made as tall
    /// as the document for the shot, then restored.
    async fn screenshot(&self, label: &str) -> TestResult<PathBuf> {
        let n = self.step.fetch_add(1, Ordering::Relaxed);
        std::fs::create_dir_all(&self.shots)?;
        let path = self.shots.join(format!("{}-{n:02}-{label}.png", self.name));
        let (width, height) = self.client.get_window_size().await?;
        let tall = self.client.execute("return document.documentElement.scrollHeight", vec![]).await?;
        let tall = tall.as_u64().unwrap_or(height).clamp(height, 6000);
        // The window is taller than its viewport by the (invisible) browser frame.
        self.client
            .set_window_size(width as u32, (tall + height.saturating_sub(self.viewport_height().await?)) as u32)
            .await?;
        let png = self.client.screenshot().await;
        self.client.set_window_size(width as u32, height as u32).await?;
        std::fs::write(&path, png?)?;
        Ok(path)
    }

    async fn viewport_height(&self) -> TestResult<u64> {
        Ok(self.client.execute("return window.innerHeight", vec![]).await?.as_u64().unwrap_or(0))
    }

    /// What a person debugging a failure wants: a screenshot, the URL, the messages the page
    /// shows, and the browser console.
    pub async fn evidence(&self) -> String {
        let shot = match self.screenshot("failure").await {
            Ok(p) => format!("screenshot: {}", p.display()),
            Err(e) => format!("no screenshot: {e}"),
        };
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let messages = self.texts(".status, .alert:not([hidden])").await.unwrap_or_default();
        let console = self.console().await.unwrap_or_else(|e| vec![format!("(console unavailable: {e})")]);
        format!("{shot}\nurl: {url}\npage messages: {messages:?}\n--- browser console ---\n{}", console.join("\n"))
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> TestResult<Vec<String>> {
        let session = self.client.session_id().await?.unwrap_or_default();
        let path = format!("/session/{session}/se/log");
        let body = br#"{"type":"browser"}"#;
        let resp = http::request(&self.driver, "POST", &path, Some(("application/json", body)))?;
        let log = resp.json()?;
        Ok(log["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{} {}", e["level"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
            .collect())
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
