#!/usr/bin/env python3
"""Reference data for the `ocular-image` crate (decode, resize, tensors, heatmap).

Every number the crate's tests compare against comes from here, computed by the reference
implementations the models were trained or published with, never by the Rust code itself:

- TensorFlow `tf.image.resize(..., "bilinear", antialias=False)`: the sklesion Keras model's
  preprocessing (and the half-pixel bilinear upsampling of Grad-CAM grids);
- Pillow `Image.resize(..., BICUBIC)` and transformers' `CLIPImageProcessorPil`: CLIP preprocessing;
- matplotlib's `turbo` colormap (Google's 256-entry Turbo table, Apache-2.0);
- Pillow/libjpeg-turbo and libwebp decoding, including libjpeg's DCT-domain scaling (`draft`).

Set-up (outside the repository):

    python3 -m venv /tmp/venv-image
    /tmp/venv-image/bin/pip install numpy pillow tensorflow-cpu matplotlib transformers

Run from the repository root; it rewrites crates/ocular-image/tests/data/ and
crates/ocular-image/src/heatmap/turbo_table.rs:

    /tmp/venv-image/bin/python scripts/image_reference.py

Photos: scikit-image's `coffee.png` and `chelsea.png` (the scikit-image wheel's data folder) and
scikit-learn's `china.jpg`, found through the installed packages or `--skimage-data` /
`--sklearn-images` (e.g. an unzipped wheel).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib
import numpy as np
import PIL
import tensorflow as tf
import transformers
from PIL import Image
from transformers import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates/ocular-image/tests/data"
TURBO_RS = ROOT / "crates/ocular-image/src/heatmap/turbo_table.rs"

SAMPLES = 1024
# Crop of chelsea.png (x, y, w, h) used for the upscaling cases; the Rust test crops the same way.
CROP = (150, 80, 97, 61)


def versions() -> dict:
    return {
        "tensorflow": tf.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "transformers": transformers.__version__,
    }


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def sampled(values: np.ndarray, seed: int) -> dict:
    """A flat float32 array summarised by seeded samples plus order-sensitive checksums."""
    flat = values.astype(np.float32).ravel()
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(flat.size, size=min(SAMPLES, flat.size), replace=False))
    weights = (np.arange(flat.size) % 251 + 1).astype(np.float64)
    return {
        "len": int(flat.size),
        "indices": idx.tolist(),
        # str() of a float32 is its shortest round-tripping form: exact, and small files.
        "values": [float(str(v)) for v in flat[idx]],
        "sum": float(flat.astype(np.float64).sum()),
        "weighted_sum": float((flat.astype(np.float64) * weights).sum()),
    }


def tf_bilinear(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    out = tf.image.resize(rgb[None].astype(np.uint8), (h, w), method="bilinear", antialias=False)
    return out.numpy()[0].astype(np.float32)


def pil_bicubic(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))


def shortest_center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """transformers' CLIP recipe: shortest edge to `size` (long edge truncated), centre crop."""
    h, w = rgb.shape[:2]
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    resized = pil_bicubic(rgb, nw, nh)
    top, left = (nh - size) // 2, (nw - size) // 2
    return resized[top : top + size, left : left + size]


def turbo_u8() -> np.ndarray:
    lut = matplotlib.colormaps["turbo"](np.arange(256))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


def overlay_reference(rgb: np.ndarray, grid: np.ndarray, alpha: float, max_side: int) -> np.ndarray:
    """The crate's overlay, written with reference parts: Pillow bicubic thumbnail, TF
    half-pixel bilinear upsampling, matplotlib's turbo lookup, then a constant-alpha blend."""
    h, w = rgb.shape[:2]
    if max(w, h) > max_side:
        # Shorter side rounded half up, as the crate's `thumbnail` does.
        if w >= h:
            nw, nh = max_side, max(1, (h * max_side + w // 2) // w)
        else:
            nw, nh = max(1, (w * max_side + h // 2) // h), max_side
        rgb = pil_bicubic(rgb, nw, nh)
    h, w = rgb.shape[:2]
    up = tf.image.resize(grid[None, :, :, None], (h, w), method="bilinear", antialias=False)
    up = np.clip(up.numpy()[0, :, :, 0], 0.0, 1.0)
    # matplotlib's lookup: index = floor(v * N), with v == 1.0 mapped to the last entry.
    idx = np.minimum((up * 256).astype(np.int64), 255)
    colour = turbo_u8()[idx].astype(np.float64)
    out = (1.0 - alpha) * rgb.astype(np.float64) + alpha * colour
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def write_turbo_table() -> None:
    rows = "\n".join(f"    [{r}, {g}, {b}]," for r, g, b in turbo_u8())
    TURBO_RS.write_text(
        "// Generated by scripts/image_reference.py from matplotlib's `turbo` colormap, which is\n"
        "// Google's Turbo table (Anton Mikhailov, 2019, Apache-2.0), rounded to 8 bits.\n"
        "// Do not edit by hand.\n\n"
        "/// Turbo colormap, index 0 = low, 255 = high, sRGB 8-bit.\n"
        f"pub(super) const TURBO: [[u8; 3]; 256] = [\n{rows}\n];\n"
    )


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed: pass its data folder on the command line")
    return Path(spec.origin).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skimage-data", type=Path, default=None, help="skimage/data folder")
    ap.add_argument("--sklearn-images", type=Path, default=None, help="sklearn/datasets/images folder")
    args = ap.parse_args()
    skdata = args.skimage_data or package_dir("skimage") / "data"
    sklimg = args.sklearn_images or package_dir("sklearn") / "datasets/images"

    DATA.mkdir(parents=True, exist_ok=True)
    for name in ("coffee.png", "chelsea.png"):
        shutil.copyfile(skdata / name, DATA / name)
    shutil.copyfile(sklimg / "china.jpg", DATA / "china.jpg")

    coffee = load_rgb(DATA / "coffee.png")
    chelsea = load_rgb(DATA / "chelsea.png")
    x, y, cw, ch = CROP
    crop = np.ascontiguousarray(chelsea[y : y + ch, x : x + cw])

    # 1. TF bilinear (sklesion preprocessing): downscale, upscale, and non-square outputs.
    cases = []
    for seed, (src, name, w, h) in enumerate(
        [
            (coffee, "coffee", 254, 254),
            (chelsea, "chelsea", 254, 254),
            (coffee, "coffee", 224, 224),
            (crop, "chelsea_crop", 254, 254),
            (crop, "chelsea_crop", 130, 300),
        ]
    ):
        cases.append({"source": name, "width": w, "height": h, **sampled(tf_bilinear(src, w, h), seed)})
    (DATA / "bilinear_tf.json").write_text(json.dumps({"versions": versions(), "crop": CROP, "cases": cases}))

    # 2. Pillow bicubic: CLIP crops (downscale and upscale) and a plain resize (thumbnail).
    Image.fromarray(shortest_center_crop(coffee, 224)).save(DATA / "clip_coffee_224.png")
    Image.fromarray(shortest_center_crop(chelsea, 224)).save(DATA / "clip_chelsea_224.png")
    Image.fromarray(shortest_center_crop(crop, 224)).save(DATA / "clip_chelsea_crop_224.png")
    Image.fromarray(pil_bicubic(coffee, 160, 107)).save(DATA / "bicubic_coffee_160x107.png")

    # 3. The whole CLIP preprocessing as transformers does it (CHW float32).
    proc = CLIPImageProcessorPil()
    clip = []
    for seed, (src, name) in enumerate([(coffee, "coffee"), (chelsea, "chelsea")]):
        pv = proc(images=Image.fromarray(src), return_tensors="np")["pixel_values"][0]
        clip.append({"source": name, "mean": list(proc.image_mean), "std": list(proc.image_std),
                     "shape": list(pv.shape), **sampled(pv, 100 + seed)})
    (DATA / "clip_preprocess.json").write_text(json.dumps({"versions": versions(), "cases": clip}))

    # 4. Heatmap overlay on a real photo, full size and through a thumbnail.
    gy, gx = np.mgrid[0:7, 0:7].astype(np.float32)
    grid = np.exp(-((gx - 4.2) ** 2 + (gy - 2.5) ** 2) / 6.0).astype(np.float32)
    grid = (grid - grid.min()) / (grid.max() - grid.min())
    grid[0, 0] = -0.5  # out-of-range values must clamp
    grid[6, 6] = 1.0
    alpha = 0.4
    small = pil_bicubic(coffee, 160, 107)
    Image.fromarray(overlay_reference(small, grid, alpha, 1000)).save(DATA / "overlay_coffee_160x107.png")
    Image.fromarray(overlay_reference(chelsea, grid, alpha, 200)).save(DATA / "overlay_chelsea_200.png")
    (DATA / "overlay.json").write_text(json.dumps({
        "versions": versions(), "grid_w": 7, "grid_h": 7, "alpha": alpha,
        "grid": [float(v) for v in grid.ravel()],
        "turbo_samples": {str(i): turbo_u8()[i].tolist() for i in (0, 37, 128, 200, 255)},
    }))
    write_turbo_table()

    # 5. Decoders: libjpeg-turbo full decode and DCT-scaled decode (draft) of a real JPEG,
    #    libwebp decode of a lossy WebP, an animated WebP and alpha compositing onto white.
    china = Image.open(DATA / "china.jpg")
    china_rgb = np.asarray(china.convert("RGB"))
    draft = Image.open(DATA / "china.jpg")
    # PIL picks the DCT scale from integer ratios: (160, 106) selects 1/4, giving 160x107.
    draft.draft("RGB", (160, 106))
    draft_rgb = np.asarray(draft.convert("RGB"))
    Image.fromarray(draft_rgb).save(DATA / "china_draft.png")

    Image.fromarray(chelsea).save(DATA / "chelsea.webp", quality=85, method=6)
    webp_rgb = np.asarray(Image.open(DATA / "chelsea.webp").convert("RGB"))

    frames = [Image.new("RGB", (24, 16), c) for c in ((200, 30, 30), (30, 30, 200), (30, 200, 30))]
    frames[0].save(DATA / "animated.webp", save_all=True, append_images=frames[1:],
                   duration=100, loop=0, lossless=True)

    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 0] = np.arange(8)[None, :] * 32
    a[..., 1] = 200
    a[..., 2] = np.arange(8)[:, None] * 30
    a[..., 3] = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    Image.fromarray(a, "RGBA").save(DATA / "rgba.png")
    white = Image.new("RGBA", (8, 8), (255, 255, 255, 255))
    on_white = np.asarray(Image.alpha_composite(white, Image.fromarray(a, "RGBA")).convert("RGB"))

    (DATA / "decode.json").write_text(json.dumps({
        "versions": versions(),
        "china_jpg": {"width": china.width, "height": china.height, **sampled(china_rgb, 200)},
        "china_draft": {"width": draft_rgb.shape[1], "height": draft_rgb.shape[0]},
        "chelsea_webp": {"width": webp_rgb.shape[1], "height": webp_rgb.shape[0], **sampled(webp_rgb, 201)},
        "rgba_on_white": [int(v) for v in on_white.ravel()],
    }))
    total = sum(p.stat().st_size for p in DATA.iterdir())
    print(f"wrote {DATA} ({total / 1024:.0f} KiB) and {TURBO_RS}")


if __name__ == "__main__":
    main()
