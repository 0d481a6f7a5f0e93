//! The OpenAPI document: complete (every route of the router, every error code), valid (it
//! parses as OpenAPI 3.1 with the `oas3` crate and every `$ref` resolves), and served.

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use ocular_server::Code;
use ocular_server::openapi::{ROUTES, document};

use crate::common::{TestApp, schema_fits, split, workspace_root};

/// `(method, path)` of every `.route(..)` call in the crate's sources outside `web/` (HTML
/// pages) and test modules: the router as written, so a route added anywhere is seen here.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let src = workspace_root().join("crates/ocular-server/src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        // Test modules build toy routers.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = text;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let end = closing_paren(rest);
            let call = &rest[..end];
            let Some(path) = call.split('"').nth(1) else { continue };
            for method in ["get", "post", "put", "patch", "delete"] {
                let mut hay = call;
                while let Some(i) = hay.find(&format!("{method}(")) {
                    let before = hay[..i].chars().last();
                    if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                        found.insert((method.to_string(), path.to_string()));
                    }
                    hay = &hay[i + 1..];
                }
            }
        }
    }
    found
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "web") {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && !path.to_string_lossy().ends_with("tests.rs") {
            out.push(path);
        }
    }
}

/// Index of the `)` closing the call whose arguments start `s`.
fn closing_paren(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

#[test]
fn every_route_is_documented() {
    let doc = document();
    let in_source = routes_in_source();
    assert!(in_source.len() > 20, "the scan found the router: {in_source:?}");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| item.as_object().expect("item").keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let missing: Vec<_> = in_source.difference(&documented).collect();
    assert!(missing.is_empty(), "routes missing from ocular_server::openapi::ROUTES: {missing:?}");
    let stale: Vec<_> = documented.difference(&in_source).collect();
    assert!(stale.is_empty(), "documented routes the router does not have: {stale:?}");
}

#[test]
fn every_error_code_is_documented_with_its_status() {
    let doc = document();
    let listed: Vec<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .expect("code enum")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    let table: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, table);
    let statuses = doc["x-error-codes"].as_array().expect("x-error-codes");
    assert_eq!(statuses.len(), Code::ALL.len());
    for (row, code) in statuses.iter().zip(Code::ALL) {
        assert_eq!(row["code"], code.as_str());
        assert_eq!(row["status"], code.status().as_u16());
    }
    let described = doc["components"]["responses"]["Error"]["description"].as_str().expect("description");
    for code in Code::ALL {
        assert!(described.contains(&format!("| `{code}` | {} |", code.status().as_u16())), "{code}");
    }
}

/// The document parses as OpenAPI 3.1 (`oas3`, a typed model of the 3.1 specification), says
/// 3.1, and every `$ref` in it points at a component that exists.
#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = document();
    let text = serde_json::to_string(doc).expect("json");
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert_eq!(spec.paths.as_ref().map(|p| p.len()), doc["paths"].as_object().map(|p| p.len()));
    let mut refs = Vec::new();
    find_refs(doc, &mut refs);
    assert!(refs.len() > 10, "{refs:?}");
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

fn find_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => find_refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| find_refs(v, out)),
        _ => {}
    }
}

/// Every documented operation reaches a handler of the real router (no `no_route`, no
/// `method_not_allowed`), and the document itself is served.
#[tokio::test]
async fn documented_routes_exist_and_the_document_is_served() {
    let app = TestApp::new(&["--preload", "false"]);
    for r in ROUTES {
        let uri = r.path.replace("{id}", "x").replace("{name}", "x");
        let req = Request::builder().method(r.method.to_uppercase().as_str()).uri(&uri).body(Body::empty()).unwrap();
        let (status, body) = split(app.send(req).await).await;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(code != "no_route" && code != "method_not_allowed", "{} {uri}: {status} {body}", r.method);
    }
    let (status, body) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(&body, document());
}

/// `docs/openapi.json` is the document this code generates, committed so that a change to the
/// API shows in review as a diff of it and clients can read the contract without a server.
/// `OCULAR_UPDATE_OPENAPI=1` rewrites it (docs/TESTING.md).
#[test]
fn the_committed_snapshot_is_the_generated_document() {
    let path = workspace_root().join("docs/openapi.json");
    let generated = serde_json::to_string_pretty(document()).expect("json") + "\n";
    if std::env::var_os("OCULAR_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let rerun =
        "OCULAR_UPDATE_OPENAPI=1 cargo test -p ocular-server --test integration openapi::the_committed_snapshot";
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; write it with `{rerun}`", path.display()));
    if committed != generated {
        let (old, new): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), generated.lines().collect());
        let line = old.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
        panic!(
            "docs/openapi.json differs from the generated document at line {}:\n  committed: {}\n  generated: {}\n\
             If the API change is meant, rewrite the snapshot with `{rerun}` and commit it.",
            line + 1,
            old.get(line).unwrap_or(&"(end of file)"),
            new.get(line).unwrap_or(&"(end of file)"),
        );
    }
}

/// `/api/v1/health`, `/health`, `/health/ready` (short and verbose) and `GET /api/v1/analyses`
/// answer what their typed schemas (`LegacyHealth`, `Health`, `AnalysisPage`) say, key by key.
#[tokio::test]
async fn health_and_the_analysis_list_answer_their_schemas() {
    use serde_json::json;
    const KEY: &str = "0123456789abcdef-admin";
    let doc = document();
    let app = TestApp::new(&["--preload", "false", "--api-key", KEY]);
    let mut a = ocular_store::Analysis::new(
        json!({"age": 61}),
        json!({"prediction": {"code": "mel", "name": "Melanoma", "probability": 0.7}, "forced": false}),
        json!({"total": 80.0}),
    );
    a.thumbnail_jpeg = Some(vec![0xFF, 0xD8, 0xFF, 0xD9]);
    app.state.store.insert_analysis(&a).expect("insert");
    for (path, uri, key) in [
        ("/api/v1/health", "/api/v1/health", false),
        ("/health", "/health", false),
        ("/health", "/health?verbose=1", false),
        ("/health/ready", "/health/ready?verbose=1", false),
        ("/api/v1/analyses", "/api/v1/analyses", true),
    ] {
        let mut req = Request::get(uri);
        if key {
            req = req.header("x-api-key", KEY);
        }
        let (status, body) = split(app.send(req.body(Body::empty()).expect("request")).await).await;
        assert_eq!(status, 200, "{uri}: {body}");
        let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(schema["$ref"].is_string(), "{path}: not typed: {schema}");
        if let Err(e) = schema_fits(doc, schema, &body, uri) {
            panic!("{uri} does not answer its schema: {e}\n{body:#}");
        }
        if uri.contains("verbose") {
            assert!(body["models"].is_array() && body["memory_budget"].is_object(), "{uri}: not verbose: {body}");
            // The check can fail: a key no schema declares, at the top (across the `allOf`)
            // or nested, and a value of the wrong type.
            for (pointer, value) in [("", "extra"), ("/memory_budget", "extra"), ("/ready", "")] {
                let mut wrong = body.clone();
                let at = wrong.pointer_mut(pointer).expect("pointer");
                if value.is_empty() {
                    *at = json!("yes")
                } else {
                    at[value] = json!(1)
                }
                assert!(schema_fits(doc, schema, &wrong, uri).is_err(), "{uri}: {pointer} {value} passed");
            }
        }
    }
}

/// The test fixture's route answers its schema (`FixtureOutput`).
#[tokio::test]
async fn the_fixture_route_answers_its_schema() {
    let doc = document();
    let app = TestApp::new(&["--preload", "false"]);
    let (status, body) = app.post_json("/api/v1/fixture", serde_json::json!({ "input": [1.0, 2.0, 3.0, 4.0] })).await;
    assert_eq!(status, 200, "{body}");
    let schema = &doc["paths"]["/api/v1/fixture"]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(schema["$ref"].is_string(), "not typed: {schema}");
    schema_fits(doc, schema, &body, "fixture").unwrap_or_else(|e| panic!("{e}: {body}"));
}

/// With search on (the real search models), `/health?verbose=1`'s `search` (per-space
/// `SpaceStatus`, its state flattened in) answers its schema while loading and once ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_health_with_search_answers_its_schema() {
    let doc = document();
    let schema = &doc["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    let app = crate::catalog_app::CatalogApp::new(&[]);
    app.state.catalog.as_ref().expect("search configured").begin_loading().expect("begin");
    let (_, loading) = app.get("/health?verbose=1").await;
    let app = app.reopen(&[]).loaded().await;
    let (_, ready) = app.get("/health?verbose=1").await;
    for (body, state) in [(loading, "loading"), (ready, "ready")] {
        assert_eq!(body["search"][0]["state"], state, "{body:#}");
        if let Err(e) = schema_fits(doc, schema, &body, state) {
            panic!("/health?verbose=1 ({state}) does not answer its schema: {e}\n{body:#}");
        }
    }
}
