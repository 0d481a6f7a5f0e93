//! Several photos per product: further photos in `images`, one vector per (space, photo), and
//! uploads that go when the last product showing them lets go of them.

use std::ops::ControlFlow;

use ocular_store::{Embedding, EmbeddingUpdate, MAX_PHOTOS, NewProduct, ProductImage, ProductPatch, StoreError};
use time::OffsetDateTime;

use super::{Dyn, bits, product, vector};

fn photo_vectors(seed: u64, photos: u16) -> Vec<Embedding> {
    let mut list: Vec<Embedding> = (0..photos)
        .map(|i| Embedding::new("image", "effnet-lite0@1", vector(seed + u64::from(i), 1280)).of_photo(i))
        .collect();
    list.push(Embedding::new("text", "minilm@1", vector(seed + 99, 384)));
    list
}

fn url(u: &str) -> ProductImage {
    ProductImage { url: Some(u.into()), sha256: None }
}

pub fn several_photos_round_trip(s: Dyn) {
    let upload = s.put_image(b"side view", "image/jpeg").unwrap();
    let new = NewProduct {
        image_url: Some("https://shop.example/front.jpg".into()),
        images: vec![url("https://shop.example/back.jpg"), ProductImage { url: None, sha256: Some(upload.clone()) }],
        ..product("p", "Boot", "", None, None)
    };
    let vectors = photo_vectors(1, 3);
    let stored = s.create_product(&new, &vectors).unwrap();
    assert_eq!(stored.images, new.images);
    assert_eq!(s.get_product("p").unwrap().unwrap(), stored, "further photos read back as written");
    assert_eq!(stored.photo(2), Some((None, Some(upload.as_str()))));
    assert_eq!(stored.photo(3), None);

    // Every photo's vector, bit-exact, in (space, photo) order.
    let back = s.embeddings_of(stored.key).unwrap();
    let photos: Vec<(&str, u16)> = back.iter().map(|e| (e.space.as_str(), e.photo)).collect();
    assert_eq!(photos, [("image", 0), ("image", 1), ("image", 2), ("text", 0)]);
    for e in &back {
        let written = vectors.iter().find(|v| v.space == e.space && v.photo == e.photo).unwrap();
        assert_eq!(bits(&e.vector), bits(&written.vector));
    }
    let mut streamed = Vec::new();
    s.for_each_embedding("image", &mut |e| {
        streamed.push((e.key, e.photo, bits(e.vector)));
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed.len(), 3);
    assert_eq!(streamed.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(streamed[1].2, bits(&vectors[1].vector));
    let census: u64 = s.embedding_models().unwrap().iter().filter(|c| c.space == "image").map(|c| c.count).sum();
    assert_eq!(census, 3, "the census counts vectors, one per photo");

    // Merging a space gives it exactly the photos listed; other spaces stay.
    let one = [Embedding::new("image", "effnet-lite0@1", vector(50, 1280))];
    let patch = ProductPatch { images: Some(Vec::new()), ..Default::default() };
    let fewer = patch.apply(&stored);
    s.put_product(&fewer, EmbeddingUpdate::Merge(&one)).unwrap();
    let back = s.embeddings_of(stored.key).unwrap();
    let photos: Vec<(&str, u16)> = back.iter().map(|e| (e.space.as_str(), e.photo)).collect();
    assert_eq!(photos, [("image", 0), ("text", 0)], "the dropped photos' vectors are gone");
    assert!(s.get_product("p").unwrap().unwrap().images.is_empty());
}

pub fn photo_input_is_checked(s: Dyn) {
    let too_many =
        NewProduct { images: vec![url("https://shop.example/x.jpg"); MAX_PHOTOS], ..product("a", "A", "", None, None) };
    let empty =
        NewProduct { images: vec![ProductImage { url: None, sha256: None }], ..product("b", "B", "", None, None) };
    let unknown = NewProduct {
        images: vec![ProductImage { url: None, sha256: Some("0".repeat(64)) }],
        ..product("c", "C", "", None, None)
    };
    for bad in [too_many, empty, unknown] {
        let got = s.create_product(&bad, &[]);
        assert!(matches!(&got, Err(StoreError::Invalid { field, .. }) if field == "images"), "{got:?}");
        assert_eq!(s.get_product(&bad.id).unwrap(), None, "nothing written");
    }
    let twice = [
        Embedding::new("image", "m@1", vector(1, 8)).of_photo(1),
        Embedding::new("image", "m@1", vector(2, 8)).of_photo(1),
    ];
    let got = s.create_product(&product("d", "D", "", None, None), &twice);
    assert!(matches!(got, Err(StoreError::Invalid { .. })), "{got:?}");
    let beyond = [Embedding::new("image", "m@1", vector(1, 8)).of_photo(MAX_PHOTOS as u16)];
    assert!(s.create_product(&product("e", "E", "", None, None), &beyond).is_err());
}

pub fn further_photos_go_with_their_product(s: Dyn) {
    let (side, top) = (s.put_image(b"side", "image/jpeg").unwrap(), s.put_image(b"top", "image/png").unwrap());
    let shows = |sha: &str| ProductImage { url: None, sha256: Some(sha.to_string()) };
    let new = NewProduct { images: vec![shows(&side), shows(&top)], ..product("p", "Lamp", "", None, None) };
    s.put_product(&new, EmbeddingUpdate::Keep).unwrap();
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    assert_eq!(s.purge_unreferenced_images(later).unwrap(), 0, "uploads a further photo shows are kept");

    // Replacing the further photos drops the one no longer shown, keeps the other.
    let next = NewProduct { images: vec![shows(&top)], ..new.clone() };
    s.put_product(&next, EmbeddingUpdate::Keep).unwrap();
    assert_eq!(s.get_image(&side).unwrap(), None, "the replaced further photo is gone");
    assert!(s.get_image(&top).unwrap().is_some());

    // A photo moved from further to main stays; deleting the product takes every photo.
    let moved = NewProduct { image_sha256: Some(top.clone()), images: Vec::new(), ..next };
    s.put_product(&moved, EmbeddingUpdate::Keep).unwrap();
    assert!(s.get_image(&top).unwrap().is_some(), "still shown, as the main photo");
    let back = NewProduct { image_sha256: None, images: vec![shows(&top)], ..moved };
    s.put_product(&back, EmbeddingUpdate::Keep).unwrap();
    assert!(s.get_image(&top).unwrap().is_some(), "still shown, as a further photo");
    s.delete_product("p").unwrap();
    assert_eq!(s.get_image(&top).unwrap(), None, "gone with the product");
}
