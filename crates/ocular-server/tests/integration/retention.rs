//! The maintenance sweep (issue 16, finding #10): expired analyses and unused product photos
//! go; everything still in use or inside its retention stays.

use std::time::Duration;

use ocular_server::retention::{self, Policy, Swept};
use ocular_store::{Analysis, NewProduct};
use serde_json::json;
use time::OffsetDateTime;

use crate::common::TestApp;

fn analysis(days_old: i64) -> Analysis {
    let mut a = Analysis::new(json!({"age": 50}), json!({"label": "nv"}), json!({}));
    a.created_at = OffsetDateTime::now_utc() - time::Duration::days(days_old);
    a.thumbnail_jpeg = Some(vec![0xFF, 0xD8, 0xFF, 0xD9]);
    a
}

#[test]
fn the_sweep_deletes_expired_analyses_and_unused_photos_only() {
    let app = TestApp::new(&["--analysis-retention-days", "30"]);
    let store = app.state.store.clone();
    let (old, recent) = (analysis(31), analysis(29));
    store.insert_analysis(&old).unwrap();
    store.insert_analysis(&recent).unwrap();
    let used = store.put_image(b"shown by a product", "image/jpeg").unwrap();
    let new = NewProduct { image_sha256: Some(used.clone()), ..NewProduct::new("p", "Pictured") };
    store.create_product(&new, &[]).unwrap();
    let stray = store.put_image(b"uploaded, product never written", "image/jpeg").unwrap();

    let policy = Policy::from_config(&app.state.config);
    assert_eq!(policy.analyses, Some(Duration::from_secs(30 * 86_400)));
    let swept = retention::sweep(store.as_ref(), &policy).unwrap();
    assert_eq!(swept, Swept { analyses_deleted: 1, analysis_images_purged: 0, product_images_purged: 0 });
    assert!(store.get_analysis(&old.id).unwrap().is_none(), "31 days old with 30 days retention");
    assert!(store.get_analysis(&recent.id).unwrap().is_some());
    assert!(store.get_image(&stray).unwrap().is_some(), "a fresh upload may still get its product");

    // Past the grace period the stray photo goes; the one a product shows stays.
    let later = Policy { orphan_grace: Duration::ZERO, ..policy };
    assert_eq!(retention::sweep(store.as_ref(), &later).unwrap().product_images_purged, 1);
    assert!(store.get_image(&stray).unwrap().is_none());
    assert!(store.get_image(&used).unwrap().is_some());
}

#[test]
fn retention_defaults_to_ninety_days_and_zero_keeps_analyses() {
    let default = Policy::from_config(&TestApp::new(&[]).state.config);
    assert_eq!(default.analyses, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(default.analysis_images, None);

    let app = TestApp::new(&["--analysis-retention-days", "0"]);
    let ancient = analysis(3650);
    app.state.store.insert_analysis(&ancient).unwrap();
    let policy = Policy::from_config(&app.state.config);
    assert_eq!(policy.analyses, None);
    assert_eq!(retention::sweep(app.state.store.as_ref(), &policy).unwrap().analyses_deleted, 0);
    assert!(app.state.store.get_analysis(&ancient.id).unwrap().is_some());
}
