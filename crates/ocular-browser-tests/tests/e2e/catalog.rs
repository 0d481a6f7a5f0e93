//! A small catalog of real photos (scikit-image and scikit-learn sample images that the
//! workspace already ships as fixtures), added through the public API before a search test.
//! Adding products is itself tested through the page in `products.rs`.

use crate::harness::{Ctx, TestResult, http};

pub struct Product {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub category: &'static str,
    pub price: &'static str,
    pub photo: &'static str,
}

pub const MOTORCYCLE: &str = "Red touring motorcycle";
pub const COFFEE: &str = "Espresso cup with saucer";

pub const PRODUCTS: &[Product] = &[
    Product {
        id: "moto-red",
        title: MOTORCYCLE,
        description: "A red and chrome touring motorcycle, seen from the left side.",
        category: "Vehicles",
        price: "8999",
        photo: "fixtures/reference/effnet_motorcycle_left.png",
    },
    Product {
        id: "espresso-cup",
        title: COFFEE,
        description: "A cup of coffee with latte art, served on a white saucer.",
        category: "Kitchen",
        price: "12",
        photo: "crates/ocular-image/tests/data/coffee.png",
    },
    Product {
        id: "cat-poster",
        title: "Tabby cat poster",
        description: "A poster of a ginger tabby cat looking into the camera.",
        category: "Decor",
        price: "19.5",
        photo: "crates/ocular-image/tests/data/chelsea.png",
    },
    Product {
        id: "astronaut-print",
        title: "Astronaut portrait print",
        description: "A portrait of an astronaut in a white spacesuit in front of a flag.",
        category: "Decor",
        price: "24",
        photo: "fixtures/keras/sklesion/astronaut.png",
    },
    Product {
        id: "temple-print",
        title: "Summer Palace photo print",
        description: "A photograph of a temple roof among trees under a blue sky.",
        category: "Decor",
        price: "15",
        photo: "crates/ocular-image/tests/data/china.jpg",
    },
    Product {
        id: "temple-postcard",
        title: "Temple postcard",
        description: "A small postcard of a temple roof among trees.",
        category: "Stationery",
        price: "3.5",
        photo: "crates/ocular-image/tests/data/china_draft.png",
    },
    Product {
        id: "cat-sticker",
        title: "Cat face sticker",
        description: "A sticker of a tabby cat's face.",
        category: "Stationery",
        price: "2",
        photo: "crates/ocular-image/tests/data/clip_chelsea_crop_224.png",
    },
    Product {
        id: "cat-mousepad",
        title: "Cat mouse pad",
        description: "A mouse pad printed with a tabby cat.",
        category: "Office",
        price: "9",
        photo: "crates/ocular-image/tests/data/chelsea.webp",
    },
];

/// Adds every product through `POST /api/v1/products` (multipart, with its photo).
pub fn seed(ctx: &Ctx) -> TestResult {
    for p in PRODUCTS {
        let fields = [
            ("id", p.id),
            ("title", p.title),
            ("description", p.description),
            ("category", p.category),
            ("price", p.price),
            ("currency", "USD"),
        ];
        let (content_type, body) = http::multipart(&fields, ("image", &ctx.fixture(p.photo)))?;
        let resp = http::request(&ctx.base, "POST", "/api/v1/products", Some((&content_type, &body)))?;
        crate::ensure!(
            resp.status == 201,
            "adding product {} answered {}: {}",
            p.id,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    Ok(())
}
