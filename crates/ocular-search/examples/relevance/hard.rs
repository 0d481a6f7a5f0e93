//! The hard catalog of the relevance benchmark, made from the photos `ocular models fetch`
//! puts in `models/photos`: what many real catalogs look like, and what rank fusion got wrong.
//!
//! - every photo three times as "Item NNNN", one boilerplate description for all: the photo
//!   itself and two near-duplicates (mirrored and cropped; cropped and brightened, re-encoded
//!   as JPEG), so only the photo says what the product is;
//! - ten of the photos also as the honest demo product (same photo, real title and
//!   description), so text and keywords still matter; the other eleven are findable by their
//!   photo only;
//! - seven products whose title lies about their photo ("Motorcycle helmet" over a brick wall),
//!   with the article "A" in one title;
//! - the demo catalog's categories.
//!
//! What a product *is* is its photo: judgements grade products by the photo's name (its
//! `concept`, the file stem), or by product id for exact-id queries.

use std::io::Write;
use std::path::{Path, PathBuf};

use ocular_image::image::{RgbImage, imageops};

/// Every photo of the catalog: file name and category. `motorcycle_right.png` is left out: it
/// is a query, the twin of `motorcycle_left.png`.
pub const PHOTOS: [(&str, &str); 21] = [
    ("coffee.png", "kitchen"),
    ("motorcycle_left.png", "vehicles"),
    ("chelsea.png", "art"),
    ("astronaut.png", "posters"),
    ("rocket.jpg", "posters"),
    ("china.jpg", "art"),
    ("flower.jpg", "garden"),
    ("horse.png", "home"),
    ("brick.png", "home"),
    ("camera.png", "photography"),
    ("clock_motion.png", "home"),
    ("coins.png", "collectibles"),
    ("color.png", "art-supplies"),
    ("grass.png", "garden"),
    ("gravel.png", "garden"),
    ("hubble_deep_field.jpg", "posters"),
    ("ihc.png", "art"),
    ("logo.png", "stationery"),
    ("moon.png", "posters"),
    ("page.png", "stationery"),
    ("retina.jpg", "art"),
];

/// Concepts that also appear as their honest demo product.
pub const HONEST: [&str; 10] = [
    "coffee",
    "motorcycle_left",
    "astronaut",
    "china",
    "horse",
    "clock_motion",
    "coins",
    "hubble_deep_field",
    "logo",
    "page",
];

/// Products whose title lies: (id, title, category, the concept its photo shows).
pub const MISLEADING: [(&str, &str, &str, &str); 7] = [
    ("helmet", "Motorcycle helmet, full face", "vehicles", "brick"),
    ("cushion", "Tabby cat cushion", "home", "gravel"),
    ("model-kit", "Space rocket model kit", "collectibles", "coins"),
    ("moon-lamp", "A moon lamp", "home", "grass"),
    ("vase", "Flower vase", "garden", "clock_motion"),
    ("gloves", "Horse riding gloves", "sports", "retina"),
    ("descaler", "Espresso machine descaler", "kitchen", "color"),
];

pub const BOILERPLATE: &str = "Quality product from our shop. Ships within 2 days, 30-day returns.";

/// The concept of a photo file: its stem.
pub fn concept(file: &str) -> String {
    Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The product number of item `i` (of 63): a fixed permutation, so neighbouring numbers are
/// not one photo's copies.
pub fn item_number(i: usize) -> usize {
    1000 + (i * 37) % 63
}

/// A photo made different: crops, mirrors, light and size, as near-duplicates and query photos.
pub fn transform(img: &RgbImage, how: &str) -> RgbImage {
    let (w, h) = img.dimensions();
    let crop = |img: &RgbImage, fraction: f32, left: bool| {
        let (cw, ch) = (((w as f32) * fraction) as u32, ((h as f32) * fraction) as u32);
        let (x, y) = if left { (0, 0) } else { ((w - cw) / 2, (h - ch) / 2) };
        imageops::crop_imm(img, x, y, cw.max(1), ch.max(1)).to_image()
    };
    match how {
        "mirror-crop90" => crop(&imageops::flip_horizontal(img), 0.9, false),
        "crop70-bright" => {
            let mut out = crop(img, 0.7, true);
            out.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c = c.saturating_add(24)));
            out
        }
        "crop60" => crop(img, 0.6, false),
        "mirror" => imageops::flip_horizontal(img),
        "small" => imageops::resize(img, (w / 3).max(1), (h / 3).max(1), imageops::FilterType::Triangle),
        "gray" => {
            let g = imageops::grayscale(img);
            RgbImage::from_fn(w, h, |x, y| {
                let v = g.get_pixel(x, y).0[0];
                ocular_image::image::Rgb([v, v, v])
            })
        }
        "none" | "" => img.clone(),
        other => panic!("unknown transform {other}"),
    }
}

pub fn decode(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run `ocular models fetch`)", path.display()));
    ocular_image::decode(&bytes, &Default::default(), None).expect("decode").image
}

/// Writes the catalog (`catalog.jsonl` and the near-duplicate JPEGs) into `dir`; returns the
/// JSONL path and every product's concept.
pub fn write(root: &Path, dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let photos = root.join("models/photos");
    let mut lines: Vec<serde_json::Value> = Vec::new();
    let mut concepts: Vec<(String, String)> = Vec::new();
    let mut add = |line: serde_json::Value, concept: &str, lines: &mut Vec<serde_json::Value>| {
        concepts.push((line["id"].as_str().unwrap_or_default().to_string(), concept.to_string()));
        lines.push(line);
    };
    for (p, (file, category)) in PHOTOS.iter().enumerate() {
        let original = photos.join(file);
        let img = decode(&original);
        let c = concept(file);
        for (v, how) in ["none", "mirror-crop90", "crop70-bright"].iter().enumerate() {
            let n = item_number(3 * p + v);
            let image = if *how == "none" {
                original.clone()
            } else {
                let path = dir.join(format!("item-{n}.jpg"));
                let jpeg = ocular_image::encode_jpeg(&transform(&img, how), 85).expect("jpeg");
                std::fs::write(&path, jpeg).expect("write photo");
                path
            };
            let line = serde_json::json!({
                "id": format!("item-{n}"), "title": format!("Item {n}"), "description": BOILERPLATE,
                "category": category, "price": 10.0 + (n % 40) as f64, "image": image,
            });
            add(line, &c, &mut lines);
        }
    }
    let demo = std::fs::read_to_string(root.join("demo/catalog.jsonl")).expect("demo catalog");
    for row in demo.lines().filter(|l| !l.trim().is_empty()) {
        let mut v: serde_json::Value = serde_json::from_str(row).expect("demo line");
        let c = concept(v["image"].as_str().unwrap_or_default());
        if HONEST.contains(&c.as_str()) {
            v["image"] = serde_json::json!(root.join("demo").join(v["image"].as_str().unwrap_or_default()));
            add(v, &c, &mut lines);
        }
    }
    for (id, title, category, shows) in MISLEADING {
        let file = PHOTOS.iter().find(|(f, _)| concept(f) == shows).map(|(f, _)| *f).expect("a known photo");
        let line = serde_json::json!({
            "id": id, "title": title, "description": BOILERPLATE, "category": category, "price": 19.0,
            "image": photos.join(file),
        });
        add(line, shows, &mut lines);
    }
    let path = dir.join("catalog.jsonl");
    let mut out = std::fs::File::create(&path).expect("catalog file");
    for line in &lines {
        writeln!(out, "{line}").expect("write catalog");
    }
    (path, concepts)
}
