//! Stored analyses: exact round trip with images, newest-first pages, retention operations.

use ocular_store::{Analysis, AnalysisImage, StoreError, truncate_to_micros};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::Dyn;

fn analysis(at: OffsetDateTime, label: &str, images: bool) -> Analysis {
    let mut a = Analysis::new(
        json!({"age": 45, "sex": "female", "location": "trunk", "force": false}),
        json!({"label": label, "probabilities": [0.1, 0.2, 0.05, 0.05, 0.3, 0.25, 0.05]}),
        json!({"decode": 1.5, "inference": 20.25, "total": 25.0}),
    );
    a.created_at = at;
    if images {
        a.thumbnail_jpeg = Some(vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9]);
        a.heatmap_jpeg = Some(vec![0xFF, 0xD8, 9, 8, 0xFF, 0xD9]);
    }
    a
}

fn base() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap() + Duration::microseconds(123_456)
}

pub fn crud_and_images(s: Dyn) {
    let a = analysis(base(), "mel", true);
    s.insert_analysis(&a).unwrap();
    assert_eq!(s.get_analysis(&a.id).unwrap().as_ref(), Some(&a), "exact round trip, images included");
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Thumbnail).unwrap(), a.thumbnail_jpeg);
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Heatmap).unwrap(), a.heatmap_jpeg);
    assert!(matches!(s.insert_analysis(&a), Err(StoreError::Conflict(_))));

    let plain = analysis(base(), "nv", false);
    s.insert_analysis(&plain).unwrap();
    assert_eq!(s.analysis_image(&plain.id, AnalysisImage::Heatmap).unwrap(), None, "no image is not an error");
    let summary = &s.list_analyses(0, 10).unwrap().items[0];
    assert_eq!(summary, &plain.summary());
    assert!(!summary.has_thumbnail && !summary.has_heatmap);

    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(s.get_analysis(&unknown).unwrap(), None);
    assert_eq!(s.get_analysis("not a uuid").unwrap(), None);
    assert!(matches!(s.analysis_image(&unknown, AnalysisImage::Thumbnail), Err(StoreError::NotFound(_))));

    s.delete_analysis(&a.id).unwrap();
    assert_eq!(s.get_analysis(&a.id).unwrap(), None);
    assert!(matches!(s.delete_analysis(&a.id), Err(StoreError::NotFound(_))));

    let mut bad = analysis(base(), "x", false);
    bad.id = bad.id.to_uppercase();
    assert!(matches!(s.insert_analysis(&bad), Err(StoreError::Invalid { .. })));

    // `Analysis::new` stamps a time the store keeps exactly.
    let fresh = Analysis::new(json!({}), json!({}), json!({}));
    assert_eq!(fresh.created_at, truncate_to_micros(fresh.created_at));
    s.insert_analysis(&fresh).unwrap();
    assert_eq!(s.get_analysis(&fresh.id).unwrap().unwrap().created_at, fresh.created_at);
}

/// Images rendered after the analysis was answered are attached to its row, never over an
/// image already there, and not to an analysis deleted in the meantime.
pub fn attach_images_later(s: Dyn) {
    let a = analysis(base(), "bkl", false);
    s.insert_analysis(&a).unwrap();
    let (photo, overlay) = (vec![0xFF, 0xD8, 4, 5, 0xFF, 0xD9], vec![0xFF, 0xD8, 6, 7, 0xFF, 0xD9]);
    let drawn = json!({ "inference": 40.5, "render": 12.25, "total": 60.75 });
    assert!(s.attach_analysis_images(&a.id, &photo, Some(&overlay), &drawn).unwrap());
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Thumbnail).unwrap(), Some(photo.clone()));
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Heatmap).unwrap(), Some(overlay.clone()));
    assert_eq!(s.get_analysis(&a.id).unwrap().unwrap().timings, drawn, "the render's timings are stored with it");
    let summary = s.list_analyses(0, 10).unwrap().items.into_iter().find(|x| x.id == a.id).unwrap();
    assert!(summary.has_thumbnail && summary.has_heatmap);

    assert!(s.attach_analysis_images(&a.id, &[0xFF, 0xD8, 0xFF, 0xD9], None, &drawn).unwrap());
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Thumbnail).unwrap(), Some(photo), "never overwritten");
    assert_eq!(s.analysis_image(&a.id, AnalysisImage::Heatmap).unwrap(), Some(overlay));

    let photo_only = analysis(base(), "nv", false);
    s.insert_analysis(&photo_only).unwrap();
    assert!(s.attach_analysis_images(&photo_only.id, &[0xFF, 0xD8, 0xFF, 0xD9], None, &drawn).unwrap());
    assert_eq!(s.analysis_image(&photo_only.id, AnalysisImage::Heatmap).unwrap(), None);

    s.delete_analysis(&a.id).unwrap();
    assert!(!s.attach_analysis_images(&a.id, &[0xFF, 0xD8, 0xFF, 0xD9], None, &drawn).unwrap(), "deleted first");
    assert!(!s.attach_analysis_images("not a uuid", &[0xFF, 0xD8, 0xFF, 0xD9], None, &drawn).unwrap());
}

/// Only the token's hash is stored; it comes back with the analysis and on its own (without
/// image bytes), and a malformed hash is refused.
pub fn access_tokens(s: Dyn) {
    let mut a = analysis(base(), "bcc", true);
    a.token_sha256 = Some("0123456789abcdef".repeat(4));
    s.insert_analysis(&a).unwrap();
    assert_eq!(s.get_analysis(&a.id).unwrap().as_ref(), Some(&a), "the hash round-trips");
    assert_eq!(s.analysis_token_sha256(&a.id).unwrap(), a.token_sha256);

    let legacy = analysis(base(), "nv", false);
    s.insert_analysis(&legacy).unwrap();
    assert_eq!(s.analysis_token_sha256(&legacy.id).unwrap(), None);

    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(matches!(s.analysis_token_sha256(&unknown), Err(StoreError::NotFound(_))));
    assert!(matches!(s.analysis_token_sha256("not\0a uuid"), Err(StoreError::NotFound(_))));

    for bad in ["ABCDEF".repeat(10) + "ABCD", "0".repeat(63), "g".repeat(64)] {
        let mut b = analysis(base(), "x", false);
        b.token_sha256 = Some(bad.clone());
        assert!(matches!(s.insert_analysis(&b), Err(StoreError::Invalid { .. })), "{bad}");
    }
    s.delete_analysis(&a.id).unwrap();
    assert!(matches!(s.analysis_token_sha256(&a.id), Err(StoreError::NotFound(_))));
}

pub fn newest_first_pagination(s: Dyn) {
    let mut inserted = Vec::new();
    for i in 0..13 {
        // Out of time order on purpose, with ties: 0, 3, 1, 4, 2 ... seconds.
        let at = base() + Duration::seconds((i * 3) % 5);
        let a = analysis(at, &format!("a{i}"), i % 2 == 0);
        s.insert_analysis(&a).unwrap();
        inserted.push(a);
    }
    // Newest first; equal times: the later insert first.
    let mut want: Vec<_> = inserted.iter().enumerate().collect();
    want.sort_by(|(i, a), (j, b)| b.created_at.cmp(&a.created_at).then(j.cmp(i)));
    let want: Vec<String> = want.into_iter().map(|(_, a)| a.id.clone()).collect();

    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let page = s.list_analyses(offset, 4).unwrap();
        assert_eq!(page.total, Some(13));
        for item in &page.items {
            let full = inserted.iter().find(|a| a.id == item.id).unwrap();
            assert_eq!(item, &full.summary(), "summaries carry flags, not bytes");
        }
        got.extend(page.items.into_iter().map(|i| i.id));
        match page.next_offset {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(got, want);
}

pub fn retention(s: Dyn) {
    let old = analysis(base(), "old", true);
    let new = analysis(base() + Duration::days(40), "new", true);
    s.insert_analysis(&old).unwrap();
    s.insert_analysis(&new).unwrap();

    let cutoff = base() + Duration::days(30);
    assert_eq!(s.purge_analysis_images(cutoff).unwrap(), 1);
    assert_eq!(s.purge_analysis_images(cutoff).unwrap(), 0, "already purged");
    let kept = s.get_analysis(&old.id).unwrap().unwrap();
    assert_eq!((kept.thumbnail_jpeg, kept.heatmap_jpeg), (None, None));
    assert_eq!(kept.result, old.result, "the record stays");
    assert!(s.get_analysis(&new.id).unwrap().unwrap().heatmap_jpeg.is_some(), "newer images stay");

    assert_eq!(s.delete_analyses_before(cutoff).unwrap(), 1);
    assert_eq!(s.get_analysis(&old.id).unwrap(), None);
    assert_eq!(s.list_analyses(0, 10).unwrap().total, Some(1));

    // The relative form: everything is older than zero seconds.
    assert_eq!(s.purge_analysis_images_older_than(std::time::Duration::ZERO).unwrap(), 1);
    assert_eq!(s.purge_analysis_images_older_than(std::time::Duration::from_secs(u64::MAX)).unwrap(), 0);
}
