//! The installed embedding models through ocular's runtime wrappers (tokenizer, batching,
//! normalisation), against the check values of docs/MODELS.md.

use ocular_image::Limits;

use crate::real;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_similarities_and_batch_equals_single() {
    let m = real::text();
    let texts = ["a photo of a cat", "a cute kitten", "quarterly tax report"];
    let batch = m.embed(&texts).expect("embed");
    assert_eq!((batch.len(), batch[0].len()), (3, 384));
    let (cat_kitten, cat_tax) = (dot(&batch[0], &batch[1]), dot(&batch[0], &batch[2]));
    assert!((cat_kitten - 0.58).abs() < 0.01, "{cat_kitten}");
    assert!((cat_tax - 0.08).abs() < 0.01, "{cat_tax}");
    for (i, t) in texts.iter().enumerate() {
        let single = m.embed(&[t]).expect("embed");
        let diff = single[0].iter().zip(&batch[i]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-5, "padding changed {t:?} by {diff}");
    }
}

#[test]
fn efficientnet_labels_and_embeddings() {
    let m = real::imagenet();
    let load = |n: &str| ocular_image::decode(&real::photo(n), &Limits::default(), None).expect("decode").image;
    let (coffee, left, right) = (load("coffee.png"), load("motorcycle_left.png"), load("motorcycle_right.png"));
    let out = m.run(&[&coffee, &left, &right]).expect("run");
    let (label, p) = m.top(&out[0].probabilities, 1)[0];
    assert_eq!(label.name, "espresso");
    assert!(p > 0.85, "{p}");
    let norm: f32 = out[0].embedding.iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    let same_bike = dot(&out[1].embedding, &out[2].embedding);
    let bike_coffee = dot(&out[1].embedding, &out[0].embedding);
    assert!(same_bike > 0.9 && bike_coffee < 0.4, "{same_bike} {bike_coffee}");
}
