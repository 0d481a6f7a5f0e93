//! Catalog import files (JSON Lines, CSV, `mongoexport`) through the importer's parser, the
//! same function `ocular import` runs before embedding. The first byte picks the format.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ocular_search::import::csv;
use ocular_search::import::parse::{Format, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    // `ocular import` reads the file as UTF-8 text and refuses it otherwise.
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let format = match pick % 3 {
        0 => Format::Jsonl,
        1 => Format::Csv,
        _ => Format::Mongo,
    };
    if let Ok(records) = parse(text, format, Path::new("/catalog")) {
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.number, i as u64 + 1, "records are numbered from 1 without gaps");
        }
    }
    if format == Format::Csv {
        let _ = csv::parse(text);
    }
});
