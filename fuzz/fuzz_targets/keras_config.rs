//! A Keras `config.json` through the converter's topology step: parse both config dialects,
//! then inline nested models into one list of layer calls (`keras::parse_topology`). A model
//! file is untrusted input to `ocular models convert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let _ = ocular_convert::keras::parse_topology(text, pick & 1 == 1);
});
