#!/usr/bin/env python3
"""The labelled set that measures the skin input check (docs/INPUT_CHECK.md).

Developer script (CI never runs Python). Every image is derived, deterministically (fixed
seeds, pinned package files), from real photos and textures that ship inside packages:

* scikit-image 0.26.0 and scikit-learn 1.9.1 wheels (already in `models/.cache`, the same pins
  as `crates/ocular-convert/src/fetch.rs`);
* Debian 12 packages `opencv-doc` (OpenCV's sample photos: people, a squirrel, a baboon,
  fruit...), `gimp-data` (GIMP's photographic patterns: wood, leather, leopard fur, burlap,
  stone, coffee beans...) and `mate-backgrounds` (photographic wallpapers: sand dune, wood,
  elephants, a ladybird...), fetched with `apt-get download PKG=VERSION` into `--debs` when
  absent and refused unless their sha256 matches.

No dermatology photo ships in any package reachable here, so the positives are: crops of real
facial skin (hand-drawn boxes below, on five people of different skin tones), the same crops
with a synthetic lesion painted on, colour-transformed copies of those crops towards the six
Fitzpatrick reference tones (synthetic tone variants), and fully synthetic lesions (the
generator of `ocular_convert::quantize::data::synthetic_lesion`, re-implemented).

Labels (what a dermatologist asked "can this photo be assessed as a skin close-up?" would say):
a crop is positive when skin fills essentially the whole frame (the boxes are drawn inside the
face, so hair, eyes and background stay out) and its shorter side has at least 32 px; a whole
portrait, a person in a scene, anything smaller than 32 px (skin included: nothing can be
assessed in it) and everything else is negative. Crops are taken at several positions, sizes and output
resolutions (20 to 640 px), so tiny crops of fur appear beside tiny crops of skin.

Split: by source photo (all crops of one photo land in the same split; a hash of the photo's
name decides), so no held-out image shares a photo with an image a threshold was chosen on.

Set-up (outside the repository):
    python3 -m venv /tmp/venv-inputcheck
    /tmp/venv-inputcheck/bin/pip install numpy==2.1.3 pillow==11.0.0
Run from the workspace root:
    /tmp/venv-inputcheck/bin/python scripts/input_check_set.py [--debs DIR] [--out DIR]
Writes the images to `models/input-check/` (not committed: regenerated from the packages),
the manifest `fixtures/input_check/manifest.csv` (committed: file, label, split, category,
source, crop box, size and the sha256 of the pixels, so a changed image is detected), and
copies the held-out images of at most 64 px to `crates/ocular-models/tests/data/input_check/`
(committed, ~250 KB: the floor the integration test holds without Python or the packages).
"""

import argparse
import csv
import hashlib
import io
import lzma
import os
import random
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
from PIL import Image

CACHE = "models/.cache"
WHEELS = {
    "skimage": (
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    ),
    "sklearn": (
        "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
    ),
}
DEBS = {
    "opencv": ("opencv-doc", "4.6.0+dfsg-12", "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"),
    "gimp": ("gimp-data", "2.10.34-1+deb12u10", "89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c"),
    "mate": ("mate-backgrounds", "1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04"),
}
CV = "usr/share/doc/opencv-doc/examples/data/"
CVH = "usr/share/doc/opencv-doc/opencv4/html/"
GP = "usr/share/gimp/2.0/patterns/"
MB = "usr/share/backgrounds/mate/"

# Negatives: (archive, member, category). Every one is labelled "not a skin close-up".
NEGATIVES = [
    ("skimage", "skimage/data/chelsea.png", "animal"),
    ("skimage", "skimage/data/horse.png", "animal"),
    ("opencv", CV + "squirrel_cls.jpg", "animal"),
    ("opencv", CV + "baboon.jpg", "animal"),
    ("opencv", CV + "chicky_512.png", "animal"),
    ("opencv", CV + "HappyFish.jpg", "animal"),
    ("opencv", CV + "butterfly.jpg", "animal"),
    ("mate", MB + "abstract/Elephants.jpg", "animal"),
    ("mate", MB + "nature/LadyBird.jpg", "animal"),
    ("gimp", GP + "Animal/leopard.pat", "animal"),
    ("gimp", GP + "Animal/leather.pat", "leather"),
    ("gimp", GP + "Fabric/burlap.pat", "fabric"),
    ("gimp", GP + "Legacy/fibers.pat", "fabric"),
    ("gimp", GP + "Paper/crinklepaper.pat", "fabric"),
    ("gimp", GP + "Paper/paper.pat", "fabric"),
    ("gimp", GP + "Wood/bark.pat", "wood"),
    ("gimp", GP + "Wood/burlwood.pat", "wood"),
    ("gimp", GP + "Wood/corkboard.pat", "wood"),
    ("gimp", GP + "Wood/parque1.pat", "wood"),
    ("gimp", GP + "Wood/parque2.pat", "wood"),
    ("gimp", GP + "Wood/pine.pat", "wood"),
    ("gimp", GP + "Wood/walnut.pat", "wood"),
    ("gimp", GP + "Wood/wood1.pat", "wood"),
    ("gimp", GP + "Wood/wood2.pat", "wood"),
    ("gimp", GP + "Wood/wood3.pat", "wood"),
    ("gimp", GP + "Wood/wood5.pat", "wood"),
    ("mate", MB + "nature/Wood.jpg", "wood"),
    ("mate", MB + "nature/Dune.jpg", "sand"),
    ("gimp", GP + "Stone/terra.pat", "sand"),
    ("gimp", GP + "Stone/ground1.pat", "sand"),
    ("gimp", GP + "Stone/Moonfoot.pat", "sand"),
    ("gimp", GP + "Stone/pink_marble.pat", "stone"),
    ("gimp", GP + "Stone/marble1.pat", "stone"),
    ("gimp", GP + "Stone/granite1.pat", "stone"),
    ("gimp", GP + "Stone/rock.pat", "stone"),
    ("gimp", GP + "Stone/slate.pat", "stone"),
    ("gimp", GP + "Stone/brick.pat", "stone"),
    ("skimage", "skimage/data/brick.png", "stone"),
    ("skimage", "skimage/data/gravel.png", "stone"),
    ("gimp", GP + "Food/java.pat", "food"),
    ("gimp", GP + "Food/choc_swirl.pat", "food"),
    ("skimage", "skimage/data/coffee.png", "food"),
    ("opencv", CV + "fruits.jpg", "food"),
    ("opencv", CV + "apple.jpg", "food"),
    ("opencv", CV + "orange.jpg", "food"),
    ("opencv", CV + "smarties.png", "food"),
    ("skimage", "skimage/data/astronaut.png", "person"),
    ("opencv", CV + "messi5.jpg", "person"),
    ("opencv", CVH + "face_swapped.jpg", "person"),
    ("opencv", CVH + "facereg.jpg", "person"),
    ("skimage", "skimage/data/rocket.jpg", "object"),
    ("skimage", "skimage/data/motorcycle_left.png", "object"),
    ("skimage", "skimage/data/color.png", "object"),
    ("skimage", "skimage/data/retina.jpg", "object"),
    ("skimage", "skimage/data/ihc.png", "object"),
    ("skimage", "skimage/data/grass.png", "object"),
    ("sklearn", "sklearn/datasets/images/china.jpg", "object"),
    ("sklearn", "sklearn/datasets/images/flower.jpg", "object"),
    ("opencv", CV + "home.jpg", "object"),
    ("opencv", CV + "building.jpg", "object"),
    ("opencv", CV + "starry_night.jpg", "object"),
    ("opencv", CV + "board.jpg", "object"),
    ("mate", MB + "nature/FreshFlower.jpg", "object"),
]

# Skin boxes (x0, y0, x1, y1) drawn by hand inside faces: skin only, no hair, eyes or lips.
# Grouped by person, because the split is by source photo.
SKIN = [
    ("skimage", "skimage/data/astronaut.png", "astronaut", [(205, 78, 250, 96), (198, 110, 225, 138), (236, 106, 262, 134)]),
    (
        "opencv",
        CVH + "face_swapped.jpg",
        "face_swapped",
        [(123, 73, 203, 107), (117, 127, 140, 157), (190, 127, 210, 153), (143, 123, 173, 153), (133, 217, 200, 247)],
    ),
    ("opencv", CVH + "facereg.jpg", "facereg-tr", [(130, 10, 170, 24), (122, 45, 140, 57), (160, 45, 175, 57)]),
    ("opencv", CVH + "facereg.jpg", "facereg-bl", [(33, 108, 70, 122), (25, 140, 42, 155)]),
    ("opencv", CVH + "facereg.jpg", "facereg-br", [(130, 110, 170, 123), (122, 140, 137, 160), (165, 140, 175, 160)]),
]

# Representative sRGB skin colours, Fitzpatrick I-VI (the same as the Rust tests').
TONES = [(244, 208, 177), (231, 180, 143), (210, 158, 124), (187, 120, 85), (141, 85, 54), (84, 50, 36)]
# Lesion colour relative to the skin: pigmented, vascular, dark nevus.
LESIONS = {"brown": (0.45, 0.35, 0.25), "red": (0.85, 0.35, 0.35), "dark": (0.25, 0.2, 0.2)}
SIZES = [20, 32, 64, 128, 254, 480, 640]
# Below this many pixels on the shorter side no lesion can be assessed (border, colour
# variegation and structure need more): such an image is labelled negative whatever it shows,
# and the check refuses it for that reason ("too small"), which is how a 20x20 crop of a cat
# and a 20x20 crop of a cheek are told apart honestly: neither is a usable photo.
MIN_ASSESSABLE = 32


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checked(path, expected):
    found = sha256_file(path)
    if found != expected:
        sys.exit(f"{path} has sha256 {found}, expected {expected}; refusing it")
    return path


class Archives:
    """Members of the pinned wheels and .deb files, read once each."""

    def __init__(self, debs_dir):
        self.debs_dir = debs_dir
        self.cache = {}

    def _deb_members(self, key):
        pkg, version, digest = DEBS[key]
        os.makedirs(self.debs_dir, exist_ok=True)
        name = f"{pkg}_{version.replace(':', '%3a')}_all.deb"
        path = os.path.join(self.debs_dir, name)
        if not os.path.exists(path):
            subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=self.debs_dir, check=True)
        checked(path, digest)
        data = open(path, "rb").read()
        assert data[:8] == b"!<arch>\n", f"{path} is not a .deb"
        off = 8
        while off < len(data):
            header = data[off : off + 60]
            member, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            body = data[off + 60 : off + 60 + size]
            off += 60 + size + (size & 1)
            if member.startswith("data.tar"):
                return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        sys.exit(f"{path}: no data.tar member")

    def read(self, key, member):
        if key not in self.cache:
            if key in WHEELS:
                file, digest = WHEELS[key]
                self.cache[key] = zipfile.ZipFile(checked(os.path.join(CACHE, file), digest))
            else:
                self.cache[key] = self._deb_members(key)
        arc = self.cache[key]
        if isinstance(arc, zipfile.ZipFile):
            return arc.read(member)
        return arc.extractfile("./" + member).read()


def decode(name, raw):
    if name.endswith(".pat"):
        # GIMP pattern: big-endian header (size, version, width, height, bytes per pixel,
        # "GPAT", name), then the raw pixels.
        hsize, _ver, w, h, bpp = np.frombuffer(raw[:20], ">u4")
        px = np.frombuffer(raw[hsize : hsize + w * h * bpp], np.uint8).reshape(h, w, bpp)
        px = np.repeat(px, 3, axis=2) if bpp in (1, 2) and px.shape[2] == 1 else px[:, :, :3]
        return Image.fromarray(np.ascontiguousarray(px[:, :, :3]), "RGB")
    return Image.open(io.BytesIO(raw)).convert("RGB")


# The people are split by hand so that both splits hold light and dark skin (a hash put four of
# five people in one split); a person's whole photo goes with their skin crops.
PEOPLE_SPLIT = {
    "skin:face_swapped": "tune",
    "opencv:face_swapped.jpg": "tune",
    "skin:facereg-tr": "tune",
    "opencv:facereg.jpg": "tune",
    "skin:astronaut": "heldout",
    "skimage:astronaut.png": "heldout",
    "skin:facereg-bl": "heldout",
    "skin:facereg-br": "heldout",
}


def group_split(group):
    """About a third of the source photos are held out, decided by the photo's name alone."""
    if group in PEOPLE_SPLIT:
        return PEOPLE_SPLIT[group]
    return "heldout" if hashlib.sha256(group.encode()).digest()[0] % 3 == 0 else "tune"


def random_crop(rng, img, frac):
    w, h = img.size
    side = max(8, int(min(w, h) * frac))
    x0, y0 = rng.randint(0, w - side), rng.randint(0, h - side)
    return (x0, y0, x0 + side, y0 + side)


def paint_lesion(rgb, rng, colour):
    """A synthetic lesion: an irregular, soft-edged, mottled blob darkening the skin below."""
    h, w, _ = rgb.shape
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
    rx, ry = w * rng.uniform(0.12, 0.28), h * rng.uniform(0.12, 0.28)
    wob = [rng.uniform(0, 0.3), rng.uniform(0, 0.3), rng.uniform(0, 6.283)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - cx) / rx, (yy - cy) / ry
    ang = np.arctan2(dy, dx)
    edge = 1.0 + wob[0] * np.sin(3 * ang + wob[2]) + wob[1] * np.cos(5 * ang)
    d = np.sqrt(dx * dx + dy * dy) / edge
    inside = np.clip((1.2 - d) / 0.4, 0, 1)[..., None]
    mottle = np.asarray(
        Image.fromarray((np.random.default_rng(rng.randint(0, 2**31)).random((8, 8)) * 255).astype(np.uint8)).resize(
            (w, h), Image.BILINEAR
        ),
        np.float32,
    )[..., None] / 255.0
    factor = np.asarray(colour, np.float32) * (0.8 + 0.4 * mottle)
    out = rgb * (1 - inside) + rgb * factor * inside
    return np.clip(out, 0, 255)


def to_tone(rgb, tone):
    """Synthetic tone variant: per-channel gain moving the crop's mean colour to `tone`."""
    mean = rgb.reshape(-1, 3).mean(0) + 1e-3
    return np.clip(rgb * (np.asarray(tone, np.float32) / mean), 0, 255)


def synthetic_lesion(skin, lesion, w, h, rng):
    """The flat synthetic lesion of the int8 calibration set (vignette, noise), in numpy."""
    cx, cy = w * (0.4 + 0.2 * rng.random()), h * (0.4 + 0.2 * rng.random())
    rx, ry = w * (0.12 + 0.1 * rng.random()), h * (0.1 + 0.1 * rng.random())
    wob = [rng.random() * 0.3, rng.random() * 0.3, rng.random() * 6.283]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - cx) / rx, (yy - cy) / ry
    ang = np.arctan2(dy, dx)
    edge = 1.0 + wob[0] * np.sin(3 * ang + wob[2]) + wob[1] * np.cos(5 * ang)
    inside = np.clip((1.2 - np.sqrt(dx * dx + dy * dy) / edge) / 0.4, 0, 1)[..., None]
    vx, vy = xx / w - 0.5, yy / h - 0.5
    vignette = (1.0 - 0.35 * (vx * vx + vy * vy))[..., None]
    noise = 0.94 + 0.12 * np.random.default_rng(rng.randint(0, 2**31)).random((h, w, 1))
    base = np.asarray(skin, np.float32)
    v = base * (1 - inside) + base * np.asarray(lesion, np.float32) * inside
    return np.clip(v * vignette * noise, 0, 255)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--debs", default=os.path.join(CACHE, "debs"))
    ap.add_argument("--out", default="models/input-check")
    ap.add_argument("--manifest", default="fixtures/input_check/manifest.csv")
    ap.add_argument("--sample", default="crates/ocular-models/tests/data/input_check")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(os.path.dirname(args.manifest), exist_ok=True)
    arcs = Archives(args.debs)
    rows = []

    def save(arr, item, label, category, group, source, box, note):
        img = Image.fromarray(np.asarray(arr).round().astype(np.uint8), "RGB")
        if min(img.size) < MIN_ASSESSABLE:
            label, note = "negative", note + "-too-small"
        file = f"{item:04d}-{category}-{label}.png"
        img.save(os.path.join(args.out, file), optimize=False)
        rows.append(
            {
                "file": file,
                "label": label,
                "split": group_split(group),
                "category": category,
                "group": group,
                "source": source,
                "box": " ".join(map(str, box)),
                "width": img.width,
                "height": img.height,
                "variant": note,
                "pixels_sha256": hashlib.sha256(img.tobytes()).hexdigest(),
            }
        )

    rng = random.Random(20261207)
    # Negatives: whole frame plus crops of 10-80% of the short side, resized to a mix of sizes.
    for key, member, category in NEGATIVES:
        img = decode(member, arcs.read(key, member))
        group = f"{key}:{os.path.basename(member)}"
        plans = [(1.0, rng.choice([128, 254, 480]))]
        plans += [(rng.choice([0.1, 0.2, 0.3]), rng.choice([20, 32, 64]))]
        plans += [(rng.choice([0.3, 0.5, 0.8]), rng.choice([64, 128, 254, 480, 640])) for _ in range(3)]
        if category == "animal":
            # The reported failure: small crops of skin-coloured fur. More of them.
            plans += [(rng.choice([0.05, 0.1, 0.2]), rng.choice([20, 32, 64, 128])) for _ in range(4)]
        for frac, size in plans:
            box = (0, 0, img.width, img.height) if frac == 1.0 else random_crop(rng, img, frac)
            crop = img.crop(box)
            scale = size / max(crop.size)
            crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BILINEAR)
            save(crop, len(rows), "negative", category, group, f"{key}:{member}", box, f"crop{frac}")
    # Positives from real skin: each box, sub-crops at several sizes, plain / with a lesion /
    # tone-shifted with a lesion.
    for key, member, person, boxes in SKIN:
        img = decode(member, arcs.read(key, member))
        group = f"skin:{person}"
        for box in boxes:
            x0, y0, x1, y1 = box
            for variant in ["plain", "lesion", "lesion-tone", "lesion-tone", "plain-tone"]:
                bw, bh = x1 - x0, y1 - y0
                # Square sub-crops, like the negatives' crops (a sliver is no photo of skin).
                sw = sh = max(8, int(min(bw, bh) * rng.uniform(0.7, 1.0)))
                sx, sy = x0 + rng.randint(0, bw - sw), y0 + rng.randint(0, bh - sh)
                sub = (sx, sy, sx + sw, sy + sh)
                size = rng.choice(SIZES)
                crop = img.crop(sub)
                scale = size / max(crop.size)
                crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BICUBIC)
                arr = np.asarray(crop, np.float32)
                note = variant
                if "tone" in variant:
                    t = rng.randrange(6)
                    arr = to_tone(arr, TONES[t])
                    note += f"-fitzpatrick{t + 1}"
                if "lesion" in variant:
                    kind = rng.choice(sorted(LESIONS))
                    arr = paint_lesion(arr, rng, LESIONS[kind])
                    note += f"-{kind}"
                save(arr, len(rows), "positive", "skin-real", group, f"{key}:{member}", sub, note)
    # Fully synthetic lesions: every tone x lesion colour, two sizes each; grouped by tone
    # so a tone's images share a split.
    for t, tone in enumerate(TONES):
        for kind in sorted(LESIONS):
            for _ in range(2):
                w = rng.choice(SIZES[1:])
                h = max(20, int(w * rng.choice([1.0, 0.75])))
                arr = synthetic_lesion(tone, LESIONS[kind], w, h, rng)
                group = f"synthetic:fitzpatrick{t + 1}"
                save(arr, len(rows), "positive", "lesion-synthetic", group, "generated", (0, 0, w, h), f"{kind}-fitzpatrick{t + 1}")

    with open(args.manifest, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    # The committed sample the integration test holds a floor on: every held-out image whose
    # longer side is at most 64 px (small files; the rule, not a choice of images).
    os.makedirs(args.sample, exist_ok=True)
    sample = [r for r in rows if r["split"] == "heldout" and max(r["width"], r["height"]) <= 64]
    for r in sample:
        with open(os.path.join(args.out, r["file"]), "rb") as src, open(os.path.join(args.sample, r["file"]), "wb") as dst:
            dst.write(src.read())
    with open(os.path.join(args.sample, "sample.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(sample)
    pos = sum(r["label"] == "positive" for r in rows)
    held = [r for r in rows if r["split"] == "heldout"]
    print(
        f"{len(rows)} images ({pos} positive, {len(rows) - pos} negative); held out: {len(held)} "
        f"({sum(r['label'] == 'positive' for r in held)} positive) -> {args.out}, {args.manifest}"
    )


if __name__ == "__main__":
    main()
