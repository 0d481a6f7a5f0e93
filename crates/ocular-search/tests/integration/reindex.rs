//! A model change is detected, refused, and repaired by `reindex` without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ocular_search::reindex::{Which, reindex};
use ocular_search::{
    Catalog, CatalogOptions, Embedders, ImageChange, ImageInput, SearchError, SearchOptions, SpaceState, WriteMode,
    embed,
};
use ocular_store::{Embedding, EmbeddingUpdate, NewProduct, ProductImage, ProductKey, Store};

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

#[test]
fn a_reindex_keeps_every_photo_of_a_product() {
    let (store, _dir) = common::store();
    keeps_every_photo(store);
}

/// The same on PostgreSQL, whose spaces search the stored vectors through pgvector.
#[test]
fn a_reindex_keeps_every_photo_of_a_product_on_postgres() {
    let Some((store, _schema)) = crate::pg::store() else { return };
    keeps_every_photo(store);
}

/// A reindex re-embeds every photo of a product, not only the main one: the further photos'
/// vectors are recomputed from their stored bytes and kept under their own photo numbers.
fn keeps_every_photo(store: Arc<dyn Store>) {
    let emb = common::embedders();
    let writer = common::catalog(store.clone());
    let bytes = |name: &str| std::fs::read(common::photo(name)).expect("photo");
    let key = create_cup_with_two_photos(&writer, emb.as_ref(), store.as_ref());
    let main = |name: &str| ImageChange::New(ImageInput { bytes: bytes(name), source_url: None });
    for (id, photo) in [("cat", "chelsea.png"), ("horse", "horse.png")] {
        writer
            .upsert_from(emb.as_ref(), WriteMode::Create, None, NewProduct::new(id, id), main(photo), &HashMap::new())
            .expect("create");
    }
    let image_vectors = |store: &dyn Store| {
        let mut v: Vec<Embedding> =
            store.embeddings_of(key).expect("vectors").into_iter().filter(|e| e.space != embed::TEXT).collect();
        v.sort_by(|a, b| (&a.space, a.photo).cmp(&(&b.space, b.photo)));
        v
    };
    let ingested = image_vectors(store.as_ref());
    assert_eq!(ingested.iter().map(|e| e.photo).collect::<Vec<_>>(), [0, 1, 0, 1], "{ingested:?}");

    // An older image model made both photos' vectors.
    let stale: Vec<Embedding> =
        (0..2).map(|photo| Embedding::new(embed::IMAGE, "old-model@0.9", vec![0.5; 1280]).of_photo(photo)).collect();
    store.set_embeddings(key, EmbeddingUpdate::Merge(&stale)).expect("stale vectors");

    let report =
        reindex(&writer, emb.as_ref(), &common::loader(), Which::Image, 8, &mut Quiet::default()).expect("reindex");
    assert_eq!((report.products, report.vectors), (1, 4), "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");

    // Every photo has its vectors again, of the configured model, as ingest made them.
    let after = image_vectors(store.as_ref());
    assert_eq!(after.len(), ingested.len(), "{after:?}");
    for (a, b) in after.iter().zip(&ingested) {
        assert_eq!((&a.space, a.photo, &a.model), (&b.space, b.photo, &b.model));
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let dot: f32 = a.vector.iter().zip(&b.vector).map(|(x, y)| x * y).sum();
        let cos = dot / (norm(&a.vector) * norm(&b.vector));
        assert!(cos > 0.999, "{} photo {}: cosine {cos} with the ingested vector", a.space, a.photo);
    }

    // A query by the second photo's subject finds the product and names photo 1.
    let server = common::catalog(store.clone());
    server.load_now().expect("load");
    let results = server.search_image(emb.as_ref(), &bytes("motorcycle_right.png"), &SearchOptions::new(3, -1.0));
    let results = results.expect("search");
    let top = &results.results[0];
    assert_eq!(top.product.id, "cup", "{results:#?}");
    assert!(top.score > 0.9, "{}", top.score);
    assert_eq!(top.photo.as_ref().map(|p| p.index), Some(1), "{results:#?}");
}

/// Under a lower photo limit (`CatalogOptions::max_photos`, OCULAR_MAX_PHOTOS_PER_PRODUCT) a
/// reindex embeds only the first photos: the product keeps its further photo listed, and the
/// photo's stale vectors go, so no search can match by it.
#[test]
fn a_reindex_embeds_only_the_photos_within_the_limit() {
    let (store, _dir) = common::store();
    let emb = common::embedders();
    let writer = common::catalog(store.clone());
    let key = create_cup_with_two_photos(&writer, emb.as_ref(), store.as_ref());
    let stale: Vec<Embedding> =
        (0..2).map(|photo| Embedding::new(embed::IMAGE, "old-model@0.9", vec![0.5; 1280]).of_photo(photo)).collect();
    store.set_embeddings(key, EmbeddingUpdate::Merge(&stale)).expect("stale vectors");

    let one = common::catalog_with(store.clone(), CatalogOptions { max_photos: 1, ..CatalogOptions::default() });
    assert_eq!(one.max_photos(), 1);
    let report =
        reindex(&one, emb.as_ref(), &common::loader(), Which::Image, 8, &mut Quiet::default()).expect("reindex");
    assert_eq!((report.products, report.vectors), (1, 2), "photo 0 in image and image_text: {report:?}");
    let mut photos: Vec<(String, u16)> = store
        .embeddings_of(key)
        .expect("vectors")
        .into_iter()
        .filter(|e| e.space != embed::TEXT)
        .map(|e| (e.space, e.photo))
        .collect();
    photos.sort();
    assert_eq!(photos, [(embed::IMAGE.to_string(), 0), (embed::IMAGE_TEXT.to_string(), 0)]);
    assert_eq!(store.get_product("cup").expect("get").expect("cup").images.len(), 1, "still listed");
    let server = common::catalog(store.clone());
    server.load_now().expect("load");
    let query = std::fs::read(common::photo("motorcycle_right.png")).expect("photo");
    let results = server.search_image(emb.as_ref(), &query, &SearchOptions::new(1, -1.0));
    let top = &results.expect("search").results[0];
    assert!(top.score < 0.5 && top.photo.as_ref().map(|p| p.index) == Some(0), "{top:#?}");
}

/// Creates product "cup": main photo coffee.png, a second photo (motorcycle_left.png) fetched
/// from its URL; returns its key.
fn create_cup_with_two_photos(writer: &Catalog, emb: &dyn Embedders, store: &dyn Store) -> ProductKey {
    let bytes = |name: &str| std::fs::read(common::photo(name)).expect("photo");
    let url = "https://shop.example/bike.png";
    let fetched =
        HashMap::from([(url.to_string(), ImageInput { bytes: bytes("motorcycle_left.png"), source_url: None })]);
    let cup = NewProduct {
        images: vec![ProductImage { url: Some(url.into()), sha256: None }],
        ..NewProduct::new("cup", "Cup")
    };
    let main = ImageChange::New(ImageInput { bytes: bytes("coffee.png"), source_url: None });
    writer.upsert_from(emb, WriteMode::Create, None, cup, main, &fetched).expect("create");
    store.get_product("cup").expect("get").expect("cup").key
}
