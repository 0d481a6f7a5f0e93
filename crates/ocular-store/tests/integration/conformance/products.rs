//! Product rows: CRUD, conflicts, replace and patch semantics, validation, cascade delete, key
//! stability, pagination, filters, content-addressed images.

use ocular_store::{
    AttributeCondition, AttributeRange, EmbeddingUpdate, NewProduct, ProductFilter, ProductKey, ProductPatch,
    StoreError, Upserted,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{Dyn, pair, product};

pub fn crud_round_trip(s: Dyn) {
    let mut new = product("mug-1", "Coffee mug", "A white mug", Some("kitchen"), Some(12.5));
    new.image_url = Some("https://example.com/mug.jpg".into());
    new.attributes = json!({"color": "white", "sizes": [1, 2], "nested": {"a": true}});
    let p = s.create_product(&new, &pair(1)).unwrap();
    assert_eq!(p.to_new(), new);
    assert_eq!(p.created_at, p.updated_at);

    assert_eq!(s.get_product("mug-1").unwrap().as_ref(), Some(&p), "reads back exactly what was written");
    assert_eq!(s.get_product_by_key(p.key).unwrap().as_ref(), Some(&p));
    assert_eq!(s.product_key("mug-1").unwrap(), Some(p.key));
    assert_eq!(s.get_product("nope").unwrap(), None);
    assert_eq!(s.product_key("nope").unwrap(), None);
    assert_eq!(s.get_product_by_key(ProductKey(u64::MAX)).unwrap(), None);

    let q = s.create_product(&product("mug-2", "Tea mug", "", None, None), &[]).unwrap();
    let r = s.create_product(&product("mug-3", "Soup bowl", "", None, None), &[]).unwrap();
    let got = s.get_products_by_keys(&[r.key, p.key, ProductKey(999_999), q.key]).unwrap();
    assert_eq!(got.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["mug-3", "mug-1", "mug-2"], "caller's order");
}

pub fn create_conflicts(s: Dyn) {
    let first = s.create_product(&product("x", "First", "", None, None), &[]).unwrap();
    let err = s.create_product(&product("x", "Second", "", None, None), &pair(2)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(err.fault(), ocular_store::Fault::Input);
    assert_eq!(s.get_product("x").unwrap().unwrap(), first, "the loser changed nothing");
    assert!(s.embeddings_of(first.key).unwrap().is_empty(), "nor stored its embeddings");
}

pub fn put_creates_then_replaces(s: Dyn) {
    let v1 = product("p", "Lamp", "Desk lamp", Some("home"), Some(30.0));
    let Upserted { product: a, created } = s.put_product(&v1, EmbeddingUpdate::Replace(&pair(3))).unwrap();
    assert!(created);
    std::thread::sleep(std::time::Duration::from_millis(2));
    // A replace drops fields it does not mention: PUT is the whole resource.
    let v2 = NewProduct { attributes: json!({}), ..NewProduct::new("p", "Floor lamp") };
    let Upserted { product: b, created } = s.put_product(&v2, EmbeddingUpdate::Keep).unwrap();
    assert!(!created);
    assert_eq!((b.key, b.created_at), (a.key, a.created_at), "key and creation time survive");
    assert!(b.updated_at > a.updated_at);
    assert_eq!(b.to_new(), v2);
    assert_eq!(s.get_product("p").unwrap().unwrap(), b);
    assert_eq!(s.embeddings_of(a.key).unwrap().len(), 2, "Keep kept the vectors");
}

pub fn patch_merges(s: Dyn) {
    let mut new = product("p", "Chair", "Wooden chair", Some("furniture"), Some(40.0));
    new.attributes = json!({"color": "brown", "legs": 4, "dims": {"w": 40, "h": 90}});
    let before = s.create_product(&new, &[]).unwrap();

    let patch: ProductPatch = serde_json::from_value(json!({
        "title": "Oak chair", "category": null, "price": 45.5,
        "attributes": {"color": null, "dims": {"h": 95}, "finish": "oiled"}
    }))
    .unwrap();
    let expected = patch.apply(&before);
    let after = s.patch_product("p", &patch, EmbeddingUpdate::Keep).unwrap();
    assert_eq!(after.to_new(), expected, "the store applies exactly ProductPatch::apply");
    assert_eq!(after.title, "Oak chair");
    assert_eq!(after.description, "Wooden chair", "absent fields are kept");
    assert_eq!(after.category, None, "null clears");
    assert_eq!(after.price, Some(45.5));
    assert_eq!(after.attributes, json!({"legs": 4, "dims": {"w": 40, "h": 95}, "finish": "oiled"}));
    assert_eq!((after.key, after.created_at), (before.key, before.created_at));
    assert_eq!(s.get_product("p").unwrap().unwrap(), after);

    let bad = ProductPatch { price: Some(Some(-1.0)), ..Default::default() };
    assert!(matches!(s.patch_product("p", &bad, EmbeddingUpdate::Keep), Err(StoreError::Invalid { .. })));
    assert_eq!(s.get_product("p").unwrap().unwrap(), after, "a refused patch changes nothing");
    let missing = s.patch_product("ghost", &ProductPatch::default(), EmbeddingUpdate::Keep);
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub fn invalid_input_writes_nothing(s: Dyn) {
    let cases = [
        product("has space", "T", "", None, None),
        product("", "T", "", None, None),
        product(&"x".repeat(129), "T", "", None, None),
        product("ok", "", "", None, None),
        product("ok", "T", "", None, Some(f64::INFINITY)),
        NewProduct { currency: Some("euro".into()), ..NewProduct::new("ok", "T") },
        NewProduct { attributes: json!("not an object"), ..NewProduct::new("ok", "T") },
        NewProduct { image_sha256: Some("0".repeat(64)), ..NewProduct::new("ok", "T") },
    ];
    for p in &cases {
        let err = s.create_product(p, &[]).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{p:?}: {err:?}");
        assert_eq!(err.fault(), ocular_store::Fault::Input);
        let err = s.put_product(p, EmbeddingUpdate::Keep).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{p:?}: {err:?}");
    }
    assert_eq!(s.list_products(&ProductFilter::default(), 0, 10).unwrap().total, Some(0));
}

pub fn delete_cascades_and_keys_are_never_reused(s: Dyn) {
    let a = s.create_product(&product("a", "Red kettle", "", None, None), &pair(10)).unwrap();
    let b = s.create_product(&product("b", "Blue kettle", "", None, None), &pair(11)).unwrap();
    assert_eq!(s.delete_product("b").unwrap(), b.key);
    assert_eq!(s.get_product("b").unwrap(), None);
    assert_eq!(s.get_product_by_key(b.key).unwrap(), None);
    assert!(s.embeddings_of(b.key).unwrap().is_empty(), "embeddings cascade");
    let mut streamed = Vec::new();
    s.for_each_embedding("image", &mut |e| {
        streamed.push(e.key);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed, [a.key]);
    let hits = s.search_text("kettle", &ProductFilter::default(), 10).unwrap();
    assert_eq!(hits.iter().map(|h| h.key).collect::<Vec<_>>(), [a.key], "the text index forgot it");
    assert!(matches!(s.delete_product("b"), Err(StoreError::NotFound(_))));

    // The deleted key was the largest; a new product must still not get it.
    let c = s.create_product(&product("c", "Green kettle", "", None, None), &[]).unwrap();
    assert!(c.key > b.key, "{:?} reuses {:?}", c.key, b.key);
    let again = s.create_product(&product("b", "Blue kettle", "", None, None), &[]).unwrap();
    assert!(again.key > c.key, "a re-created id gets a fresh key");
}

pub fn pagination_has_no_duplicates_or_gaps(s: Dyn) {
    let mut expected = Vec::new();
    for i in 0..23 {
        let cat = if i % 3 == 0 { "a" } else { "b" };
        let p =
            s.create_product(&product(&format!("p{i:02}"), &format!("Item {i}"), "", Some(cat), None), &[]).unwrap();
        expected.push(p);
    }
    for (filter, want) in [
        (ProductFilter::default(), expected.clone()),
        (
            ProductFilter { category: Some("b".into()), ..Default::default() },
            expected.iter().filter(|p| p.category.as_deref() == Some("b")).cloned().collect(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut offset = 0;
        let mut pages = 0;
        loop {
            let page = s.list_products(&filter, offset, 5).unwrap();
            assert_eq!(page.total, Some(want.len() as u64));
            assert!(page.items.len() <= 5);
            seen.extend(page.items);
            pages += 1;
            match page.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(seen, want, "pages concatenate to the listing in key order");
        assert_eq!(pages, want.len().div_ceil(5));
    }
    let past_end = s.list_products(&ProductFilter::default(), 100, 5).unwrap();
    assert!(past_end.items.is_empty() && past_end.next_offset.is_none());
    let clamped = s.list_products(&ProductFilter::default(), 0, 0).unwrap();
    assert_eq!(clamped.items.len(), 1, "a zero limit is clamped to one, so a pager always advances");
}

pub fn filters(s: Dyn) {
    let rows = [
        ("cheap", Some("shoes"), Some(10.0)),
        ("mid", Some("shoes"), Some(50.0)),
        ("dear", Some("bags"), Some(200.0)),
        ("free", Some("bags"), None),
        ("plain", None, Some(50.0)),
    ];
    for (id, cat, price) in rows {
        s.create_product(&product(id, id, "", cat, price), &[]).unwrap();
    }
    let ids = |f: ProductFilter| -> Vec<String> {
        let page = s.list_products(&f, 0, 100).unwrap();
        let keys = s.product_keys(&f).unwrap();
        assert_eq!(keys, page.items.iter().map(|p| p.key).collect::<Vec<_>>(), "product_keys agrees with listing");
        page.items.into_iter().map(|p| p.id).collect()
    };
    assert_eq!(ids(ProductFilter::default()).len(), 5);
    assert_eq!(ids(ProductFilter { category: Some("shoes".into()), ..Default::default() }), ["cheap", "mid"]);
    assert!(ids(ProductFilter { category: Some("Shoes".into()), ..Default::default() }).is_empty(), "case-sensitive");
    assert_eq!(ids(ProductFilter { min_price: Some(50.0), ..Default::default() }), ["mid", "dear", "plain"]);
    assert_eq!(ids(ProductFilter { max_price: Some(50.0), ..Default::default() }), ["cheap", "mid", "plain"]);
    let both = ProductFilter {
        category: Some("shoes".into()),
        min_price: Some(11.0),
        max_price: Some(50.0),
        ..Default::default()
    };
    assert_eq!(ids(both), ["mid"]);
    assert!(ids(ProductFilter { min_price: Some(60.0), max_price: Some(20.0), ..Default::default() }).is_empty());
    let nan = ProductFilter { min_price: Some(f64::NAN), ..Default::default() };
    assert!(matches!(s.list_products(&nan, 0, 10), Err(StoreError::Invalid { .. })));
}

pub fn attribute_filters(s: Dyn) {
    let rows = [
        ("red-42", json!({"color": "red", "size": 42, "brand": "Acme"})),
        ("red-38", json!({"color": "red", "size": 38.5})),
        ("blue-44", json!({"color": "blue", "size": 44})),
        ("text-size", json!({"color": "Red", "size": "42"})),
        ("odd", json!({"color": ["red"], "size": {"eu": 42}, "flag": true})),
        ("bare", json!({})),
    ];
    seed_shoes(s, &rows);
    let ids = |pairs: &[(&str, AttributeCondition)]| filtered_ids(s, pairs);
    let text = |v: &str| AttributeCondition::Text(v.into());
    let range = |min, max| AttributeCondition::Range(AttributeRange { min, max });
    // Equality is typed and exact: "Red" and a missing attribute do not match "red"; an array
    // holding "red" does (arrays: attribute_paths_and_arrays).
    assert_eq!(ids(&[("color", text("red"))]), ["red-42", "red-38", "odd"]);
    assert_eq!(ids(&[("color", text("Red"))]), ["text-size"]);
    assert_eq!(ids(&[("size", AttributeCondition::Number(42.0))]), ["red-42"], "the string \"42\" is not 42");
    assert_eq!(ids(&[("size", text("42"))]), ["text-size"]);
    assert_eq!(ids(&[("size", AttributeCondition::Number(38.5))]), ["red-38"]);
    // Ranges are inclusive, over numbers only (the string and the object never pass).
    assert_eq!(ids(&[("size", range(Some(38.5), Some(42.0)))]), ["red-42", "red-38"]);
    assert_eq!(ids(&[("size", range(Some(43.0), None))]), ["blue-44"]);
    assert_eq!(ids(&[("size", range(None, Some(40.0)))]), ["red-38"]);
    // Conditions combine with AND, and with the other filters.
    assert_eq!(ids(&[("color", text("red")), ("size", range(Some(40.0), None))]), ["red-42"]);
    assert_eq!(ids(&[("color", text("red")), ("brand", text("Acme"))]), ["red-42"]);
    assert!(ids(&[("brand", text("Acme")), ("size", range(None, Some(40.0)))]).is_empty());
    assert!(ids(&[("flag", text("true"))]).is_empty(), "a boolean is neither text nor number");
    assert!(ids(&[("flag", AttributeCondition::Number(1.0))]).is_empty(), "true is not 1");
    let mut priced = ProductFilter { max_price: Some(5.0), ..Default::default() };
    priced.attributes.insert("color".into(), text("red"));
    assert!(s.list_products(&priced, 0, 10).unwrap().items.is_empty());
    // A value that looks like SQL or a JSON path is data.
    assert!(ids(&[("color", text("red' OR '1'='1"))]).is_empty());
    assert!(ids(&[("color", text("$.size"))]).is_empty());

    // Bounded: names, values, count and ranges are refused before any SQL runs.
    let refused = |pairs: Vec<(String, AttributeCondition)>| {
        let f = ProductFilter { attributes: pairs.into_iter().collect(), ..Default::default() };
        for r in
            [s.list_products(&f, 0, 10).map(drop), s.product_keys(&f).map(drop), s.search_text("x", &f, 5).map(drop)]
        {
            assert!(matches!(r, Err(StoreError::Invalid { .. })), "{f:?}: {r:?}");
        }
    };
    for path in ["a..b", ".a", "a.", "a.b.c.d.e", "a.b c", "a.$", "a[0]"] {
        refused(vec![(path.into(), text("x"))]);
    }
    refused(vec![(format!("a.{}", "k".repeat(65)), text("x"))]);
    refused(vec![("col\"or".into(), text("x"))]);
    refused(vec![("".into(), text("x"))]);
    refused(vec![("k".repeat(65), text("x"))]);
    refused(vec![("color".into(), text(""))]);
    refused(vec![("color".into(), text(&"x".repeat(201)))]);
    refused(vec![("color".into(), text("a\0b"))]);
    refused(vec![("size".into(), AttributeCondition::Number(f64::NAN))]);
    refused(vec![("size".into(), range(None, None))]);
    refused(vec![("size".into(), range(Some(5.0), Some(4.0)))]);
    refused(vec![("size".into(), range(Some(f64::INFINITY), None))]);
    refused((0..9).map(|i| (format!("k{i}"), text("x"))).collect());
    assert_eq!(ids(&[("color", text(&"x".repeat(200)))]), Vec::<String>::new(), "200 characters is allowed");
}

pub fn category_counts(s: Dyn) {
    let mut keys = Vec::new();
    for (id, cat) in [("a", Some("shoes")), ("b", Some("bags")), ("c", Some("shoes")), ("d", None), ("e", Some("hats"))]
    {
        keys.push(s.create_product(&product(id, id, "", cat, None), &[]).unwrap().key);
    }
    let counts = |keys: &[ProductKey]| -> Vec<(String, u64)> {
        s.category_counts(keys).unwrap().into_iter().map(|c| (c.value, c.count)).collect()
    };
    let pair = |v: &str, n: u64| (v.to_string(), n);
    // Most first, ties by name; the uncategorised product is not counted.
    assert_eq!(counts(&keys), [pair("shoes", 2), pair("bags", 1), pair("hats", 1)]);
    // Only the keys given; a repeated key counts once; an unknown key is skipped.
    assert_eq!(
        counts(&[keys[0], keys[0], keys[4], ProductKey(u64::MAX), ProductKey(999_999)]),
        [pair("hats", 1), pair("shoes", 1)]
    );
    assert!(counts(&[]).is_empty());
    s.delete_product("e").unwrap();
    assert_eq!(counts(&keys), [pair("shoes", 2), pair("bags", 1)]);
}

pub fn images_are_content_addressed(s: Dyn) {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(s.put_image(b"abc", "image/jpeg").unwrap(), abc);
    assert_eq!(s.put_image(b"abc", "image/png").unwrap(), abc, "same bytes, same address, no new row");
    let img = s.get_image(abc).unwrap().unwrap();
    assert_eq!((img.bytes.as_slice(), img.content_type.as_str()), (&b"abc"[..], "image/jpeg"));
    assert_eq!(s.get_image(&"f".repeat(64)).unwrap(), None);
    assert!(matches!(s.put_image(b"", "image/jpeg"), Err(StoreError::Invalid { .. })));
    assert!(matches!(s.put_image(b"x", "jpeg"), Err(StoreError::Invalid { .. })));

    let with_image = NewProduct { image_sha256: Some(abc.into()), ..NewProduct::new("p", "Pictured") };
    let p = s.create_product(&with_image, &[]).unwrap();
    assert_eq!(p.image_sha256.as_deref(), Some(abc));
    let orphan = s.put_image(b"orphan", "image/webp").unwrap();

    // A cut-off in the past spares everything: an upload about to be referenced survives.
    let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert_eq!(s.purge_unreferenced_images(past).unwrap(), 0);
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert_eq!(s.purge_unreferenced_images(future).unwrap(), 1, "only the orphan goes");
    assert_eq!(s.get_image(&orphan).unwrap(), None);
    assert!(s.get_image(abc).unwrap().is_some(), "a referenced image stays");

    // Deleting the product takes its photo at once (see `lifecycle`): nothing left to purge.
    s.delete_product("p").unwrap();
    assert_eq!(s.get_image(abc).unwrap(), None);
    assert_eq!(s.purge_unreferenced_images(future).unwrap(), 0);
    assert!(s.product_keys(&ProductFilter::default()).unwrap().is_empty());
}

/// Arrays match when any element would, and dotted paths reach into nested objects: the same
/// products pass on every backend.
pub fn attribute_paths_and_arrays(s: Dyn) {
    let rows = [
        (
            "multi",
            json!({"colors": ["red", "blue"], "sizes": [38, 39.5, 40], "dims": {"width": 30, "depth": {"cm": 12}}}),
        ),
        ("single", json!({"colors": "red", "sizes": 44, "dims": {"width": 55.5, "tags": ["wide", "oak"]}})),
        ("apart", json!({"sizes": [30, 50], "dims": {"width": "30"}})),
        (
            "nested",
            json!({"colors": [["red"], {"c": "red"}, "Red"], "sizes": [[39], "39", true], "dims": [{"width": 30}]}),
        ),
        ("flat", json!({"dims.width": 30, "colors": {"red": "red"}})),
        ("bare", json!({})),
        (
            "variants",
            json!({"variants": [
                {"size": 38, "color": "red"},
                {"size": [40, 41], "color": "blue", "stock": {"eu": 3}},
                "loose",
                [{"size": 99}],
                7,
                {"size": {"eu": 45}}
            ]}),
        ),
        ("deep", json!({"groups": [{"items": [{"sku": "A1"}, {"sku": "B2"}]}, {"items": {"sku": "C3"}}]})),
    ];
    seed_shoes(s, &rows);
    let ids = |pairs: &[(&str, AttributeCondition)]| filtered_ids(s, pairs);
    let text = |v: &str| AttributeCondition::Text(v.into());
    let num = AttributeCondition::Number;
    let range = |min, max| AttributeCondition::Range(AttributeRange { min, max });
    // Any element of an array; scalars as before; nested arrays, objects' members, other types
    // and other cases never.
    assert_eq!(ids(&[("colors", text("red"))]), ["multi", "single"]);
    assert_eq!(ids(&[("colors", text("blue"))]), ["multi"]);
    assert_eq!(ids(&[("colors", text("Red"))]), ["nested"]);
    assert_eq!(ids(&[("sizes", num(39.5))]), ["multi"]);
    assert_eq!(ids(&[("sizes", num(40.0))]), ["multi"], "40 = 40.0");
    assert!(ids(&[("sizes", num(39.0))]).is_empty(), "[39], \"39\" and true are not 39");
    assert!(ids(&[("sizes", num(1.0))]).is_empty(), "true is not 1, in an array either");
    // A range holds when one element is within both bounds, not when bounds straddle elements.
    assert_eq!(ids(&[("sizes", range(Some(39.0), Some(39.9)))]), ["multi"]);
    assert_eq!(ids(&[("sizes", range(Some(41.0), None))]), ["single", "apart"]);
    assert!(ids(&[("sizes", range(Some(35.0), Some(37.0)))]).is_empty(), "[30, 50] has nothing in 35..37");
    assert_eq!(ids(&[("sizes", range(None, Some(38.0)))]), ["multi", "apart"]);
    // Dotted paths step through objects, and through arrays of objects (any element's field):
    // `nested`'s dims is [{"width": 30}]; never a key holding a dot.
    assert_eq!(ids(&[("dims.width", num(30.0))]), ["multi", "nested"]);
    assert_eq!(ids(&[("dims.width", range(Some(30.0), Some(60.0)))]), ["multi", "single", "nested"]);
    assert_eq!(ids(&[("dims.width", text("30"))]), ["apart"]);
    assert_eq!(ids(&[("dims.depth.cm", num(12.0))]), ["multi"]);
    assert_eq!(ids(&[("dims.tags", text("oak"))]), ["single"], "an array at the end of a path");
    assert!(ids(&[("dims.0.width", num(30.0))]).is_empty(), "a step is a key, never an index");
    assert!(ids(&[("dims.depth", num(12.0))]).is_empty(), "an object never equals a number");
    assert!(ids(&[("colors.red", text("blue"))]).is_empty());
    assert_eq!(ids(&[("colors.red", text("red"))]), ["flat"]);
    assert!(ids(&[("dims.width.cm", num(30.0))]).is_empty(), "past a scalar there is nothing");
    assert!(ids(&[("a.b.c.d", text("x"))]).is_empty(), "the deepest path allowed");
    // Paths into arrays of objects: each object element is looked into; scalars, arrays inside
    // the array and objects at the end are skipped; an array at the end matches by element.
    assert_eq!(ids(&[("variants.size", num(38.0))]), ["variants"]);
    assert_eq!(ids(&[("variants.size", num(41.0))]), ["variants"], "an array field of one element");
    assert!(ids(&[("variants.size", num(99.0))]).is_empty(), "an array inside the array is not searched");
    assert!(ids(&[("variants.size", num(7.0))]).is_empty(), "a scalar element has no fields");
    assert!(ids(&[("variants.size", num(45.0))]).is_empty(), "an object at the end never equals a number");
    assert_eq!(ids(&[("variants.size.eu", num(45.0))]), ["variants"]);
    assert_eq!(ids(&[("variants.size", range(Some(39.0), Some(40.0)))]), ["variants"]);
    assert!(ids(&[("variants.size", range(Some(38.5), Some(39.5)))]).is_empty(), "38 and 40 straddle it");
    assert_eq!(ids(&[("variants.color", text("blue"))]), ["variants"]);
    assert!(ids(&[("variants.color", text("loose"))]).is_empty(), "a string element has no `color`");
    assert_eq!(ids(&[("variants.stock.eu", num(3.0))]), ["variants"]);
    assert_eq!(ids(&[("groups.items.sku", text("B2"))]), ["deep"], "arrays of objects at two steps");
    assert_eq!(ids(&[("groups.items.sku", text("C3"))]), ["deep"], "an object among the elements");
    assert!(ids(&[("variants.0.size", num(38.0))]).is_empty(), "a step is a key, never an index");
    // Combined with AND, each condition on its own elements: red is one variant, 41 another.
    assert_eq!(ids(&[("variants.color", text("red")), ("variants.size", num(41.0))]), ["variants"]);
    assert_eq!(ids(&[("colors", text("red")), ("dims.width", range(None, Some(40.0)))]), ["multi"]);
    assert_eq!(ids(&[("colors", text("red")), ("sizes", range(Some(44.0), Some(44.0)))]), ["single"]);
    // The same conditions inside full-text search's query.
    let hits = |q: &str, pairs: &[(&str, AttributeCondition)]| {
        let f = ProductFilter {
            attributes: pairs.iter().map(|(k, c)| (k.to_string(), c.clone())).collect(),
            ..Default::default()
        };
        s.search_text(q, &f, 10).unwrap().len()
    };
    assert_eq!(hits("multi", &[("sizes", range(Some(39.0), Some(39.9)))]), 1);
    assert_eq!(hits("multi", &[("dims.depth.cm", num(12.0)), ("colors", text("blue"))]), 1);
    assert_eq!(hits("multi", &[("colors", text("Red"))]), 0);
    assert_eq!(hits("single", &[("dims.tags", text("wide"))]), 1);
    assert_eq!(hits("single", &[("dims.width", num(30.0))]), 0);
    assert_eq!(hits("variants", &[("variants.size", num(41.0))]), 1);
    assert_eq!(hits("variants", &[("variants.size", num(99.0))]), 0);
    assert_eq!(hits("deep", &[("groups.items.sku", text("A1"))]), 1);
}

/// Stores one product in `shoes` per row, with the row's attributes.
fn seed_shoes(s: Dyn<'_>, rows: &[(&str, serde_json::Value)]) {
    for (id, attributes) in rows {
        let mut p = product(id, id, "", Some("shoes"), Some(10.0));
        p.attributes = attributes.clone();
        s.create_product(&p, &[]).unwrap();
    }
}

/// The ids of the products the attribute conditions `pairs` let through, checking on the way
/// that `product_keys` agrees with the listing.
fn filtered_ids(s: Dyn<'_>, pairs: &[(&str, AttributeCondition)]) -> Vec<String> {
    let f = ProductFilter {
        attributes: pairs.iter().map(|(k, c)| (k.to_string(), c.clone())).collect(),
        ..Default::default()
    };
    let page = s.list_products(&f, 0, 100).unwrap();
    let keys = s.product_keys(&f).unwrap();
    assert_eq!(keys, page.items.iter().map(|p| p.key).collect::<Vec<_>>(), "product_keys agrees with listing");
    page.items.into_iter().map(|p| p.id).collect()
}
