//! The installed sklesion model through ocular's runtime path equals Keras: probabilities and
//! Grad-CAM grids within 1e-4 of `scripts/keras_sklesion_reference.py`'s outputs.

use ocular_image::Limits;
use ocular_models::skin::{BodySite, Sex, SkinMeta};
use serde::Deserialize;

use crate::common::workspace_root;
use crate::real;

#[derive(Deserialize)]
struct Reference {
    classes: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    image: String,
    meta: Vec<f32>,
    class: usize,
    probs: Vec<f32>,
    cam: Vec<f32>,
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn probabilities_and_gradcam_match_keras() {
    let dir = workspace_root().join("fixtures/keras/sklesion");
    let reference: Reference =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).expect("reference")).expect("json");
    let skin = real::skin();
    let codes: Vec<&str> = skin.labels.iter().map(|l| l.code.as_str()).collect();
    assert_eq!(codes, reference.classes, "class order");
    for case in &reference.cases {
        let bytes = std::fs::read(dir.join(&case.image)).expect("image");
        let img = ocular_image::decode(&bytes, &Limits::default(), None).expect("decode").image;
        assert_eq!(img.dimensions(), (254, 254));
        // A 254×254 photo must reach the model unresampled: resizing to its own size is identity.
        let pixels = ocular_image::resize_bilinear_tf(&img, 254, 254);
        assert!(pixels.iter().zip(img.as_raw()).all(|(p, &u)| *p == f32::from(u)));
        let meta: [f32; 10] = case.meta.clone().try_into().expect("10 values");
        let out = skin.predict(&pixels, &meta, true).expect("predict");
        let dp = max_abs(&out.probabilities, &case.probs);
        assert!(dp <= 1e-4, "{} {:?}: probabilities differ by {dp}", case.image, case.meta);
        let grid = out.gradcam.expect("gradcam");
        assert_eq!((grid.width, grid.height, grid.class), (8, 8, case.class));
        let dc = max_abs(&grid.values, &case.cam);
        assert!(dc <= 1e-4, "{} {:?}: Grad-CAM differs by {dc}", case.image, case.meta);
    }
}

#[test]
fn gradcam_off_changes_nothing_else() {
    let dir = workspace_root().join("fixtures/keras/sklesion");
    let bytes = std::fs::read(dir.join("ellipse.png")).expect("image");
    let img = ocular_image::decode(&bytes, &Limits::default(), None).expect("decode").image;
    let pixels = ocular_image::resize_bilinear_tf(&img, 254, 254);
    let skin = real::skin();
    let meta = SkinMeta::default().vector(skin.meta_encoding);
    let with = skin.predict(&pixels, &meta, true).expect("with");
    let without = skin.predict(&pixels, &meta, false).expect("without");
    assert!(without.gradcam.is_none());
    assert_eq!(with.probabilities, without.probabilities);
}

#[test]
fn metadata_encoding_matches_the_reference_vectors() {
    let skin = real::skin();
    let enc = skin.meta_encoding;
    let unknown = SkinMeta::default().vector(enc);
    let female_trunk_45 = SkinMeta { age: Some(45.0), sex: Sex::Female, location: BodySite::Trunk }.vector(enc);
    let male_head_70 = SkinMeta { age: Some(70.0), sex: Sex::Male, location: BodySite::HeadOrNeck }.vector(enc);
    let dir = workspace_root().join("fixtures/keras/sklesion");
    let reference: Reference =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).expect("reference")).expect("json");
    let metas: Vec<&Vec<f32>> = reference.cases.iter().take(3).map(|c| &c.meta).collect();
    for (ours, theirs) in [unknown, female_trunk_45, male_head_70].iter().zip(metas) {
        assert!(max_abs(ours, theirs) < 1e-6, "{ours:?} vs {theirs:?}");
    }
}
