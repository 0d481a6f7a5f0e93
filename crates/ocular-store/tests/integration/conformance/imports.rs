//! Import bookkeeping: a job per file digest, resumed after a crash; chunks claimed under
//! leases by several workers; per-line outcomes for skipping and for the failure report.

use std::time::Duration;

use ocular_store::{ImportLine, NewImport, StoreError};

use super::Dyn;

const LEASE: Duration = Duration::from_secs(600);

fn source(digest: char, total_lines: u64) -> NewImport {
    NewImport {
        source: "catalog.jsonl".into(),
        source_sha256: digest.to_string().repeat(64),
        total_lines,
        chunk_lines: 4,
    }
}

pub fn resume_by_digest(s: Dyn) {
    let job = s.begin_import(&source('a', 10)).unwrap();
    assert_eq!((job.total_lines, job.chunk_lines, job.lines_ok, job.finished_at), (10, 4, 0, None));
    let again = s.begin_import(&NewImport { chunk_lines: 99, ..source('a', 10) }).unwrap();
    assert_eq!(again.id, job.id, "same bytes: the unfinished job resumes");
    assert_eq!(again.chunk_lines, 4, "with its own chunking");
    assert_ne!(s.begin_import(&source('b', 10)).unwrap().id, job.id, "other bytes: another job");
    assert_eq!(s.import_job(&job.id).unwrap(), Some(again));
    assert_eq!(s.import_job("nope").unwrap(), None);

    let empty = s.begin_import(&source('c', 0)).unwrap();
    assert!(empty.finished_at.is_some(), "nothing to do is done");
    assert_eq!(s.claim_import_chunk(&empty.id, "w", LEASE).unwrap(), None);

    let bad = NewImport { source_sha256: "xyz".into(), ..source('a', 1) };
    assert!(matches!(s.begin_import(&bad), Err(StoreError::Invalid { .. })));
    assert!(matches!(s.begin_import(&NewImport { chunk_lines: 0, ..source('d', 1) }), Err(StoreError::Invalid { .. })));
}

pub fn claims_leases_and_completion(s: Dyn) {
    let job = s.begin_import(&source('a', 10)).unwrap();
    let c1 = s.claim_import_chunk(&job.id, "w1", LEASE).unwrap().unwrap();
    let c2 = s.claim_import_chunk(&job.id, "w2", LEASE).unwrap().unwrap();
    let c3 = s.claim_import_chunk(&job.id, "w3", LEASE).unwrap().unwrap();
    assert_eq!([c1.lines(), c2.lines(), c3.lines()], [1..5, 5..9, 9..11], "1-based, covering every line once");
    assert_eq!(s.claim_import_chunk(&job.id, "w4", LEASE).unwrap(), None, "all held");

    assert!(!s.complete_import_chunk(&job.id, c1.first_line).unwrap());
    // w2 and w3 crash; a single restarted importer takes their chunks back at once.
    assert_eq!(s.release_import_claims(&job.id).unwrap(), 2);
    let again = s.claim_import_chunk(&job.id, "w5", LEASE).unwrap().unwrap();
    assert_eq!(again, c2, "the first unfinished chunk, not the done one");

    // An expired lease frees a chunk without any release.
    let short = s.claim_import_chunk(&job.id, "w6", Duration::ZERO).unwrap().unwrap();
    assert_eq!(short, c3);
    assert_eq!(s.claim_import_chunk(&job.id, "w7", LEASE).unwrap(), Some(c3.clone()));

    assert!(!s.complete_import_chunk(&job.id, c3.first_line).unwrap());
    assert!(s.complete_import_chunk(&job.id, c2.first_line).unwrap(), "the last chunk finishes the job");
    assert!(!s.complete_import_chunk(&job.id, c2.first_line).unwrap(), "only once");
    assert!(s.import_job(&job.id).unwrap().unwrap().finished_at.is_some());
    assert_eq!(s.claim_import_chunk(&job.id, "w8", LEASE).unwrap(), None);
    assert!(matches!(s.complete_import_chunk(&job.id, 2), Err(StoreError::NotFound(_))));
    assert!(matches!(s.claim_import_chunk("ghost", "w", LEASE), Err(StoreError::NotFound(_))));

    let next = s.begin_import(&source('a', 10)).unwrap();
    assert_ne!(next.id, job.id, "a finished job is not resumed: importing the file again is a new job");
}

pub fn line_outcomes(s: Dyn) {
    let job = s.begin_import(&source('a', 10)).unwrap();
    s.record_import_lines(
        &job.id,
        &[
            ImportLine::ok(1, "p1"),
            ImportLine::failed(2, "line 2: title is missing"),
            ImportLine::ok(3, "p3"),
            ImportLine::failed(6, "image_url: timed out after 10 s"),
        ],
    )
    .unwrap();
    let done = s.import_lines(&job.id, 1..5).unwrap();
    assert_eq!(done.iter().map(|l| (l.line, l.is_ok())).collect::<Vec<_>>(), [(1, true), (2, false), (3, true)]);
    assert_eq!(done[0], ImportLine::ok(1, "p1"));

    // A retry turns a failure into success.
    s.record_import_lines(&job.id, &[ImportLine::ok(6, "p6")]).unwrap();
    let j = s.import_job(&job.id).unwrap().unwrap();
    assert_eq!((j.lines_ok, j.lines_failed), (3, 1));
    let failures = s.import_failures(&job.id, 0, 10).unwrap();
    assert_eq!(failures.items, [ImportLine::failed(2, "line 2: title is missing")]);
    assert_eq!((failures.total, failures.next_offset), (Some(1), None));

    let many: Vec<ImportLine> = (1..=10).map(|l| ImportLine::failed(l, format!("bad {l}"))).collect();
    s.record_import_lines(&job.id, &many).unwrap();
    let page = s.import_failures(&job.id, 0, 4).unwrap();
    assert_eq!((page.items.len(), page.next_offset, page.total), (4, Some(4), Some(10)));
    assert_eq!(page.items[3], ImportLine::failed(4, "bad 4"));
    assert!(matches!(s.record_import_lines("ghost", &many), Err(StoreError::NotFound(_))));
}
