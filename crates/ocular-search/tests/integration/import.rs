//! `ocular import`'s engine on committed fixtures: every format, failing records that never
//! abort the import, resuming a crashed job, and re-running a finished one.

use std::time::Duration;

use ocular_search::import::{Format, ImportOptions, import_file};
use ocular_search::{SearchOptions, embed};
use ocular_store::{ImportLine, LineOutcome, NewImport};
use sha2::{Digest, Sha256};

use crate::common::{self, Quiet};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn failed_lines(report: &ocular_search::import::ImportReport) -> Vec<(u64, String)> {
    report
        .failures
        .iter()
        .map(|l| match &l.outcome {
            LineOutcome::Failed { error } => (l.line, error.clone()),
            LineOutcome::Ok { .. } => (l.line, String::new()),
        })
        .collect()
}

#[test]
fn json_lines_with_failures_resume_after_a_crash() {
    let (store, _dir) = common::store();
    let catalog = common::catalog(store.clone());
    let emb = common::embedders();
    let file = fixture("catalog.jsonl");
    let options = ImportOptions { format: Format::Jsonl, batch_size: 2, shared: false };

    // A crashed run: it claimed the first chunk and recorded record 1 as done, then died.
    let bytes = std::fs::read(&file).expect("fixture");
    let job = store
        .begin_import(&NewImport {
            source: "crashed run".into(),
            source_sha256: hex::encode(Sha256::digest(&bytes)),
            total_lines: 6,
            chunk_lines: 8,
        })
        .expect("begin");
    store.claim_import_chunk(&job.id, "crashed-worker", Duration::from_secs(3600)).expect("claim");
    store.record_import_lines(&job.id, &[ImportLine::ok(1, "cup")]).expect("record");

    let mut progress = Quiet::default();
    let report =
        import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut progress).expect("import");
    assert_eq!(report.job_id, job.id, "the same file resumes the unfinished job");
    assert!(progress.0 >= 2, "progress is reported");
    assert_eq!((report.total, report.resumed, report.written, report.failed), (6, 1, 2, 3), "{report:#?}");
    // Record 1 was taken as done: this run did not write it.
    assert!(store.get_product("cup").expect("get").is_none());
    let failures = failed_lines(&report);
    assert_eq!(failures.iter().map(|f| f.0).collect::<Vec<_>>(), [2, 3, 5]);
    assert!(failures[0].1.contains("invalid JSON"), "{failures:?}");
    assert!(failures[1].1.contains("does-not-exist.png"), "{failures:?}");
    assert!(failures[2].1.contains("id"), "{failures:?}");

    let rocket = store.get_product("rocket").expect("get").expect("rocket imported");
    assert_eq!((rocket.price, rocket.attributes["brand"].as_str()), (Some(18.0), Some("Acme")));
    assert!(rocket.image_sha256.is_some() && rocket.image_url.is_none(), "a local photo is stored, no source URL");
    let spaces: Vec<String> = store.embeddings_of(rocket.key).expect("vectors").into_iter().map(|e| e.space).collect();
    assert_eq!(spaces, [embed::IMAGE, embed::IMAGE_TEXT, embed::TEXT]);
    let card = store.get_product("no-photo").expect("get").expect("imported without a photo");
    let spaces: Vec<String> = store.embeddings_of(card.key).expect("vectors").into_iter().map(|e| e.space).collect();
    assert_eq!(spaces, [embed::TEXT], "no photo, no image vectors");

    // The finished job's file again: a new job, nothing re-embedded, the same failures.
    let again =
        import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut Quiet::default()).expect("import");
    assert_ne!(again.job_id, job.id);
    assert_eq!((again.written, again.unchanged, again.failed), (1, 2, 3), "{again:#?}");
    assert!(store.get_product("cup").expect("get").is_some(), "the new job imports record 1");
}

#[test]
fn csv_and_mongoexport() {
    let (store, _dir) = common::store();
    let catalog = common::catalog(store.clone());
    let emb = common::embedders();
    let csv = import_file(
        &catalog,
        emb.as_ref(),
        &common::loader(),
        &fixture("catalog.csv"),
        &ImportOptions { format: Format::Csv, batch_size: 4, shared: false },
        &mut Quiet::default(),
    )
    .expect("csv import");
    assert_eq!((csv.written, csv.failed), (2, 1), "{csv:#?}");
    assert!(failed_lines(&csv)[0].1.contains("price"));
    let cat = store.get_product("cat").expect("get").expect("cat");
    assert_eq!((cat.title.as_str(), cat.description.as_str()), ("Cat print, framed", "A tabby cat, \"Chelsea\""));
    assert_eq!(cat.attributes["frame"], "oak");

    let format = Format::resolve(None, &fixture("catalog.mongo.json")).expect("format");
    let mongo = import_file(
        &catalog,
        emb.as_ref(),
        &common::loader(),
        &fixture("catalog.mongo.json"),
        &ImportOptions { format, batch_size: 4, shared: false },
        &mut Quiet::default(),
    )
    .expect("mongo import");
    assert_eq!((mongo.written, mongo.failed), (2, 1), "{mongo:#?}");
    assert!(failed_lines(&mongo)[0].1.contains("title"));
    let dahlia = store.get_product("65a1f0c2e4b0a1b2c3d4e5f6").expect("get").expect("$oid becomes the id");
    assert_eq!((dahlia.title.as_str(), dahlia.price), ("Dahlia bouquet", Some(34.9)));
    assert_eq!(dahlia.attributes["created"], "2024-01-12T10:00:00Z");

    catalog.load_now().expect("load");
    let results = catalog.search_text(emb.as_ref(), "flowers", &SearchOptions::new(1, 0.0)).expect("search");
    assert_eq!(results.results[0].product.id, "65a1f0c2e4b0a1b2c3d4e5f6");
}
