//! Builds an app over a temporary data dir and a models dir holding the fixture model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};
use clap::Parser;
use http_body_util::BodyExt;
use ocular_models::session::SessionOptions;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_server::{AppState, Config};
use tower::ServiceExt;

#[derive(Parser)]
struct TestCli {
    #[command(flatten)]
    config: Config,
}

/// A config parsed exactly as the binary parses it, from flags only.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["ocular"];
    argv.extend_from_slice(args);
    TestCli::try_parse_from(argv).expect("valid flags").config
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn ort_library() -> PathBuf {
    let explicit = std::env::var_os("OCULAR_ORT_LIBRARY").map(PathBuf::from);
    ocular_test_support::Need::Models.require(runtime::locate(explicit.as_deref(), &workspace_root().join("models")))
}

pub struct TestApp {
    pub state: AppState,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl TestApp {
    /// `extra` flags are appended to the defaults (e.g. `--preload false`).
    pub fn new(extra: &[&str]) -> Self {
        Self::build(extra, None)
    }

    /// [`TestApp::new`] over a store the test also holds (to lock it, say).
    pub fn with_store(extra: &[&str], store: Arc<dyn ocular_store::Store>) -> Self {
        Self::build(extra, Some(store))
    }

    fn build(extra: &[&str], store: Option<Arc<dyn ocular_store::Store>>) -> Self {
        let models = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        let fixture = models.path().join("fixture");
        std::fs::create_dir_all(&fixture).expect("mkdir");
        for f in ["model.onnx", "manifest.json"] {
            std::fs::copy(workspace_root().join("fixtures/models/fixture").join(f), fixture.join(f)).expect("copy");
        }
        let mut args = vec![
            "--models-dir",
            models.path().to_str().expect("utf8"),
            "--data-dir",
            data.path().to_str().expect("utf8"),
        ];
        args.extend_from_slice(extra);
        let config = config(&args);
        let store = store.unwrap_or_else(|| {
            ocular_store::open(&ocular_store::Location::Sqlite(data.path().join("t.db")), true).expect("store")
        });
        let registry = Registry::discover(RegistryOptions {
            models_dir: config.models_dir.clone(),
            ort_library: Some(ort_library()),
            session: SessionOptions { intra_threads: 1 },
            enabled: None,
        })
        .expect("registry");
        let state = AppState::new(config, registry, store as Arc<dyn ocular_store::Store>);
        Self { state, _dirs: (models, data) }
    }

    /// An app over a state the test built itself (the test keeps its folders alive).
    pub fn over(state: AppState) -> Self {
        Self { state, _dirs: (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")) }
    }

    /// An app over the real models installed by `ocular models fetch` (loaded once per test
    /// binary and shared) with a fresh database.
    pub fn real(extra: &[&str]) -> Self {
        static REGISTRY: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
        let models_dir = workspace_root().join("models");
        let registry = REGISTRY
            .get_or_init(|| {
                let registry = Registry::discover(RegistryOptions {
                    models_dir: models_dir.clone(),
                    ort_library: Some(ort_library()),
                    session: SessionOptions::default(),
                    enabled: Some(vec!["sklesion".into(), "efficientnet-lite0".into(), "minilm".into()]),
                })
                .expect("registry");
                assert!(registry.skin.is_some(), "real models missing: run `ocular models fetch`");
                Arc::new(registry)
            })
            .clone();
        let data = tempfile::tempdir().expect("tempdir");
        let models = tempfile::tempdir().expect("tempdir");
        let mut args =
            vec!["--models-dir", models_dir.to_str().expect("utf8"), "--data-dir", data.path().to_str().expect("utf8")];
        args.extend_from_slice(extra);
        let config = config(&args);
        let store = ocular_store::open(&ocular_store::Location::Sqlite(data.path().join("t.db")), true).expect("store");
        let state = AppState::new(config, registry, store as Arc<dyn ocular_store::Store>);
        Self { state, _dirs: (models, data) }
    }

    /// POSTs a multipart form: text fields and one file.
    pub async fn post_form(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
    ) -> (u16, serde_json::Value) {
        let boundary = "ocular-test-boundary-7d3a";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"photo\"\r\nContent-Type: application/octet-stream\r\n\r\n").bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").bytes());
        let req = Request::post(uri)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .expect("request");
        split(self.send(req).await).await
    }

    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        ocular_server::router(self.state.clone()).oneshot(req).await.expect("infallible")
    }

    pub async fn get(&self, uri: &str) -> (u16, serde_json::Value) {
        let resp = self.send(Request::get(uri).body(Body::empty()).expect("request")).await;
        split(resp).await
    }

    pub async fn post_json(&self, uri: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let req = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        split(self.send(req).await).await
    }
}

pub async fn split(resp: Response<Body>) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, json)
}

/// A photo installed by `ocular models fetch photos`.
pub fn photo(name: &str) -> Vec<u8> {
    let path = workspace_root().join("models/photos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `ocular models fetch`)", path.display()))
}

/// A server state over `models` (imported models, loaded lazily) and a fresh SQLite file in
/// `data`, with `extra` flags (e.g. `--api-key`).
pub fn state_over(models: &Path, data: &Path, extra: &[&str]) -> AppState {
    let mut args =
        vec!["--models-dir", models.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--preload", "false"];
    args.extend_from_slice(extra);
    let config = config(&args);
    let registry = Registry::discover(RegistryOptions {
        models_dir: config.models_dir.clone(),
        ort_library: Some(ort_library()),
        session: SessionOptions { intra_threads: 1 },
        enabled: None,
    })
    .unwrap();
    let store = ocular_store::open(&ocular_store::Location::Sqlite(data.join("t.db")), true).unwrap();
    AppState::new(config, registry, store as Arc<dyn ocular_store::Store>)
}

/// Where an answer `v` breaks the OpenAPI `schema` (resolved in `doc`): a key the schema does
/// not declare, a required key missing, a value of another type or outside its enum. Used by
/// the tests that check real answers against the typed schemas.
pub fn schema_fits(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    fits(doc, schema, v, at, true)
}

/// The keys a schema declares, through `$ref`, `allOf`, `oneOf` and `anyOf` (a flattened
/// struct or tagged enum is an `allOf` whose parts each declare some of the object's keys).
fn declared_keys(doc: &serde_json::Value, schema: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return declared_keys(doc, &doc["components"]["schemas"][name], out);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            declared_keys(doc, part, out);
        }
    }
    out.extend(schema["properties"].as_object().into_iter().flatten().map(|(k, _)| k.clone()));
}

/// Where `v` breaks `schema`: a key no part of the schema declares (`closed`: the whole
/// object is this schema), a required key missing, a value of another type or outside its enum.
fn fits(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
    closed: bool,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return fits(doc, &doc["components"]["schemas"][name], v, at, closed);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema[key].as_array() {
            let errors: Vec<String> = alternatives.iter().filter_map(|s| fits(doc, s, v, at, closed).err()).collect();
            return if errors.len() < alternatives.len() { Ok(()) } else { Err(errors.join(" / ")) };
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        parts.iter().try_for_each(|s| fits(doc, s, v, at, false))?;
        if let (true, Some(map)) = (closed, v.as_object()) {
            let mut declared = std::collections::BTreeSet::new();
            declared_keys(doc, schema, &mut declared);
            if let Some(k) = map.keys().find(|k| !declared.contains(*k)) {
                return Err(format!("{at}.{k}: not in the schema"));
            }
        }
        return Ok(());
    }
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| *t == kind || (*t == "number" && kind == "integer")) {
        return Err(format!("{at}: {kind} where the schema says {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array().filter(|_| !v.is_null())
        && !allowed.contains(v)
    {
        return Err(format!("{at}: {v} not in {allowed:?}"));
    }
    match v {
        Value::Object(map) => {
            let props = &schema["properties"];
            for (k, value) in map {
                match (props.get(k), &schema["additionalProperties"]) {
                    (Some(s), _) => fits(doc, s, value, &format!("{at}.{k}"), true)?,
                    // A map (`BTreeMap<String, T>`): every value is a `T`.
                    (None, s @ Value::Object(_)) => fits(doc, s, value, &format!("{at}.{k}"), true)?,
                    (None, Value::Bool(true)) => {}
                    (None, _) if closed => return Err(format!("{at}.{k}: not in the schema")),
                    (None, _) => {}
                }
            }
            for k in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(k) {
                    return Err(format!("{at}.{k}: required, missing"));
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, x)| fits(doc, &schema["items"], x, &format!("{at}[{i}]"), true))
        }
        _ => Ok(()),
    }
}
