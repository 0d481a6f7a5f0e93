//! Pillow's convolution resampling (`Image.resize(size, Image.BICUBIC)`), reproduced exactly.
//!
//! CLIP's preprocessing in transformers resizes with Pillow bicubic, so embeddings only match
//! the reference if the pixels do. Pillow's algorithm (src/libImaging/Resample.c):
//! - separable: a horizontal pass into an 8-bit intermediate image, then a vertical pass;
//!   an axis whose size does not change is skipped;
//! - the kernel is widened by the downscale factor (so downscaling is antialiased), and
//!   weights are normalised per output pixel, then turned into 22-bit fixed point;
//! - bicubic is the Keys cubic with `a = -0.5`, support 2.
//!
//! Integer arithmetic in the same order makes the result identical, not just close.

use image::RgbImage;

/// Pillow's `PRECISION_BITS` for 8-bit images: 32 - 8 (pixel) - 2 (headroom).
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point weights of one axis: output `i` reads `len[i]` source samples from `start[i]`
/// with weights `weights[i * ksize..]`.
struct Coeffs {
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `0..in_size`.
#[cfg(test)]
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    coeffs_window(in_size, out_size, 0, out_size)
}

/// [`coeffs`] for outputs `first..first + count` only: every output's weights depend on its own
/// index alone, so a window's are exactly the full resize's, without computing the rest.
fn coeffs_window(in_size: usize, out_size: usize, first: usize, count: usize) -> Coeffs {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut c = Coeffs {
        ksize,
        start: Vec::with_capacity(count),
        len: Vec::with_capacity(count),
        weights: vec![0; count * ksize],
    };
    let mut k = vec![0.0f64; ksize];
    // Pillow multiplies by the reciprocal; dividing would round differently.
    let ss = 1.0 / filterscale;
    for (i, xx) in (first..first + count).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero; the clamp at 0 makes that the same as floor here.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut total = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            total += w;
        }
        let row = &mut c.weights[i * ksize..i * ksize + n];
        for (dst, &w) in row.iter_mut().zip(&k) {
            let w = if total != 0.0 { w / total } else { w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            *dst = if w < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 };
        }
        c.start.push(xmin);
        c.len.push(n);
    }
    c
}

/// Rounding offset: accumulators start at one half in fixed point.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Horizontal pass over a packed RGB buffer of width `w`: every row to `c.len.len()` columns.
fn pass_horizontal(src: &[u8], w: usize, c: &Coeffs) -> Vec<u8> {
    let ow = c.len.len();
    let rows = src.len() / (w * 3);
    let mut out = vec![0u8; ow * rows * 3];
    for (src_row, dst_row) in src.chunks_exact(w * 3).zip(out.chunks_exact_mut(ow * 3)) {
        for (ox, dst) in dst_row.chunks_exact_mut(3).enumerate() {
            let weights = &c.weights[ox * c.ksize..ox * c.ksize + c.len[ox]];
            let taps = &src_row[c.start[ox] * 3..(c.start[ox] + weights.len()) * 3];
            let mut acc = [HALF; 3];
            for (p, &wgt) in taps.chunks_exact(3).zip(weights) {
                for ch in 0..3 {
                    acc[ch] += i32::from(p[ch]) * wgt;
                }
            }
            for ch in 0..3 {
                dst[ch] = clip8(acc[ch]);
            }
        }
    }
    out
}

/// Vertical pass over a packed RGB buffer of width `w`: to `c.len.len()` rows.
fn pass_vertical(src: &[u8], w: usize, c: &Coeffs) -> Vec<u8> {
    let oh = c.len.len();
    let stride = w * 3;
    let mut out = vec![0u8; stride * oh];
    let mut acc = vec![0i32; stride];
    for (oy, dst_row) in out.chunks_exact_mut(stride).enumerate() {
        let weights = &c.weights[oy * c.ksize..oy * c.ksize + c.len[oy]];
        acc.fill(HALF);
        // Row by row rather than pixel by pixel, for memory locality; integer sums are exact,
        // so the order does not change the result.
        for (j, &wgt) in weights.iter().enumerate() {
            let row = &src[(c.start[oy] + j) * stride..(c.start[oy] + j + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * wgt;
            }
        }
        for (dst, &a) in dst_row.iter_mut().zip(&acc) {
            *dst = clip8(a);
        }
    }
    out
}

/// `Image.resize((width, height), Image.BICUBIC)` on an RGB image. Zero-sized input or
/// output gives an all-black image of the requested size.
pub(crate) fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_bicubic_window(img, (width, height), (0, 0, width, height))
}

/// The window `(left, top, w, h)` of `Image.resize((width, height), Image.BICUBIC)`, pixel for
/// pixel, computed without the rest of the resized image: only the source rows the window's
/// vertical taps read go through the horizontal pass, and only the window's columns are made.
/// So a crop after a large upscale (CLIP's shortest side of a 1,000,000 x 2 strip is 224 pixels
/// tall and 112 million wide) costs the window, not the whole resized image. The window must
/// lie inside `width x height`; an empty window or image gives a black image of its size.
pub(crate) fn resize_bicubic_window(
    img: &RgbImage,
    (width, height): (u32, u32),
    (left, top, w, h): (u32, u32, u32, u32),
) -> RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (width as usize, height as usize);
    let (x0, y0, cw, ch) = (left as usize, top as usize, w as usize, h as usize);
    if iw == 0 || ih == 0 || cw == 0 || ch == 0 || x0 + cw > ow || y0 + ch > oh {
        return RgbImage::new(w, h);
    }
    // Source rows the window needs: all of them when the height does not change (Pillow
    // skips that pass), else those under the window's vertical taps.
    let vertical = (ih != oh).then(|| coeffs_window(ih, oh, y0, ch));
    let (row_first, row_end) = match &vertical {
        Some(v) => {
            let end = v.start.iter().zip(&v.len).map(|(s, l)| s + l).max().unwrap_or(0);
            (v.start.iter().copied().min().unwrap_or(0), end)
        }
        None => (y0, y0 + ch),
    };
    let rows = &img.as_raw()[row_first * iw * 3..row_end * iw * 3];
    let mut buf = if iw != ow {
        pass_horizontal(rows, iw, &coeffs_window(iw, ow, x0, cw))
    } else {
        // No horizontal resampling: the window's columns are the source's.
        rows.chunks_exact(iw * 3).flat_map(|r| &r[x0 * 3..(x0 + cw) * 3]).copied().collect()
    };
    if let Some(mut v) = vertical {
        for s in &mut v.start {
            *s -= row_first;
        }
        buf = pass_vertical(&buf, cw, &v);
    }
    // The buffer holds exactly w * h * 3 bytes by construction.
    RgbImage::from_raw(w, h, buf).unwrap_or_else(|| RgbImage::new(w, h))
}

/// Peak bytes of [`resize_bicubic_window`] besides its input: the horizontal pass's rows, the
/// output, and both axes' weights (an upper bound: every source row, `ksize` weights per output).
pub(crate) fn window_peak_bytes(in_size: (u32, u32), out_size: (u32, u32), window: (u32, u32)) -> u64 {
    let (iw, ih) = (u64::from(in_size.0), u64::from(in_size.1));
    let (ow, oh) = (u64::from(out_size.0.max(1)), u64::from(out_size.1.max(1)));
    let (cw, ch) = (u64::from(window.0), u64::from(window.1));
    let ksize = |i: u64, o: u64| 2 * (2 * i).div_ceil(o).max(2) + 1;
    let weights = 4 * (cw * ksize(iw, ow) + ch * ksize(ih, oh));
    cw * ih * 3 + cw * ch * 3 + weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(0.5), 0.5625);
        assert_eq!(bicubic(1.5), -0.0625);
        assert_eq!(bicubic(2.0), 0.0);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(600, 224), (61, 224), (451, 298), (7, 3)] {
            let c = coeffs(i, o);
            for x in 0..o {
                let s: i32 = c.weights[x * c.ksize..x * c.ksize + c.len[x]].iter().sum();
                assert!((s - (1 << PRECISION_BITS)).abs() <= c.ksize as i32, "{i}->{o} at {x}");
            }
        }
    }

    /// A window is exactly the same pixels as the crop of the whole resize.
    #[test]
    fn windows_equal_crops_of_the_full_resize() {
        let img = RgbImage::from_fn(53, 31, |x, y| image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (200 - x) as u8]));
        for (ow, oh) in [(224, 131), (53, 80), (20, 31), (17, 9), (300, 31)] {
            let full = resize_bicubic(&img, ow, oh);
            for (l, t, w, h) in
                [(0, 0, ow, oh), (ow / 3, oh / 4, ow / 2, oh / 2), (ow - 1, oh - 1, 1, 1), (1, 0, 3, oh)]
            {
                let window = resize_bicubic_window(&img, (ow, oh), (l, t, w, h));
                let crop = image::imageops::crop_imm(&full, l, t, w, h).to_image();
                assert_eq!(window, crop, "{ow}x{oh} window {l},{t} {w}x{h}");
            }
        }
    }

    #[test]
    fn flat_image_stays_flat() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([12, 130, 250]));
        let out = resize_bicubic(&img, 11, 60);
        assert!(out.pixels().all(|p| p.0 == [12, 130, 250]));
    }
}
