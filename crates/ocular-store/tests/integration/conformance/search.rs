//! Full-text search: relevance order that any BM25-like ranking must give, diacritics,
//! filters, index maintenance on write, and queries that must never be syntax errors.

use ocular_store::{EmbeddingUpdate, ProductFilter, ProductKey, ProductPatch};

use super::{Dyn, product};

fn seed(s: Dyn) -> Vec<(String, ProductKey)> {
    let rows = [
        ("coffee-cup", "Coffee cup", "A white ceramic cup for your morning coffee", "kitchen", 9.0),
        ("tea-cup", "Tea cup", "A porcelain cup for green tea", "kitchen", 7.0),
        ("beans", "Coffee beans", "Arabica beans, medium roast", "grocery", 15.0),
        ("bike", "Mountain bike", "Aluminium frame painted in a coffee brown", "sports", 499.0),
        ("creme", "Café crème glass", "Double-walled glass for a café crème", "kitchen", 12.0),
        ("helmet", "Bike helmet", "Light helmet for road and mountain", "sports", 59.0),
    ];
    // BM25 needs a corpus: in six documents a word found in three has an IDF of zero. Filler
    // products make word rarity mean what it means in a real catalog.
    for i in 0..30 {
        let p =
            product(&format!("tool-{i}"), &format!("Garden tool {i}"), "Steel, for the garden", Some("garden"), None);
        s.create_product(&p, &[]).unwrap();
    }
    rows.iter()
        .map(|(id, t, d, c, p)| {
            (id.to_string(), s.create_product(&product(id, t, d, Some(c), Some(*p)), &[]).unwrap().key)
        })
        .collect()
}

fn search(s: Dyn, q: &str, f: &ProductFilter) -> Vec<String> {
    let hits = s.search_text(q, f, 10).unwrap();
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first: {hits:?}");
    let keys: Vec<ProductKey> = hits.iter().map(|h| h.key).collect();
    s.get_products_by_keys(&keys).unwrap().into_iter().map(|p| p.id).collect()
}

pub fn ranking(s: Dyn) {
    seed(s);
    let all = ProductFilter::default();
    assert_eq!(search(s, "a cup of coffee", &all)[0], "coffee-cup", "both words in the title wins");
    let coffee = search(s, "coffee", &all);
    assert_eq!(coffee.len(), 3);
    assert_eq!(coffee[2], "bike", "a word in the title beats the same word in the description");
    assert_eq!(search(s, "tea", &all), ["tea-cup"]);
    let mut cups = search(s, "CUP", &all);
    cups.sort();
    assert_eq!(cups, ["coffee-cup", "tea-cup"], "case-insensitive");
    assert_eq!(search(s, "cafe creme", &all), ["creme"], "diacritics are ignored");
    assert_eq!(search(s, "crème", &all), ["creme"]);
    assert_eq!(search(s, "grocery", &all), ["beans"], "the category is searched");
    assert!(search(s, "bicycle", &all).is_empty());
    assert_eq!(s.search_text("mountain bike helmet", &all, 1).unwrap().len(), 1, "limit");
}

pub fn hostile_queries_are_never_errors(s: Dyn) {
    seed(s);
    let all = ProductFilter::default();
    let long = "coffee ".repeat(2_000);
    let queries = [
        "",
        "   ",
        "\"",
        "\"\"",
        "\"coffee",
        "coffee\"",
        "*",
        "coffee*",
        "*coffee",
        "AND",
        "OR",
        "NOT",
        "coffee AND",
        "AND coffee OR",
        "NOT coffee",
        "-coffee",
        "+coffee",
        "NEAR(",
        "NEAR(coffee cup",
        "NEAR(coffee cup, 2)",
        "title:coffee",
        "{title description}: coffee",
        "^coffee",
        "(coffee",
        "coffee)",
        "'; DROP TABLE products; --",
        "\\",
        "\0",
        "☕ 咖啡 قهوة कॉफ़ी",
        "🙂🙂🙂",
        "e\u{301}",
        long.as_str(),
    ];
    for q in queries {
        let hits = s.search_text(q, &all, 10);
        assert!(hits.is_ok(), "{q:?}: {hits:?}");
    }
    // Operators are words like any other: the coffee products are found, not a syntax error.
    for q in ["coffee AND", "NEAR(coffee", "coffee*", "\"coffee", "title:coffee", "-coffee"] {
        assert!(search(s, q, &all).contains(&"coffee-cup".to_string()), "{q:?}");
    }
    assert!(s.search_text("", &all, 10).unwrap().is_empty(), "no words, no hits");
    assert!(s.search_text("*", &all, 10).unwrap().is_empty());
}

pub fn filters_and_index_maintenance(s: Dyn) {
    let keys = seed(s);
    let kitchen = ProductFilter { category: Some("kitchen".into()), ..Default::default() };
    assert_eq!(search(s, "coffee", &kitchen), ["coffee-cup"]);
    let cheap = ProductFilter { max_price: Some(10.0), ..Default::default() };
    let mut cheap_cups = search(s, "cup", &cheap);
    cheap_cups.sort();
    assert_eq!(cheap_cups, ["coffee-cup", "tea-cup"]);
    assert!(search(s, "glass", &cheap).is_empty(), "12.0 is above the bound");
    let dear = ProductFilter { min_price: Some(100.0), ..Default::default() };
    assert_eq!(search(s, "coffee", &dear), ["bike"]);

    // An edit is searchable at once, and the old words are gone.
    let patch =
        ProductPatch { title: Some("Espresso cup".into()), description: Some("Small".into()), ..Default::default() };
    s.patch_product("coffee-cup", &patch, EmbeddingUpdate::Keep).unwrap();
    assert!(!search(s, "coffee", &ProductFilter::default()).contains(&"coffee-cup".to_string()));
    assert_eq!(search(s, "espresso", &ProductFilter::default()), ["coffee-cup"]);
    s.put_product(&product("tea-cup", "Matcha bowl", "", Some("kitchen"), None), EmbeddingUpdate::Keep).unwrap();
    assert_eq!(search(s, "matcha", &ProductFilter::default()), ["tea-cup"]);
    assert!(search(s, "porcelain", &ProductFilter::default()).is_empty());

    s.delete_product("beans").unwrap();
    assert!(search(s, "arabica", &ProductFilter::default()).is_empty());
    assert_eq!(keys.len(), 6);
}

/// English stemming and stop words (issue 19): a query starting with an article must not match
/// on the article, and plural or inflected words find their stem.
pub fn english_words(s: Dyn) {
    seed(s);
    for (id, title, description) in [
        ("plan-a", "Plan A notebook", "Grid paper, A5"),
        ("cat", "Tabby cat figurine", "Painted ceramic"),
        ("kettle", "Kettle", "Brewed in minutes, boils fast"),
    ] {
        s.create_product(&product(id, title, description, Some("home"), None), &[]).unwrap();
    }
    let all = ProductFilter::default();
    assert_eq!(search(s, "a cat", &all), ["cat"], "the article matches nothing");
    assert_eq!(search(s, "The A", &all), Vec::<String>::new(), "stop words only: no keyword match");
    let mut cups = search(s, "cups", &all);
    cups.sort();
    assert_eq!(cups, ["coffee-cup", "tea-cup"], "a plural finds its singular");
    assert_eq!(search(s, "brewing kettles", &all), ["kettle"], "inflections share a stem");
    assert_eq!(search(s, "notebooks", &all), ["plan-a"]);
}
