//! A model change is detected, refused, and repaired by `reindex` without a restart.

use std::time::Duration;

use ocular_search::reindex::{Which, reindex};
use ocular_search::{
    CatalogOptions, ImageChange, ImageInput, SearchError, SearchOptions, SpaceState, WriteMode, embed,
};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct};

use crate::common::{self, Quiet};

#[test]
fn vectors_of_another_model_are_never_mixed() {
    let (store, _dir) = common::store();
    let emb = common::embedders();
    let writer = common::catalog(store.clone());
    for (id, photo) in [("cup", "coffee.png"), ("rocket", "rocket.jpg"), ("bike", "motorcycle_left.png")] {
        let bytes = std::fs::read(common::photo(photo)).expect("photo");
        let image = ImageChange::New(ImageInput { bytes, source_url: None });
        writer.upsert(emb.as_ref(), WriteMode::Create, NewProduct::new(id, id), image).expect("create");
    }
    // An older image model made this product's photo vector.
    let bike = store.get_product("bike").expect("get").expect("bike");
    let stale = Embedding::new(embed::IMAGE, "old-model@0.9", vec![0.5; 1280]);
    store.set_embeddings(bike.key, EmbeddingUpdate::Merge(&[stale])).expect("stale vector");

    // A server starting now: the image space refuses, the others serve.
    let options = CatalogOptions { recheck: Duration::ZERO, ..CatalogOptions::default() };
    let server = common::catalog_with(store.clone(), options);
    let status = server.load_now().expect("load");
    assert_eq!(status[0].state, SpaceState::ReindexRequired { found: vec!["old-model@0.9".into()] });
    assert!(matches!(status[1].state, SpaceState::Ready { vectors: 3, .. }), "{status:?}");
    let query = std::fs::read(common::photo("motorcycle_right.png")).expect("photo");
    let refused = server.search_image(emb.as_ref(), &query, &SearchOptions::new(3, 0.0));
    assert!(matches!(refused, Err(SearchError::ReindexRequired { .. })), "{refused:?}");
    server.search_text(emb.as_ref(), "cup", &SearchOptions::new(3, 0.0)).expect("text search still works");

    // `ocular reindex` (another process) recomputes the stale vector...
    let report =
        reindex(&writer, emb.as_ref(), &common::loader(), Which::Image, 8, &mut Quiet::default()).expect("reindex");
    assert_eq!(report.products, 1, "{report:?}");
    assert!(report.failures.is_empty());
    // ...and the server notices on its next search, without a restart.
    let results = server.search_image(emb.as_ref(), &query, &SearchOptions::new(3, 0.0)).expect("search");
    assert_eq!(results.results[0].product.id, "bike");
    assert!(results.results[0].score > 0.9);
}
