//! Unit tests of record parsing: every format, Mongo's extended JSON, and per-record errors.

use std::path::Path;

use serde_json::json;

use super::parse::{Format, ImageRef, parse, plain, to_record};

const BASE: &str = "/catalog";

fn ok(records: &[super::Record], i: usize) -> &super::Parsed {
    records[i].parsed.as_ref().unwrap_or_else(|e| panic!("record {i}: {e}"))
}

#[test]
fn json_lines_with_paths_urls_and_a_bad_line() {
    let text = concat!(
        r#"{"id":"cup-1","title":"Espresso cup","price":12.5,"currency":"eur","image":"../photos/coffee.png","attributes":{"color":"white"},"stock":3}"#,
        "\n\n",
        "{not json}\n",
        r#"{"id":"bike","name":"Motorcycle","image_url":"https://img.example/m.jpg","price":"4999.00"}"#,
        "\n",
        r#"{"title":"no id"}"#,
        "\n"
    );
    let records = parse(text, Format::Jsonl, Path::new(BASE)).unwrap();
    assert_eq!(records.iter().map(|r| (r.number, r.line)).collect::<Vec<_>>(), [(1, 1), (2, 3), (3, 4), (4, 5)]);
    let cup = ok(&records, 0);
    assert_eq!(cup.product.id, "cup-1");
    assert_eq!(cup.product.price, Some(12.5));
    assert_eq!(cup.product.currency.as_deref(), Some("EUR"));
    assert_eq!(cup.image, Some(ImageRef::Path(Path::new(BASE).join("../photos/coffee.png"))));
    assert_eq!(cup.product.attributes, json!({"color": "white", "stock": 3}), "unknown fields are kept");
    assert!(records[1].parsed.as_ref().unwrap_err().contains("invalid JSON"));
    let bike = ok(&records, 2);
    assert_eq!((bike.product.title.as_str(), bike.product.price), ("Motorcycle", Some(4999.0)));
    assert_eq!(bike.image, Some(ImageRef::Url("https://img.example/m.jpg".into())));
    assert!(records[3].parsed.as_ref().unwrap_err().contains("no id"));
}

#[test]
fn csv_with_header_quotes_and_attributes() {
    let text = "id,title,description,price,image,attributes,brand\n\
                mug,\"Mug, large\",\"He said \"\"nice\"\"\",9.90,mug.jpg,\"{\"\"size\"\":\"\"L\"\"}\",Acme\n\
                plain,Plain,,,,,\n\
                bad,Bad,,abc,,,\n\
                long,Too,many,1,x,{},b,extra\n";
    let records = parse(text, Format::Csv, Path::new(BASE)).unwrap();
    assert_eq!(records.len(), 4);
    let mug = ok(&records, 0);
    assert_eq!(mug.product.title, "Mug, large");
    assert_eq!(mug.product.description, "He said \"nice\"");
    assert_eq!(mug.product.price, Some(9.9));
    assert_eq!(mug.image, Some(ImageRef::Path(Path::new(BASE).join("mug.jpg"))));
    assert_eq!(mug.product.attributes, json!({"size": "L", "brand": "Acme"}));
    let plain_row = ok(&records, 1);
    assert_eq!((plain_row.product.price, &plain_row.image), (None, &None), "empty cells are absent");
    assert!(records[2].parsed.as_ref().unwrap_err().contains("price"));
    assert!(records[3].parsed.as_ref().unwrap_err().contains("header"));
    assert_eq!(records[3].line, 5);
}

#[test]
fn mongoexport_lines_and_arrays() {
    let doc = r#"{"_id":{"$oid":"65a1f0c2e4b0a1b2c3d4e5f6"},"name":"Rocket lamp","price":{"$numberDecimal":"39.99"},"images":["lamp.jpg","b.jpg"],"created":{"$date":{"$numberLong":"1700000000000"}},"qty":{"$numberInt":"7"}}"#;
    let lines = parse(&format!("{doc}\n"), Format::Mongo, Path::new(BASE)).unwrap();
    let array = parse(
        &format!("[{doc},\n {{\"_id\":1,\"title\":\"T\",\"price\":{{\"$numberDouble\":\"2.5\"}}}}]"),
        Format::Mongo,
        Path::new(BASE),
    )
    .unwrap();
    for records in [&lines, &array] {
        let lamp = ok(records, 0);
        assert_eq!(lamp.product.id, "65a1f0c2e4b0a1b2c3d4e5f6");
        assert_eq!(lamp.product.price, Some(39.99));
        assert_eq!(lamp.image, Some(ImageRef::Path(Path::new(BASE).join("lamp.jpg"))));
        assert_eq!(lamp.further, [ImageRef::Path(Path::new(BASE).join("b.jpg"))], "the rest of `images`");
        assert_eq!(lamp.product.attributes, json!({"created": 1_700_000_000_000i64, "qty": 7}));
    }
    let second = ok(&array, 1);
    assert_eq!((second.product.id.as_str(), second.product.price), ("1", Some(2.5)));
    assert!(parse("[1, 2", Format::Mongo, Path::new(BASE)).is_err(), "a broken array fails the file");
}

#[test]
fn extended_json_is_unwrapped_recursively() {
    let v = plain(
        json!({"a": [{"$oid": "x"}], "b": {"$numberLong": "12"}, "c": {"$unknown": 1}, "d": {"e": {"$numberDouble": "NaN"}}}),
    );
    assert_eq!(v, json!({"a": ["x"], "b": 12, "c": {"$unknown": 1}, "d": {"e": "NaN"}}));
}

#[test]
fn field_types_are_checked() {
    let base = Path::new(BASE);
    assert!(to_record(json!([1]), base).unwrap_err().contains("object"));
    assert!(to_record(json!({"id": "a", "title": ["x"]}), base).unwrap_err().contains("title"));
    assert!(to_record(json!({"id": "a", "title": "x", "attributes": 3}), base).unwrap_err().contains("attributes"));
    assert!(to_record(json!({"id": "a", "title": "x", "price": true}), base).unwrap_err().contains("price"));
    let p = to_record(json!({"id": 42, "title": "x", "image": "  "}), base).unwrap();
    assert_eq!((p.product.id.as_str(), p.image), ("42", None));
}

#[test]
fn formats_resolve_from_flags_and_names() {
    let f = |given: Option<&str>, name: &str| Format::resolve(given, Path::new(name));
    assert_eq!(f(None, "a.csv"), Ok(Format::Csv));
    assert_eq!(f(None, "a.json"), Ok(Format::Mongo));
    assert_eq!(f(None, "a.jsonl"), Ok(Format::Jsonl));
    assert_eq!(f(Some("mongo"), "a.txt"), Ok(Format::Mongo));
    assert!(f(Some("xml"), "a.xml").is_err());
}

#[test]
fn several_photos_from_json_arrays_and_csv_cells() {
    use super::parse::MAX_PHOTOS;
    let url = |i: usize| format!("https://img.example/{i}.jpg");
    let many: Vec<String> = (0..MAX_PHOTOS + 4).map(url).collect();
    let line = json!({"id": "a", "title": "A", "image": url(0), "images": many}).to_string();
    let records = parse(&line, Format::Jsonl, Path::new(BASE)).unwrap();
    let a = ok(&records, 0);
    assert_eq!(a.image, Some(ImageRef::Url(url(0))));
    let further: Vec<ImageRef> = (1..MAX_PHOTOS).map(|i| ImageRef::Url(url(i))).collect();
    assert_eq!(a.further, further, "the main photo once, then the rest up to the store's ceiling");

    let text = "id,title,images\nb,B,front.jpg| https://img.example/back.jpg |\n";
    let records = parse(text, Format::Csv, Path::new(BASE)).unwrap();
    let b = ok(&records, 0);
    assert_eq!(b.image, Some(ImageRef::Path(Path::new(BASE).join("front.jpg"))));
    assert_eq!(b.further, [ImageRef::Url("https://img.example/back.jpg".into())]);
}
