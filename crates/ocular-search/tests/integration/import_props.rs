//! Property: a catalog written out as JSON Lines, as CSV (every field quoted, with commas,
//! quotes, line breaks and non-ASCII text inside) or as a `mongoexport --jsonArray` file with
//! extended JSON parses back to the same products, numbered from 1 in file order.

use std::path::Path;

use ocular_search::import::parse::{Format, parse};
use ocular_store::NewProduct;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Text a shop might export: separators, quotes, both line breaks, accents, CJK, emoji.
fn text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9 ,;\"'\\n\\r\\té漢🙂-]{0,24}").expect("regex")
}

fn non_blank() -> impl Strategy<Value = String> {
    text().prop_filter("not blank", |s| !s.trim().is_empty())
}

fn product() -> impl Strategy<Value = NewProduct> {
    (
        "[A-Za-z0-9._:-]{1,16}",
        non_blank(),
        text(),
        prop::option::of(non_blank()),
        // Prices in cents: serde_json (without `float_roundtrip`) may read a 17-digit float one
        // ulp off, which no price has.
        prop::option::of((-100_000_000_000i64..100_000_000_000).prop_map(|c| c as f64 / 100.0)),
        prop::option::of("[A-Z]{3}"),
        prop::collection::btree_map("[a-z_]{1,8}", non_blank(), 0..3),
    )
        .prop_map(|(id, title, description, category, price, currency, attrs)| {
            let mut p = NewProduct::new(id, title);
            p.description = description;
            p.category = category;
            p.price = price;
            p.currency = currency;
            // `id`, `title`, ... are columns of their own, never attribute names.
            let attrs: Map<String, Value> = attrs
                .into_iter()
                .filter(|(k, _)| !COLUMNS.contains(&k.as_str()))
                .map(|(k, v)| (format!("x_{k}"), Value::String(v)))
                .collect();
            p.attributes = Value::Object(attrs);
            p
        })
}

const COLUMNS: [&str; 8] = ["id", "title", "description", "category", "price", "currency", "attributes", "image"];

fn as_json(p: &NewProduct) -> Value {
    json!({
        "id": p.id, "title": p.title, "description": p.description, "category": p.category,
        "price": p.price, "currency": p.currency, "attributes": p.attributes,
    })
}

fn quoted(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

fn as_csv(products: &[NewProduct]) -> String {
    let mut out = COLUMNS[..7].join(",") + "\r\n";
    for p in products {
        let cells = [
            p.id.clone(),
            p.title.clone(),
            p.description.clone(),
            p.category.clone().unwrap_or_default(),
            p.price.map(|v| v.to_string()).unwrap_or_default(),
            p.currency.clone().unwrap_or_default(),
            p.attributes.to_string(),
        ];
        out += &cells.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(",");
        out += "\n";
    }
    out
}

/// `mongoexport --jsonArray`: ids as `$oid`-style wrappers, prices as `$numberDouble`.
fn as_mongo(products: &[NewProduct]) -> String {
    let docs: Vec<Value> = products
        .iter()
        .map(|p| {
            let mut doc = as_json(p);
            doc["_id"] = json!({ "$oid": p.id });
            doc.as_object_mut().expect("object").remove("id");
            if let Some(price) = p.price {
                doc["price"] = json!({ "$numberDouble": price.to_string() });
            }
            doc
        })
        .collect();
    Value::Array(docs).to_string()
}

fn parsed(text: &str, format: Format) -> Vec<NewProduct> {
    let records = parse(text, format, Path::new("/catalog")).expect("the file parses");
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.number, i as u64 + 1);
            r.parsed.unwrap_or_else(|e| panic!("record {}: {e}\n{text}", r.number)).product
        })
        .collect()
}

/// What CSV cannot say: an empty description cell is absent (the default, empty, is the same).
fn normalised(mut products: Vec<NewProduct>) -> Vec<NewProduct> {
    for p in &mut products {
        if p.description.trim().is_empty() {
            p.description.clear();
        }
    }
    products
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn jsonl_round_trips(products in prop::collection::vec(product(), 0..6)) {
        let text: String = products.iter().map(|p| as_json(p).to_string() + "\n").collect();
        prop_assert_eq!(parsed(&text, Format::Jsonl), products);
    }

    #[test]
    fn csv_round_trips(products in prop::collection::vec(product(), 0..6)) {
        let text = as_csv(&products);
        prop_assert_eq!(normalised(parsed(&text, Format::Csv)), normalised(products));
    }

    #[test]
    fn mongo_json_array_round_trips(products in prop::collection::vec(product(), 0..6)) {
        prop_assert_eq!(parsed(&as_mongo(&products), Format::Mongo), products);
    }
}
