//! A catalog whose photo URL is dead: the product is still imported and found by its text,
//! marked as missing its photo, and the next import fetches the URL again, this time from a
//! server that answers. Real models, a real SQLite file, real HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;

use ocular_fetch::{AllowList, FetchPolicy, Fetcher};
use ocular_search::import::{Format, ImportOptions, import_file};
use ocular_search::{ImageLoader, ProductView, SearchOptions};

use crate::common::{self, Quiet};

/// Answers every request on `listener` with `png` (until the test ends).
fn serve_photo(listener: TcpListener, png: Vec<u8>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                png.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&png));
        }
    });
}

#[test]
fn a_dead_photo_url_stores_the_product_and_the_next_import_retries_it() {
    let (store, dir) = common::store();
    let catalog = common::catalog(store.clone());
    let emb = common::embedders();
    // A port nothing listens on (yet): connections to it are refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/kettle.png");
    let file = dir.path().join("catalog.jsonl");
    std::fs::write(
        &file,
        format!(
            "{{\"id\": \"kettle\", \"title\": \"Blue enamel kettle\", \"image\": \"{url}\"}}\n\
             {{\"id\": \"lamp\", \"title\": \"Green desk lamp\"}}\n"
        ),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let policy = FetchPolicy { allow: AllowList::parse("127.0.0.1").unwrap(), ..FetchPolicy::default() };
    let loader = ImageLoader::with_fetcher(
        ocular_image::Limits::default(),
        Fetcher::new(policy).unwrap(),
        runtime.handle().clone(),
    );
    let options = ImportOptions { format: Format::Jsonl, batch_size: 4, shared: false };
    let import =
        || import_file(&catalog, emb.as_ref(), &loader, &file, &options, &mut Quiet::default()).expect("import");

    let first = import();
    assert_eq!((first.written, first.failed, first.photos_missing), (2, 0, 1), "{first:#?}");
    let kettle = store.get_product("kettle").unwrap().expect("stored without its photo");
    assert_eq!((kettle.image_url.as_deref(), kettle.image_sha256.as_deref()), (Some(url.as_str()), None));
    let view = ProductView::from(&kettle);
    assert!(view.photo_missing);
    assert_eq!(serde_json::to_value(&view).unwrap()["photo_missing"], true);
    assert!(!ProductView::from(&store.get_product("lamp").unwrap().unwrap()).photo_missing);
    catalog.load_now().expect("load");
    let found = catalog.search_text(emb.as_ref(), "enamel kettle", &SearchOptions::new(2, 0.0)).expect("search");
    assert_eq!(found.results[0].product.id, "kettle", "found by its text");

    // The photo's host comes back: the next import fetches it.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is still free");
    serve_photo(listener, std::fs::read(common::photo("coffee.png")).unwrap());
    let second = import();
    assert_eq!((second.written, second.unchanged, second.photos_missing), (1, 1, 0), "{second:#?}");
    let kettle = store.get_product("kettle").unwrap().unwrap();
    assert!(kettle.image_sha256.is_some() && !ProductView::from(&kettle).photo_missing);
    let query = std::fs::read(common::photo("coffee.png")).unwrap();
    let by_photo = catalog.search_image(emb.as_ref(), &query, &SearchOptions::new(1, 0.0)).expect("photo search");
    assert_eq!(by_photo.results[0].product.id, "kettle", "its photo is searchable now");

    // Once stored, the URL is not fetched again to learn nothing changed.
    let third = import();
    assert_eq!((third.written, third.unchanged), (0, 2), "{third:#?}");
}
