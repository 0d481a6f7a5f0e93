//! Several photos per product with the real models: a photo query finds a product by its best
//! photo and says which one; the photos follow the product's writes, and a reload from the
//! store finds the same.

use std::collections::HashMap;

use ocular_search::{ImageChange, ImageInput, SearchOptions, WriteMode};
use ocular_store::{NewProduct, ProductImage};

use crate::common;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(common::photo(name)).expect("photo")
}

const BIKE_URL: &str = "https://shop.example/bike.png";

#[test]
fn a_photo_query_matches_a_product_by_its_best_photo() {
    let (store, _dir) = common::store();
    let catalog = common::catalog(store.clone());
    let emb = common::embedders();
    catalog.load_now().expect("load");
    let fetched =
        HashMap::from([(BIKE_URL.to_string(), ImageInput { bytes: bytes("motorcycle_left.png"), source_url: None })]);
    let main = |name: &str| ImageChange::New(ImageInput { bytes: bytes(name), source_url: None });
    // A cup whose second photo shows a motorcycle, and a cat and a horse with one photo each.
    let cup = NewProduct {
        images: vec![ProductImage { url: Some(BIKE_URL.into()), sha256: None }],
        ..NewProduct::new("cup", "Cup")
    };
    let written = catalog
        .upsert_from(emb.as_ref(), WriteMode::Create, None, cup, main("coffee.png"), &fetched)
        .expect("write")
        .product;
    assert!(written.images[0].sha256.is_some(), "the further photo is stored like the main one");
    for (id, photo) in [("cat", "chelsea.png"), ("horse", "horse.png")] {
        let p = NewProduct::new(id, id);
        catalog.upsert_from(emb.as_ref(), WriteMode::Create, None, p, main(photo), &HashMap::new()).expect("write");
    }

    let query = bytes("motorcycle_right.png");
    let check = |catalog: &ocular_search::Catalog, when: &str| {
        let results = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(3, -1.0)).expect("search");
        let top = &results.results[0];
        assert_eq!(top.product.id, "cup", "{when}: {results:#?}");
        assert!(top.score > 0.9, "{when}: the motorcycle photo's cosine, {}", top.score);
        let photo = top.photo.as_ref().expect("the matched photo is named");
        assert_eq!(photo.index, 1, "{when}");
        assert_eq!(photo.url.as_deref(), Some("/api/v1/products/cup/image?photo=1"));
        assert_eq!(photo.source_url.as_deref(), Some(BIKE_URL));
        assert_eq!(top.product.images, [BIKE_URL], "{when}");
        assert_eq!(results.results.len(), 3, "{when}: each product once");
        // By its main photo, the same product says photo 0.
        let by_cup = catalog.search_image(emb.as_ref(), &bytes("coffee.png"), &SearchOptions::new(1, -1.0)).unwrap();
        assert_eq!(by_cup.results[0].photo.as_ref().map(|p| p.index), Some(0), "{when}");
        // The text search names the photo its `image_text` cosine came from.
        let text = catalog.search_text(emb.as_ref(), "a motorcycle", &SearchOptions::new(3, -1.0)).unwrap();
        let cup_hit = text.results.iter().find(|h| h.product.id == "cup").expect("cup is a candidate");
        assert_eq!(cup_hit.photo.as_ref().map(|p| p.index), Some(1), "{when}: {text:#?}");
    };
    check(&catalog, "after the writes");
    // From the store: the stored vectors of every photo.
    let reopened = common::catalog(store.clone());
    reopened.load_now().expect("load");
    check(&reopened, "after a reload");

    // Replacing the product without its further photo takes that photo's vector with it.
    let current = catalog.store().get_product("cup").unwrap();
    let plain = NewProduct { images: Vec::new(), ..current.clone().expect("stored").to_new() };
    catalog
        .upsert_from(emb.as_ref(), WriteMode::Replace, current, plain, ImageChange::Keep, &HashMap::new())
        .expect("write");
    let results = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(3, -1.0)).expect("search");
    let cup = results.results.iter().find(|h| h.product.id == "cup").expect("still a product");
    assert!(cup.score < 0.5 && cup.photo.as_ref().map(|p| p.index) == Some(0), "{results:#?}");
    assert_eq!(catalog.store().get_image(written.images[0].sha256.as_deref().unwrap()).unwrap(), None);
}

#[test]
fn an_import_keeps_every_photo_of_an_images_array() {
    use ocular_search::import::{Format, ImportOptions, import_file};
    let (store, dir) = common::store();
    let catalog = common::catalog(store);
    let emb = common::embedders();
    let photos = common::root().join("models/photos");
    let file = dir.path().join("catalog.jsonl");
    let line = |id: &str, images: &[&str]| {
        let images: Vec<String> = images.iter().map(|p| photos.join(p).display().to_string()).collect();
        serde_json::json!({"id": id, "title": id, "images": images}).to_string()
    };
    let text = [line("cup", &["coffee.png", "motorcycle_left.png"]), line("cat", &["chelsea.png"])].join("\n");
    std::fs::write(&file, text).expect("write");
    let options = ImportOptions { format: Format::Jsonl, batch_size: 8, shared: false };
    let report = import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut common::Quiet::default())
        .expect("import");
    assert_eq!((report.written, report.failed), (2, 0), "{:?}", report.failures);
    catalog.load_now().expect("load");
    let results = catalog.search_image(emb.as_ref(), &bytes("motorcycle_right.png"), &SearchOptions::new(2, -1.0));
    let top = &results.expect("search").results[0];
    assert_eq!((top.product.id.as_str(), top.photo.as_ref().map(|p| p.index)), ("cup", Some(1)));
    assert!(top.score > 0.9, "{}", top.score);

    // Importing the same file again changes nothing: every photo is recognised.
    let again = import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut common::Quiet::default())
        .expect("import");
    assert_eq!((again.written, again.unchanged), (0, 2), "{again:?}");
}

/// An import keeps the first `CatalogOptions::max_photos` photos of a longer `images` array
/// (OCULAR_MAX_PHOTOS_PER_PRODUCT), embeds those and leaves the rest unread.
#[test]
fn an_import_keeps_photos_up_to_the_catalog_limit() {
    use ocular_search::CatalogOptions;
    use ocular_search::import::{Format, ImportOptions, import_file};
    let (store, dir) = common::store();
    let catalog = common::catalog_with(store.clone(), CatalogOptions { max_photos: 2, ..CatalogOptions::default() });
    let emb = common::embedders();
    let photos = common::root().join("models/photos");
    let images: Vec<String> = ["coffee.png", "chelsea.png", "motorcycle_left.png", "no-such-photo.png"]
        .iter()
        .map(|p| photos.join(p).display().to_string())
        .collect();
    let file = dir.path().join("catalog.jsonl");
    std::fs::write(&file, serde_json::json!({"id": "cup", "title": "Cup", "images": images}).to_string())
        .expect("write");
    let options = ImportOptions { format: Format::Jsonl, batch_size: 8, shared: false };
    let report = import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut common::Quiet::default())
        .expect("import");
    assert_eq!((report.written, report.failed), (1, 0), "{:?}", report.failures);
    let cup = store.get_product("cup").expect("get").expect("cup");
    assert_eq!(cup.images.len(), 1, "the main photo and one more: {cup:?}");
    let most = store.embeddings_of(cup.key).expect("vectors").iter().map(|e| e.photo).max();
    assert_eq!(most, Some(1));
    catalog.load_now().expect("load");
    let results = catalog.search_image(emb.as_ref(), &bytes("chelsea.png"), &SearchOptions::new(1, -1.0));
    let top = &results.expect("search").results[0];
    assert_eq!(top.photo.as_ref().map(|p| p.index), Some(1), "the kept further photo is embedded");
    let results = catalog.search_image(emb.as_ref(), &bytes("motorcycle_right.png"), &SearchOptions::new(1, -1.0));
    assert!(results.expect("search").results[0].score < 0.5, "the third photo was left out");
}
