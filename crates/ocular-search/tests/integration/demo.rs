//! The demo catalog, imported and searched exactly as `scripts/demo.sh` does.

use ocular_search::import::{Format, ImportOptions, import_file};
use ocular_search::{SearchError, SearchOptions};

use crate::common::{self, Quiet};

fn ids(results: &ocular_search::SearchResults) -> Vec<&str> {
    results.results.iter().map(|h| h.product.id.as_str()).collect()
}

#[test]
fn demo_catalog_finds_by_photo_and_by_text() {
    let (store, _dir) = common::store();
    let catalog = common::catalog(store);
    let emb = common::embedders();
    let options = ImportOptions { format: Format::Jsonl, batch_size: 8, shared: false };
    let file = common::root().join("demo/catalog.jsonl");
    let report =
        import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut Quiet::default()).expect("import");
    assert_eq!((report.total, report.written, report.failed), (21, 21, 0), "{:?}", report.failures);

    // Searching before the indexes are loaded is refused, not answered from an empty index.
    let query = std::fs::read(common::photo("motorcycle_right.png")).expect("photo");
    let early = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(5, 0.0));
    assert!(matches!(early, Err(SearchError::IndexLoading { .. })), "{early:?}");
    catalog.load_now().expect("load");

    // motorcycle_right is not in the catalog; its twin motorcycle_left is.
    let results = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(5, 0.0)).expect("search");
    assert_eq!(ids(&results)[0], "dirt-bike-250", "{results:#?}");
    assert!(results.results[0].score > 0.9 && results.results[1].score < 0.5, "{results:#?}");
    assert!(results.timings_ms.0.contains_key("embed") && results.timings_ms.0.contains_key("index"));

    let results = catalog.search_text(emb.as_ref(), "a cup of coffee", &SearchOptions::new(5, 0.0)).expect("search");
    assert_eq!(ids(&results)[0], "espresso-cup", "{results:#?}");
    let top = &results.results[0];
    let signals = top.signals.as_ref().expect("text results explain themselves");
    assert_eq!(Some(top.similarity), signals.text.into_iter().chain(signals.image_text).reduce(f32::max));

    // By what the photo shows, when the text never says it: ConSE finds the cat print.
    let results = catalog.search_text(emb.as_ref(), "a kitten", &SearchOptions::new(3, 0.0)).expect("search");
    assert_eq!(ids(&results)[0], "cat-portrait", "{results:#?}");

    // The threshold cuts on similarity: only the twin motorcycle is that close.
    let results = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(10, 0.8)).expect("search");
    assert_eq!(ids(&results), ["dirt-bike-250"]);

    // Filters: category, then price.
    let mut opts = SearchOptions::new(10, -1.0);
    opts.filter.category = Some("posters".into());
    let results = catalog.search_image(emb.as_ref(), &query, &opts).expect("search");
    assert_eq!(results.results.len(), 4, "astronaut, rocket, deep field, moon");
    assert!(results.results.iter().all(|h| h.product.category.as_deref() == Some("posters")));
    let mut opts = SearchOptions::new(10, -1.0);
    opts.filter.max_price = Some(10.0);
    let results = catalog.search_text(emb.as_ref(), "poster", &opts).expect("search");
    assert!(!results.results.is_empty());
    assert!(results.results.iter().all(|h| h.product.price.is_some_and(|p| p <= 10.0)), "{results:#?}");

    // Pagination: pages of 4 tile the full ranking without gaps or repeats.
    let all = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(21, -1.0)).expect("search");
    assert_eq!((all.results.len(), all.next_offset), (21, None));
    let mut paged = Vec::new();
    let mut opts = SearchOptions::new(4, -1.0);
    loop {
        let page = catalog.search_image(emb.as_ref(), &query, &opts).expect("search");
        paged.extend(page.results.iter().map(|h| h.product.id.clone()));
        match page.next_offset {
            Some(next) => opts.offset = next,
            None => break,
        }
    }
    assert_eq!(paged, ids(&all));

    // Importing the same file again writes nothing.
    let again =
        import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut Quiet::default()).expect("import");
    assert_eq!((again.written, again.unchanged, again.failed), (0, 21, 0));
}

#[test]
fn similar_products_come_from_stored_vectors() {
    let (store, _dir) = common::store();
    let catalog = common::catalog(store);
    let emb = common::embedders();
    let options = ImportOptions { format: Format::Jsonl, batch_size: 8, shared: false };
    let file = common::root().join("demo/catalog.jsonl");
    import_file(&catalog, emb.as_ref(), &common::loader(), &file, &options, &mut Quiet::default()).expect("import");
    catalog.load_now().expect("load");

    // The rocket's neighbours, by its stored photo vector: never itself; the same order as an
    // image search with the rocket's own photo (less the rocket).
    let similar = catalog.search_similar("rocket-launch-poster", &SearchOptions::new(20, -1.0)).expect("similar");
    assert_eq!(similar.results.len(), 20, "every other product");
    assert!(!ids(&similar).contains(&"rocket-launch-poster"));
    let photo = std::fs::read(common::photo("rocket.jpg")).expect("photo");
    let by_photo = catalog.search_image(emb.as_ref(), &photo, &SearchOptions::new(21, -1.0)).expect("search");
    assert_eq!(ids(&by_photo)[0], "rocket-launch-poster");
    assert_eq!(ids(&similar), ids(&by_photo)[1..]);

    // Pages tile the list without repeating or skipping; filters apply.
    let mut paged = Vec::new();
    let mut opts = SearchOptions::new(6, -1.0);
    loop {
        let page = catalog.search_similar("rocket-launch-poster", &opts).expect("page");
        paged.extend(page.results.iter().map(|h| h.product.id.clone()));
        match page.next_offset {
            Some(next) => opts.offset = next,
            None => break,
        }
    }
    assert_eq!(paged, ids(&similar));
    let mut opts = SearchOptions::new(10, -1.0);
    opts.filter.category = Some("posters".into());
    let posters = catalog.search_similar("rocket-launch-poster", &opts).expect("similar");
    assert_eq!(posters.results.len(), 3, "astronaut, deep field, moon: {:?}", ids(&posters));

    let missing = catalog.search_similar("no-such-product", &SearchOptions::new(5, 0.0));
    assert!(matches!(missing, Err(SearchError::Store(ocular_store::StoreError::NotFound(_)))), "{missing:?}");
}
