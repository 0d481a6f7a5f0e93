//! What must not outlive its use (a customer's photo, an expired analysis) and versions that a
//! conditional replace compares (no lost update).

use std::time::Duration;

use ocular_store::{Analysis, EmbeddingUpdate, NewProduct, StoreError};
use serde_json::json;
use time::OffsetDateTime;

use super::{Dyn, pair, product};

fn pictured(s: Dyn, id: &str, sha: &str) -> ocular_store::Product {
    let new = NewProduct { image_sha256: Some(sha.into()), ..product(id, "Pictured", "", None, None) };
    s.put_product(&new, EmbeddingUpdate::Keep).unwrap().product
}

pub fn photos_go_with_their_last_product(s: Dyn) {
    let shared = s.put_image(b"shared photo", "image/jpeg").unwrap();
    let (a, b) = (pictured(s, "a", &shared), pictured(s, "b", &shared));
    assert_eq!(a.image_sha256, b.image_sha256);
    s.delete_product("a").unwrap();
    assert!(s.get_image(&shared).unwrap().is_some(), "b still shows it");
    s.delete_product("b").unwrap();
    assert_eq!(s.get_image(&shared).unwrap(), None, "gone with the last product that showed it");

    // Replacing the photo (PUT or a conditional replace) drops the old one; keeping it keeps it.
    let (first, second) = (s.put_image(b"first", "image/jpeg").unwrap(), s.put_image(b"second", "image/png").unwrap());
    let c = pictured(s, "c", &first);
    let kept = s.replace_product_if_unchanged(&c.to_new(), EmbeddingUpdate::Keep, c.updated_at).unwrap();
    assert!(s.get_image(&first).unwrap().is_some(), "an unchanged photo stays");
    let next = NewProduct { image_sha256: Some(second.clone()), ..c.to_new() };
    s.replace_product_if_unchanged(&next, EmbeddingUpdate::Keep, kept.product.updated_at).unwrap();
    assert_eq!(s.get_image(&first).unwrap(), None, "the replaced photo is gone");
    let cleared = NewProduct { image_sha256: None, ..next };
    s.put_product(&cleared, EmbeddingUpdate::Keep).unwrap();
    assert_eq!(s.get_image(&second).unwrap(), None, "a cleared photo is gone");

    // An upload whose product never came is the periodic purge's (tested in `products`).
    let stray = s.put_image(b"stray", "image/jpeg").unwrap();
    assert_eq!(s.purge_unreferenced_images(OffsetDateTime::now_utc() + time::Duration::minutes(1)).unwrap(), 1);
    assert_eq!(s.get_image(&stray).unwrap(), None);
}

pub fn conditional_replace_refuses_a_stale_version(s: Dyn) {
    let v1 = s.create_product(&product("p", "One", "", None, None), &pair(1)).unwrap();
    let mut two = v1.to_new();
    two.title = "Two".into();
    let v2 = s.replace_product_if_unchanged(&two, EmbeddingUpdate::Keep, v1.updated_at).unwrap();
    assert!(!v2.created);
    assert!(v2.product.updated_at > v1.updated_at, "every write is a new version");
    assert_eq!(s.get_product("p").unwrap().unwrap(), v2.product, "the answer is what was stored");

    // A writer still holding v1 loses, and writes nothing.
    let mut three = v1.to_new();
    three.title = "Three".into();
    let stale = s.replace_product_if_unchanged(&three, EmbeddingUpdate::Keep, v1.updated_at);
    assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
    assert_eq!(s.get_product("p").unwrap().unwrap().title, "Two");
    assert_eq!(stale.unwrap_err().fault(), ocular_store::Fault::Input);

    // Versions move forward even for writes within one clock tick.
    let mut last = v2.product.updated_at;
    for _ in 0..20 {
        let u = s.put_product(&two, EmbeddingUpdate::Keep).unwrap().product.updated_at;
        assert!(u > last, "{u} after {last}");
        last = u;
    }

    // A deleted or never-created product is stale too: nothing is created.
    s.delete_product("p").unwrap();
    assert!(matches!(s.replace_product_if_unchanged(&two, EmbeddingUpdate::Keep, last), Err(StoreError::Stale(_))));
    assert_eq!(s.get_product("p").unwrap(), None);
}

pub fn expired_analyses_go_and_recent_ones_stay(s: Dyn) {
    let mut old = Analysis::new(json!({}), json!({"label": "nv"}), json!({}));
    old.created_at = OffsetDateTime::now_utc() - time::Duration::days(31);
    let recent = Analysis::new(json!({}), json!({"label": "mel"}), json!({}));
    s.insert_analysis(&old).unwrap();
    s.insert_analysis(&recent).unwrap();
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(s.delete_analyses_older_than(month).unwrap(), 1);
    assert_eq!(s.get_analysis(&old.id).unwrap(), None);
    assert!(s.get_analysis(&recent.id).unwrap().is_some());
    assert_eq!(s.delete_analyses_older_than(Duration::from_secs(u64::MAX)).unwrap(), 0, "nothing is that old");
}
