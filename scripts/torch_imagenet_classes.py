"""Writes the 1000 ImageNet-1k class names that ocular ships for EfficientNet-Lite0.

Source: the standard ILSVRC-2012 class list in index order as bundled by torchvision
(`torchvision.models._meta._IMAGENET_CATEGORIES`, BSD-3), so no network access is needed.
One name per line; line i (0-based) is class i of the classifier's logits.

Usage (from the workspace root, in a venv with torchvision installed):
    python scripts/torch_imagenet_classes.py
"""

from pathlib import Path

from torchvision.models._meta import _IMAGENET_CATEGORIES

OUT = Path("crates/ocular-convert/src/torch/imagenet_classes.txt")


def main() -> None:
    names = list(_IMAGENET_CATEGORIES)
    assert len(names) == 1000, len(names)
    assert all(n and "\n" not in n for n in names)
    OUT.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(names)} classes)")


if __name__ == "__main__":
    main()
