//! Several threads on one store: writers, readers, a streaming loader and import workers at
//! once. Every write must land exactly once and no chunk may be claimed twice.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::Duration;

use ocular_store::{ImportLine, NewImport, ProductFilter};

use super::{Dyn, pair, product};

pub fn threads_share_a_store(s: Dyn) {
    const WRITERS: usize = 4;
    const EACH: usize = 20;
    let job = s
        .begin_import(&NewImport { source: "f".into(), source_sha256: "e".repeat(64), total_lines: 40, chunk_lines: 2 })
        .unwrap();
    let claimed = std::thread::scope(|scope| {
        for w in 0..WRITERS {
            scope.spawn(move || {
                for i in 0..EACH {
                    let id = format!("w{w}-{i}");
                    s.create_product(&product(&id, "Thread product", "", Some("t"), None), &pair((w * 100 + i) as u64))
                        .unwrap();
                    assert!(s.get_product(&id).unwrap().is_some(), "a thread reads its own write");
                }
            });
        }
        scope.spawn(move || {
            for _ in 0..10 {
                let page = s.list_products(&ProductFilter::default(), 0, 50).unwrap();
                assert!(page.items.len() <= 50);
                s.for_each_embedding("image", &mut |e| {
                    assert_eq!(e.vector.len(), 1280, "a streamed row is never half written");
                    ControlFlow::Continue(())
                })
                .unwrap();
                s.search_text("thread", &ProductFilter::default(), 10).unwrap();
            }
        });
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let job = job.id.clone();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(c) =
                        s.claim_import_chunk(&job, &format!("worker-{w}"), Duration::from_secs(600)).unwrap()
                    {
                        let lines: Vec<ImportLine> = c.lines().map(|l| ImportLine::ok(l, format!("p{l}"))).collect();
                        s.record_import_lines(&job, &lines).unwrap();
                        s.complete_import_chunk(&job, c.first_line).unwrap();
                        mine.push(c.first_line);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });

    let page = s.list_products(&ProductFilter::default(), 0, 1000).unwrap();
    assert_eq!(page.total, Some((WRITERS * EACH) as u64));
    let keys: HashSet<_> = page.items.iter().map(|p| p.key).collect();
    assert_eq!(keys.len(), WRITERS * EACH, "keys are unique");
    let streamed = s.for_each_embedding("text", &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(streamed, (WRITERS * EACH) as u64);

    let unique: HashSet<_> = claimed.iter().collect();
    assert_eq!((claimed.len(), unique.len()), (20, 20), "every chunk claimed exactly once");
    let j = s.import_job(&job.id).unwrap().unwrap();
    assert_eq!(j.lines_ok, 40);
    assert!(j.finished_at.is_some());
}
