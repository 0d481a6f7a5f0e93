//! Measures decode and preprocessing cost; run under `/usr/bin/time -v` for peak RSS.
//!
//! ```text
//! cargo run --release -p ocular-image --example decode_probe -- make SRC OUT.jpg 4000 3000
//! cargo run --release -p ocular-image --example decode_probe -- decode BIG.jpg [254]
//! cargo run --release -p ocular-image --example decode_probe -- pipeline PHOTO.jpg 200
//! ```
//! `make` upscales a real photo (Pillow bicubic) into a large JPEG; `decode` decodes once,
//! with an optional square target that enables reduced-scale JPEG decoding; `pipeline` times
//! decode + sklesion and CLIP preprocessing, averaged over N runs.

use std::error::Error;
use std::time::Instant;

use ocular_core::{ImagePreprocess, Layout, ResizeMode};
use ocular_image::{Limits, decode, encode_jpeg, preprocess, resize_bicubic};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let limits = Limits::default();
    match arg(0)? {
        "make" => {
            let src = decode(&std::fs::read(arg(1)?)?, &limits, None)?.image;
            let big = resize_bicubic(&src, arg(3)?.parse()?, arg(4)?.parse()?);
            std::fs::write(arg(2)?, encode_jpeg(&big, 90)?)?;
        }
        "decode" => {
            let bytes = std::fs::read(arg(1)?)?;
            let target = args.get(2).map(|t| t.parse::<u32>()).transpose()?.map(|t| (t, t));
            let start = Instant::now();
            let d = decode(&bytes, &limits, target)?;
            println!(
                "{}x{} from {}x{} (1/{}) in {:.1} ms",
                d.image.width(),
                d.image.height(),
                d.original_width,
                d.original_height,
                d.scale_denominator,
                start.elapsed().as_secs_f64() * 1e3
            );
        }
        "pipeline" => {
            let bytes = std::fs::read(arg(1)?)?;
            let runs: u32 = arg(2)?.parse()?;
            let skin = ImagePreprocess {
                width: 254,
                height: 254,
                resize: ResizeMode::BilinearTf,
                layout: Layout::Nhwc,
                scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
            };
            let clip = ImagePreprocess {
                width: 224,
                height: 224,
                resize: ResizeMode::ShortestBicubicCenterCrop,
                layout: Layout::Nchw,
                scale: 1.0 / 255.0,
                mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
                std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
            };
            for (name, pre, target) in [("skin (exact)", &skin, None), ("clip", &clip, Some((224, 224)))] {
                let mut decode_s = 0.0;
                let mut pre_s = 0.0;
                for _ in 0..runs {
                    let t0 = Instant::now();
                    let d = decode(&bytes, &limits, target)?;
                    let t1 = Instant::now();
                    std::hint::black_box(preprocess(&d.image, pre));
                    decode_s += (t1 - t0).as_secs_f64();
                    pre_s += t1.elapsed().as_secs_f64();
                }
                let n = f64::from(runs);
                println!("{name}: decode {:.2} ms + preprocess {:.2} ms", decode_s / n * 1e3, pre_s / n * 1e3);
            }
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}
