//! Resizing and tensors against TensorFlow, Pillow and transformers outputs on real photos.

use ocular_core::{ImagePreprocess, Layout, ResizeMode};
use ocular_image::{preprocess, resize_bicubic, resize_bilinear_tf, resize_shortest_center_crop_bicubic, thumbnail};

use crate::common::{check_sampled, chelsea_crop, f64s, image_diff, json, png};

/// sklesion's contract: max abs diff to `tf.image.resize(bilinear, antialias=False)` <= 1e-3.
#[test]
fn bilinear_matches_tensorflow_on_real_photos() {
    let reference = json("bilinear_tf.json");
    let crop = chelsea_crop(&reference["crop"]);
    let mut worst = 0.0f64;
    for case in reference["cases"].as_array().expect("cases") {
        let source = match case["source"].as_str().expect("source") {
            "coffee" => png("coffee.png"),
            "chelsea" => png("chelsea.png"),
            "chelsea_crop" => crop.clone(),
            other => panic!("unknown source {other}"),
        };
        let (w, h) = (case["width"].as_u64().expect("width") as u32, case["height"].as_u64().expect("height") as u32);
        let out = resize_bilinear_tf(&source, w, h);
        let what = format!("{} -> {w}x{h}", case["source"]);
        worst = worst.max(check_sampled(&out, case, 1e-3, &what));
    }
    eprintln!("bilinear vs TensorFlow: max abs diff {worst:e}");
}

/// The full EfficientNet-style recipe through `preprocess`: resize then `(v - 127) / 128`,
/// checked against the TF-resized reference with the same formula applied.
#[test]
fn preprocess_bilinear_nchw_matches_reference() {
    let reference = json("bilinear_tf.json");
    let case = &reference["cases"][2];
    assert_eq!(case["source"], "coffee");
    assert_eq!(case["width"], 224);
    let pre = ImagePreprocess {
        width: 224,
        height: 224,
        resize: ResizeMode::BilinearTf,
        layout: Layout::Nchw,
        scale: 1.0,
        mean: [127.0; 3],
        std: [128.0; 3],
    };
    let tensor = preprocess(&png("coffee.png"), &pre);
    let plane = 224 * 224;
    for (&i, &v) in f64s(&case["indices"]).iter().zip(&f64s(&case["values"])) {
        let (pixel, c) = (i as usize / 3, i as usize % 3);
        let want = (v - 127.0) / 128.0;
        let got = f64::from(tensor[c * plane + pixel]);
        assert!((got - want).abs() <= 1e-5, "element {i}: {got} vs {want}");
    }
}

/// Pillow's bicubic in fixed point is reproduced exactly: downscale (coffee, chelsea) and
/// upscale (a 97x61 crop) through transformers' shortest-side + centre-crop geometry.
#[test]
fn clip_crop_is_pixel_identical_to_pillow() {
    let crop = chelsea_crop(&json("bilinear_tf.json")["crop"]);
    for (source, reference) in [
        (png("coffee.png"), "clip_coffee_224.png"),
        (png("chelsea.png"), "clip_chelsea_224.png"),
        (crop, "clip_chelsea_crop_224.png"),
    ] {
        let out = resize_shortest_center_crop_bicubic(&source, 224);
        let (max, mean) = image_diff(&out, &png(reference));
        assert_eq!(max, 0, "{reference}: max diff {max}, mean {mean}");
    }
}

#[test]
fn bicubic_resize_and_thumbnail_match_pillow() {
    let want = png("bicubic_coffee_160x107.png");
    let coffee = png("coffee.png");
    assert_eq!(image_diff(&resize_bicubic(&coffee, 160, 107), &want).0, 0);
    assert_eq!(image_diff(&thumbnail(&coffee, 160), &want).0, 0);
}

/// The whole CLIP recipe against transformers' `CLIPImageProcessorPil` (CHW float32).
#[test]
fn clip_preprocess_matches_transformers() {
    let reference = json("clip_preprocess.json");
    for case in reference["cases"].as_array().expect("cases") {
        let mean = f64s(&case["mean"]);
        let std = f64s(&case["std"]);
        let pre = ImagePreprocess {
            width: 224,
            height: 224,
            resize: ResizeMode::ShortestBicubicCenterCrop,
            layout: Layout::Nchw,
            scale: 1.0 / 255.0,
            mean: [mean[0] as f32, mean[1] as f32, mean[2] as f32],
            std: [std[0] as f32, std[1] as f32, std[2] as f32],
        };
        let source = match case["source"].as_str().expect("source") {
            "coffee" => png("coffee.png"),
            _ => png("chelsea.png"),
        };
        let tensor = preprocess(&source, &pre);
        // transformers rescales in float64 before casting; float32 here differs by ~1 ulp.
        let worst = check_sampled(&tensor, case, 1e-5, "clip preprocess");
        eprintln!("CLIP preprocess vs transformers: max abs diff {worst:e}");
    }
}
