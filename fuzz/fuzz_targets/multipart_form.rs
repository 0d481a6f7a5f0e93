//! Multipart bodies through the server's form reader (`ocular_server::form::read`) behind
//! axum's `Multipart` extractor, exactly as the upload endpoints read them, on an in-memory
//! request. The first input byte picks the boundary's length, so the parser meets boundaries
//! that do and do not occur in the body.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::Request;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let boundary = &"XyZ-boundary-0123456789"[..1 + usize::from(pick % 22)];
    let req = Request::post("/api/v1/analyze")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body.to_vec()))
        .expect("request");
    runtime().block_on(async {
        let Ok(mp) = Multipart::from_request(req, &()).await else { return };
        if let Ok(mut form) = ocular_server::form::read(mp, "image").await {
            for (name, value) in &form.fields {
                assert!(value.len() <= ocular_server::form::MAX_TEXT_FIELD, "field {name} over the cap");
            }
            let _ = form.text("age");
            let _ = form.require_file("image");
        }
    });
});
