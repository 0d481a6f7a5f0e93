//! Untrusted image bytes through the production path: bounded decode (production limits, with
//! and without DCT downscaling), then both models' preprocessing and the thumbnail. Any panic,
//! hang or allocation beyond libFuzzer's RSS limit is a bug; errors are the expected outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocular_core::{ImagePreprocess, Layout, ResizeMode};
use ocular_image::{Limits, decode, preprocess, probe, thumbnail};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the decode mode, so one input can reach both.
    let Some((&mode, bytes)) = data.split_first() else { return };
    let target = (mode & 1 == 1).then_some((224, 224));
    let limits = Limits::default();
    let _ = probe(bytes);
    let Ok(decoded) = decode(bytes, &limits, target) else { return };
    assert!(u64::from(decoded.original_width) * u64::from(decoded.original_height) <= limits.max_pixels);
    // sklesion (TF bilinear, NHWC) and EfficientNet-Lite0 (bicubic crop, NCHW) recipes.
    let skin = ImagePreprocess {
        width: 224,
        height: 224,
        resize: ResizeMode::BilinearTf,
        layout: Layout::Nhwc,
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let effnet = ImagePreprocess {
        resize: ResizeMode::ShortestBicubicCenterCrop,
        layout: Layout::Nchw,
        scale: 1.0 / 255.0,
        mean: [0.5; 3],
        std: [0.5; 3],
        ..skin.clone()
    };
    for pre in [&skin, &effnet] {
        assert_eq!(preprocess(&decoded.image, pre).len(), 3 * 224 * 224);
    }
    let _ = thumbnail(&decoded.image, 320);
});
