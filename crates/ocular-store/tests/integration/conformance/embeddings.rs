//! Embeddings: exact round trip, the three update modes, atomicity with the product write,
//! batches, the model census, streaming, the reindex work list.

use std::ops::ControlFlow;

use ocular_store::{Embedding, EmbeddingUpdate, ModelCount, NewProduct, ProductKey, ProductWrite, StoreError};

use super::{Dyn, bits, pair, product, vector};

pub fn vectors_round_trip_bit_exact(s: Dyn) {
    let odd = vec![0.0, -0.0, 1e-45, -1e-42, f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1.0 / 3.0];
    let list = vec![
        Embedding::new("image", "effnet-lite0@1", vector(42, 1280)),
        Embedding::new("image_text", "conse@1", odd.clone()),
        Embedding::new("text", "minilm@1", vector(43, 384)),
    ];
    let p = s.create_product(&product("p", "P", "", None, None), &list).unwrap();
    let back = s.embeddings_of(p.key).unwrap();
    assert_eq!(back.len(), 3);
    for (a, b) in list.iter().zip(&back) {
        assert_eq!((&a.space, &a.model), (&b.space, &b.model));
        assert_eq!(bits(&a.vector), bits(&b.vector), "{} differs in some bit", a.space);
    }
    let mut streamed = Vec::new();
    s.for_each_embedding("image_text", &mut |e| {
        streamed.extend_from_slice(e.vector);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(bits(&streamed), bits(&odd), "streaming is exact too");
}

fn spaces(s: Dyn, key: ProductKey) -> Vec<(String, String)> {
    s.embeddings_of(key).unwrap().into_iter().map(|e| (e.space, e.model)).collect()
}

pub fn keep_merge_replace(s: Dyn) {
    let p = s.create_product(&product("p", "P", "", None, None), &pair(1)).unwrap();
    let owned = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(spaces(s, p.key), [owned("image", "effnet-lite0@1"), owned("text", "minilm@1")]);

    let text2 = [Embedding::new("text", "minilm@2", vector(5, 384))];
    s.set_embeddings(p.key, EmbeddingUpdate::Merge(&text2)).unwrap();
    assert_eq!(spaces(s, p.key), [owned("image", "effnet-lite0@1"), owned("text", "minilm@2")], "merge: one space");
    assert_eq!(bits(&s.embeddings_of(p.key).unwrap()[1].vector), bits(&text2[0].vector));

    s.set_embeddings(p.key, EmbeddingUpdate::Keep).unwrap();
    assert_eq!(spaces(s, p.key).len(), 2);

    let only_image = [Embedding::new("image", "effnet-lite0@1", vector(6, 1280))];
    let new = product("p", "P2", "", None, None);
    s.put_product(&new, EmbeddingUpdate::Replace(&only_image)).unwrap();
    assert_eq!(spaces(s, p.key), [owned("image", "effnet-lite0@1")], "replace: exactly the given set");

    s.put_product(&new, EmbeddingUpdate::Replace(&[])).unwrap();
    assert!(s.embeddings_of(p.key).unwrap().is_empty());

    let missing = s.set_embeddings(ProductKey(987_654), EmbeddingUpdate::Merge(&text2));
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub fn dimension_mismatch_writes_nothing(s: Dyn) {
    s.create_product(&product("a", "A", "", None, None), &pair(1)).unwrap();
    let short = [Embedding::new("image", "effnet-lite0@1", vector(2, 1000))];
    let err = s.create_product(&product("b", "B", "", None, None), &short).unwrap_err();
    assert!(matches!(&err, StoreError::DimensionMismatch { expected: 1280, got: 1000, .. }), "{err:?}");
    assert_eq!(s.get_product("b").unwrap(), None, "the product and its vectors commit together or not at all");

    // The same length under another model name is a different (space, model): allowed.
    let other = [Embedding::new("image", "effnet-b3@1", vector(2, 1536))];
    s.create_product(&product("c", "C", "", None, None), &other).unwrap();

    let dup = [Embedding::new("text", "m@1", vec![1.0]), Embedding::new("text", "m@1", vec![1.0])];
    assert!(matches!(s.create_product(&product("d", "D", "", None, None), &dup), Err(StoreError::Invalid { .. })));
    let nan = [Embedding::new("text", "m@1", vec![f32::NAN])];
    assert!(matches!(s.create_product(&product("d", "D", "", None, None), &nan), Err(StoreError::Invalid { .. })));
    assert_eq!(s.get_product("d").unwrap(), None);
}

pub fn batch_reports_bad_items_and_writes_the_rest(s: Dyn) {
    s.create_product(&product("old", "Old title", "", None, None), &pair(1)).unwrap();
    let products: Vec<NewProduct> = vec![
        product("n1", "New one", "", None, None),
        product("bad id", "Broken", "", None, None),
        product("old", "Old, replaced", "", None, None),
        product("n2", "Wrong dims", "", None, None),
        product("n3", "New three", "", None, None),
    ];
    let embs: Vec<Vec<Embedding>> =
        vec![pair(10), pair(11), pair(12), vec![Embedding::new("image", "effnet-lite0@1", vec![0.5; 3])], pair(14)];
    let batch: Vec<ProductWrite<'_>> = products
        .iter()
        .zip(&embs)
        .map(|(p, e)| ProductWrite { product: p, embeddings: EmbeddingUpdate::Replace(e) })
        .collect();
    let out = s.put_products(&batch).unwrap();
    assert_eq!(out.len(), 5);
    assert!(out[0].as_ref().is_ok_and(|u| u.created));
    assert!(matches!(out[1], Err(StoreError::Invalid { .. })));
    assert!(out[2].as_ref().is_ok_and(|u| !u.created && u.product.title == "Old, replaced"));
    assert!(matches!(out[3], Err(StoreError::DimensionMismatch { .. })));
    assert!(out[4].as_ref().is_ok_and(|u| u.created));
    assert_eq!(s.get_product("n2").unwrap(), None);
    for (i, id) in [(0, "n1"), (2, "old"), (4, "n3")] {
        let key = s.product_key(id).unwrap().unwrap();
        let stored = s.embeddings_of(key).unwrap();
        assert_eq!(bits(&stored[0].vector), bits(&embs[i][0].vector), "{id} got its own vectors");
    }
    assert!(s.put_products(&[]).unwrap().is_empty());
}

pub fn model_census(s: Dyn) {
    assert!(s.embedding_models().unwrap().is_empty());
    for i in 0..3 {
        s.create_product(&product(&format!("p{i}"), "P", "", None, None), &pair(i)).unwrap();
    }
    // A reindex half done: one product already has the new text model.
    let key = s.product_key("p1").unwrap().unwrap();
    s.set_embeddings(key, EmbeddingUpdate::Merge(&[Embedding::new("text", "minilm@2", vector(9, 384))])).unwrap();
    let count = |space: &str, model: &str, dim: usize, count: u64| ModelCount {
        space: space.into(),
        model: model.into(),
        dim,
        count,
    };
    assert_eq!(
        s.embedding_models().unwrap(),
        [
            count("image", "effnet-lite0@1", 1280, 3),
            count("text", "minilm@1", 384, 2),
            count("text", "minilm@2", 384, 1)
        ]
    );
}

pub fn streaming_visitor(s: Dyn) {
    let mut keys = Vec::new();
    for i in 0..20 {
        let e = if i % 4 == 3 { vec![] } else { pair(i) };
        keys.push((s.create_product(&product(&format!("p{i}"), "P", "", None, None), &e).unwrap().key, i));
    }
    let mut seen = Vec::new();
    let visited = s
        .for_each_embedding("image", &mut |e| {
            assert_eq!(e.model, "effnet-lite0@1");
            assert_eq!(e.vector.len(), 1280);
            seen.push((e.key, bits(e.vector)));
            ControlFlow::Continue(())
        })
        .unwrap();
    let want: Vec<_> = keys.iter().filter(|(_, i)| i % 4 != 3).map(|&(k, i)| (k, bits(&vector(i, 1280)))).collect();
    assert_eq!(visited, want.len() as u64);
    assert_eq!(seen, want, "every vector of the space, in key order, exact");

    let mut first = Vec::new();
    let visited = s
        .for_each_embedding("text", &mut |e| {
            first.push(e.key);
            if first.len() == 4 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!((visited, first.len()), (4, 4), "Break stops the stream");
    assert_eq!(s.for_each_embedding("nothing_here", &mut |_| ControlFlow::Continue(())).unwrap(), 0);
}

pub fn products_needing_embeddings(s: Dyn) {
    let mut keys = Vec::new();
    for i in 0..7 {
        let e = if i % 2 == 0 { pair(i) } else { vec![] };
        keys.push(s.create_product(&product(&format!("p{i}"), "P", "", None, None), &e).unwrap().key);
    }
    let ids = |after: Option<ProductKey>, limit: usize, model: &str| -> Vec<String> {
        s.products_needing_embeddings("image", model, after, limit).unwrap().into_iter().map(|p| p.id).collect()
    };
    assert_eq!(ids(None, 100, "effnet-lite0@1"), ["p1", "p3", "p5"]);
    assert_eq!(ids(None, 2, "effnet-lite0@1"), ["p1", "p3"]);
    assert_eq!(ids(Some(keys[3]), 100, "effnet-lite0@1"), ["p5"], "the cursor skips what was tried");
    assert_eq!(ids(None, 100, "effnet-lite0@2").len(), 7, "a new model needs every product");
}
