//! The ConSE prompt matrix kept on disk: read back by a later process when it matches the
//! loaded text model, rebuilt (and the file replaced) when it does not.

use ocular_models::session::SessionOptions;
use ocular_models::text_encoder::TextEncoder;
use ocular_models::{Registry, RegistryOptions, runtime};
use ocular_search::embed::conse::{PromptMatrix, prompt};

use crate::common::root;

fn minilm() -> std::sync::Arc<TextEncoder> {
    let models = root().join("models");
    let ort = ocular_test_support::Need::Models.require(runtime::locate(None, &models));
    let registry = Registry::discover(RegistryOptions {
        models_dir: models,
        ort_library: Some(ort),
        session: SessionOptions { intra_threads: 2 },
        enabled: Some(vec!["minilm".into()]),
    })
    .expect("registry");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(registry.text.as_ref().expect("minilm installed").get()).expect("minilm loads")
}

/// Overwrites value `index` of the stored rows (after the 16-byte header: magic, rows, dim).
fn poke(file: &std::path::Path, index: usize, value: f32) {
    let mut bytes = std::fs::read(file).expect("stored matrix");
    bytes[16 + index * 4..16 + index * 4 + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, bytes).expect("write");
}

#[test]
fn stored_prompts_are_read_back_and_rebuilt_when_they_do_not_match_the_model() {
    let text = minilm();
    let dir = tempfile::tempdir().expect("tempdir");
    let prompts: Vec<String> = ["tench", "goldfish", "great white shark", "espresso"].map(prompt).to_vec();
    let key = "conse10:test@1+minilm";
    let reference = PromptMatrix::build_prompts(&text, &prompts).expect("built in memory");

    // First start: built and stored.
    let first = PromptMatrix::load_or_build(&text, &prompts, key, Some(dir.path())).expect("first");
    assert_eq!(first.rows, reference.rows);
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1, "one file, no temporary left: {files:?}");
    let file = &files[0];

    // Later start: read, not rebuilt. A marked value in a later row proves where the rows came from.
    let dim = text.dim;
    poke(file, 2 * dim, 42.0);
    let read = PromptMatrix::load_or_build(&text, &prompts, key, Some(dir.path())).expect("read back");
    assert_eq!(read.rows[2 * dim], 42.0);
    assert_eq!(read.rows[..2 * dim], reference.rows[..2 * dim]);

    // A first row that another model would give: rebuilt, and the file replaced.
    poke(file, 0, 42.0);
    let rebuilt = PromptMatrix::load_or_build(&text, &prompts, key, Some(dir.path())).expect("rebuilt");
    assert_eq!(rebuilt.rows, reference.rows);
    let again = PromptMatrix::load_or_build(&text, &prompts, key, Some(dir.path())).expect("read the new file");
    assert_eq!(again.rows, reference.rows);

    // Other prompts (another label list or template) never read this file.
    let other: Vec<String> = ["tench", "goldfish"].map(prompt).to_vec();
    let m = PromptMatrix::load_or_build(&text, &other, key, Some(dir.path())).expect("other prompts");
    assert_eq!(m.classes(), 2);
}
