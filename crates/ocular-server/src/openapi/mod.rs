//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! The FastAPI service ocular replaces gave its clients `/docs` for free; this is its
//! replacement. Schemas come from the types handlers read and write (`utoipa::ToSchema`
//! derives on them), the error envelope's `code` lists every row of [`Code`] and
//! `x-error-codes` gives each one's status, and [`ROUTES`] says, per route, which body it
//! reads and which type it answers. `every_route_is_documented` (tests/integration/openapi.rs) fails when
//! a `.route(..)` in this crate is missing here, so the document cannot silently fall behind.
//! The reference page (`/api/docs`) renders this document in the browser, from this server
//! only (no CDN), under the pages' CSP.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use utoipa::openapi::{RefOr, Schema};

use crate::code::Code;
use crate::state::AppState;

mod routes;
pub use routes::ROUTES;

/// What a route reads.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// A JSON body of this component schema.
    Json(&'static str),
    /// A multipart form: (field, description); the field named `image` is the file.
    Form(&'static [(&'static str, &'static str)]),
    /// JSON of this schema, or a multipart form with these fields (products).
    JsonOrForm(&'static str, &'static [(&'static str, &'static str)]),
    /// A file sent as the raw body, in one of these media types (catalog imports).
    File(&'static [&'static str]),
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `200` (or `status`) with JSON of this component schema.
    Json(u16, &'static str),
    /// `200` JSON whose shape is described, not typed (only the OpenAPI document itself).
    Object(&'static str),
    /// `204`, no body.
    Empty,
    /// `200` with a body of this media type.
    Media(&'static str),
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: (name, JSON type, description).
    pub query: &'static [(&'static str, &'static str, &'static str)],
    pub body: Body,
    pub answer: Answer,
    /// Needs the API key (`Authorization: Bearer` or `X-Api-Key`).
    pub key: bool,
}

/// The component schemas: every type a route names, with the types they contain.
fn schemas() -> Vec<(String, RefOr<Schema>)> {
    use utoipa::{PartialSchema, ToSchema};
    fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        out.push((T::name().into_owned(), <T as PartialSchema>::schema()));
        T::schemas(out);
    }
    let mut out = Vec::new();
    add::<crate::error::ErrorBody>(&mut out);
    add::<crate::health::Health>(&mut out);
    add::<crate::health::LegacyHealth>(&mut out);
    add::<crate::skin_card::SkinCard>(&mut out);
    add::<crate::analyze::AnalysisPage>(&mut out);
    add::<ocular_models::report::SkinReport>(&mut out);
    add::<ocular_search::SearchResults>(&mut out);
    add::<ocular_search::ProductView>(&mut out);
    add::<crate::products::ProductPage>(&mut out);
    add::<crate::products::ProductBody>(&mut out);
    add::<crate::bulk::BulkDeleteRequest>(&mut out);
    add::<crate::bulk::BulkDeleteResponse>(&mut out);
    add::<crate::import_jobs::ImportJobView>(&mut out);
    add::<crate::search::SearchBody>(&mut out);
    add::<crate::embed::TextBody>(&mut out);
    add::<crate::embed::ImageEmbedding>(&mut out);
    add::<crate::embed::TextEmbedding>(&mut out);
    add::<crate::routes::FixtureRequest>(&mut out);
    add::<crate::routes::FixtureOutput>(&mut out);
    add::<crate::reload::ReloadReport>(&mut out);
    add::<crate::models::ModelList>(&mut out);
    add::<ocular_models::report::PredictReport>(&mut out);
    out
}

fn form_schema(fields: &[(&str, &str)]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(name, doc)| {
            let s = if *name == "image" {
                json!({ "type": "string", "contentMediaType": "application/octet-stream", "description": doc })
            } else {
                json!({ "type": "string", "description": doc })
            };
            (name.to_string(), s)
        })
        .collect();
    json!({ "type": "object", "properties": props })
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
        .query
        .iter()
        .map(|(name, ty, doc)| json!({ "name": name, "in": "query", "required": false, "description": doc, "schema": { "type": ty } }))
        .collect();
    for seg in r.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
        params.push(json!({ "name": seg, "in": "path", "required": true, "schema": { "type": "string" } }));
    }
    let json_ref = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let body = match r.body {
        Body::None => None,
        Body::Json(s) => Some(json!({ "application/json": { "schema": json_ref(s) } })),
        Body::Form(f) => Some(json!({ "multipart/form-data": { "schema": form_schema(f) } })),
        Body::JsonOrForm(s, f) => Some(json!({
            "application/json": { "schema": json_ref(s) },
            "multipart/form-data": { "schema": form_schema(f) },
        })),
        Body::File(types) => Some(Value::Object(
            types.iter().map(|t| (t.to_string(), json!({ "schema": { "type": "string" } }))).collect(),
        )),
    };
    let (status, ok) = match r.answer {
        Answer::Json(status, s) => {
            (status, json!({ "description": "OK", "content": { "application/json": { "schema": json_ref(s) } } }))
        }
        Answer::Object(doc) => (
            200,
            json!({ "description": doc, "content": { "application/json": { "schema": { "type": "object", "description": doc } } } }),
        ),
        Answer::Empty => (204, json!({ "description": "done" })),
        Answer::Media(m) => (200, json!({ "description": m, "content": { m: { "schema": { "type": "string" } } } })),
    };
    let mut op = json!({
        "tags": [r.tag],
        "summary": r.summary,
        "operationId": format!("{}{}", r.method, r.path.replace(['/', '{', '}', '.'], "_")),
        "parameters": params,
        "responses": {
            status.to_string(): ok,
            "default": { "$ref": "#/components/responses/Error" },
        },
    });
    if let Some(content) = body {
        op["requestBody"] = json!({ "required": true, "content": content });
    }
    if r.key {
        op["security"] = json!([{ "apiKey": [] }, { "bearer": [] }]);
    }
    op
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(build);
    &DOC
}

fn build() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        item[r.method] = operation(r);
    }
    let mut schemas = Map::new();
    for (name, schema) in self::schemas() {
        schemas.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    // A stored analysis is the report plus what the server adds around it (`analyze::present`).
    schemas.insert(
        "Analysis".into(),
        json!({ "allOf": [
            { "$ref": "#/components/schemas/SkinReport" },
            { "type": "object", "properties": {
                "id": { "type": "string" },
                "created_at": { "type": "string", "format": "date-time" },
                "input": { "type": "object", "description": "age, sex, location, force, gradcam as sent" },
                "timings_ms": {
                    "type": "object",
                    "additionalProperties": { "type": ["number", "null"] },
                    "description": "Milliseconds per stage (decode, check, preprocess, inference, gradcam, render, total); \
                        `render` is null in the answer of POST /api/v1/analyze, whose photo and overlay are drawn after it, \
                        and the real time once the images are stored (GET /api/v1/analyses/{id}, where `total` then includes it)",
                },
                "image_url": { "type": ["string", "null"] },
                "token": { "type": "string", "description": "POST /api/v1/analyze only: the capability token, shown once" },
                "page_url": { "type": "string", "description": "POST /api/v1/analyze only: the page, token in the fragment" },
            } },
        ] }),
    );
    // The envelope's `code` is one of the table's strings.
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    if let Some(code) = schemas.get_mut("ErrorDetail").and_then(|s| s.pointer_mut("/properties/code")) {
        code["enum"] = json!(codes);
    }
    let table: Vec<Value> = Code::ALL
        .iter()
        .map(|c| json!({ "code": c.as_str(), "status": c.status().as_u16(), "description": c.description() }))
        .collect();
    let described: String = Code::ALL
        .iter()
        .map(|c| format!("| `{}` | {} | {} |\n", c.as_str(), c.status().as_u16(), c.description()))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ocular",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Skin-lesion analysis, product search and embeddings. Every error is \
                            `{\"error\": {\"code\", \"message\"}}` with a stable code (`x-error-codes`).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": format!("An error; its code says what happened:\n\n| code | status | meaning |\n|---|---|---|\n{described}"),
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
                },
            },
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-Api-Key" },
                "bearer": { "type": "http", "scheme": "bearer" },
            },
        },
        "x-error-codes": table,
    })
}

/// `GET /api/v1/openapi.json` and the reference page that renders it.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(serve))
}

async fn serve() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        axum::Json(document()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// Components are keyed by type name: two types of one name would silently replace each
    /// other's schema (the analysis's `ClassScore` was once described by a prediction's).
    #[test]
    fn no_two_schemas_share_a_name() {
        let mut seen = std::collections::HashMap::new();
        for (name, schema) in super::schemas() {
            let schema = serde_json::to_value(schema).unwrap();
            if let Some(before) = seen.insert(name.clone(), schema.clone()) {
                assert_eq!(before, schema, "two different schemas are both named {name}");
            }
        }
    }
}
