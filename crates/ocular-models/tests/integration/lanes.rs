//! Inference lanes on the real models: requests that meet at a busy model run as one batch,
//! and each gets exactly the answer it would have got alone.

use std::sync::Arc;
use std::thread;

use ocular_image::Limits;
use ocular_image::image::RgbImage;
use ocular_models::session::{SessionOptions, is_int8_graph};
use ocular_models::skin::{BodySite, Sex, SkinMeta};
use ocular_models::{Registry, RegistryOptions};

use crate::common::ort_library;
use crate::real::{self, models_dir};

/// A registry of its own, so that no other test's requests join (or wait behind) these batches.
fn own_registry(model: &str) -> Registry {
    Registry::discover(RegistryOptions {
        models_dir: models_dir(),
        ort_library: Some(ort_library()),
        session: SessionOptions::default(),
        enabled: Some(vec![model.into()]),
    })
    .expect("discover")
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn photo(name: &str) -> RgbImage {
    ocular_image::decode(&real::photo(name), &Limits::default(), None).expect("decode").image
}

#[test]
fn concurrent_photo_embeddings_run_as_one_batch_each_with_its_own_answer() {
    let registry = own_registry("efficientnet-lite0");
    let model = block(registry.image.as_ref().expect("efficientnet installed").get()).expect("loads");
    // Unbatched by default: two rows of its largest activation would leave the reused heap
    // (ocular_models::image_classifier::default_batch); an operator's --inference-batch turns
    // batching on, and then batching must not mix answers.
    assert_eq!(model.session().max_batch(), 1);
    assert_eq!(ocular_models::image_classifier::default_batch(&model.preprocess), 1);
    model.session().set_max_batch(ocular_models::session::DEFAULT_MAX_BATCH);
    let photos: Arc<Vec<RgbImage>> =
        Arc::new(["coffee.png", "motorcycle_left.png", "motorcycle_right.png", "chelsea.png"].map(photo).to_vec());
    let alone: Vec<_> = photos.iter().map(|p| model.run(&[p]).expect("run").remove(0)).collect();
    let before = model.session().lane_counts();

    let held = model.session().hold();
    let handles: Vec<_> = (0..photos.len())
        .map(|i| {
            let (model, photos) = (model.clone(), photos.clone());
            thread::spawn(move || model.run(&[&photos[i]]).expect("run").remove(0))
        })
        .collect();
    while model.session().queued() < photos.len() {
        thread::yield_now();
    }
    drop(held);
    let together: Vec<_> = handles.into_iter().map(|h| h.join().expect("request")).collect();

    let after = model.session().lane_counts();
    // Four requests, one inference over the one session's weights.
    assert_eq!((after.batches - before.batches, after.jobs - before.jobs, after.largest), (1, 4, 4));
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        // Batched convolutions may sum in another order: equal to float rounding.
        assert!(max_diff(&a.embedding, &t.embedding) < 1e-4, "photo {i}: embedding differs");
        assert!(max_diff(&a.probabilities, &t.probabilities) < 1e-4, "photo {i}: probabilities differ");
    }
    // And each answer is its own photo's: the two motorcycles are not the coffee.
    assert!(max_diff(&together[0].embedding, &together[1].embedding) > 0.01);
}

#[test]
fn skin_requests_with_and_without_grad_cam_batch_and_keep_their_own_results() {
    let registry = own_registry("sklesion");
    let model = block(registry.skin.as_ref().expect("sklesion installed").get()).expect("loads");
    // The skin model does not batch by default (ocular_models::skin::DEFAULT_BATCH); an
    // operator's --inference-batch turns it on, and then batching must not mix answers.
    assert_eq!(model.session().max_batch(), ocular_models::skin::DEFAULT_BATCH);
    model.session().set_max_batch(ocular_models::session::DEFAULT_MAX_BATCH);
    let pre = model.preprocess.clone();
    let pixels: Arc<Vec<Vec<f32>>> = Arc::new(
        ["chelsea.png", "coffee.png"]
            .map(|n| ocular_image::resize_bilinear_tf(&photo(n), pre.width, pre.height))
            .to_vec(),
    );
    let metas = [
        SkinMeta { age: Some(45.0), sex: Sex::Female, location: BodySite::Trunk }.vector(model.meta_encoding),
        SkinMeta::default().vector(model.meta_encoding),
    ];
    let gradcam = [true, false];
    let alone: Vec<_> = (0..2).map(|i| model.predict(&pixels[i], &metas[i], gradcam[i]).expect("predict")).collect();

    let before = model.session().lane_counts();
    let held = model.session().hold();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (model, pixels) = (model.clone(), pixels.clone());
            let meta = metas[i];
            thread::spawn(move || model.predict(&pixels[i], &meta, gradcam[i]).expect("predict"))
        })
        .collect();
    while model.session().queued() < 2 {
        thread::yield_now();
    }
    drop(held);
    let together: Vec<_> = handles.into_iter().map(|h| h.join().expect("request")).collect();
    let after = model.session().lane_counts();
    assert_eq!((after.batches - before.batches, after.jobs - before.jobs), (1, 2));

    for i in 0..2 {
        assert!(max_diff(&alone[i].probabilities, &together[i].probabilities) < 1e-4, "request {i}");
        match (&alone[i].gradcam, &together[i].gradcam) {
            (Some(a), Some(t)) => {
                assert_eq!((a.class, a.width, a.height), (t.class, t.width, t.height));
                assert!(max_diff(&a.values, &t.values) < 1e-3, "request {i}: Grad-CAM differs");
            }
            (None, None) => {}
            _ => panic!("request {i}: Grad-CAM presence changed by batching"),
        }
    }
}

#[test]
fn int8_graphs_are_told_apart_from_float_ones() {
    let dir = models_dir().join("efficientnet-lite0");
    assert!(!is_int8_graph(&dir.join("model.onnx")).expect("read fp32 graph"));
    let int8 = dir.join("model.int8.onnx");
    if int8.is_file() {
        assert!(is_int8_graph(&int8).expect("read int8 graph"));
    }
}
