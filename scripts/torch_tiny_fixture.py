"""Writes two tiny torch checkpoints that exercise ocular's `.pth` reader without real weights.

The same state dict is saved in the legacy (pre-zip) format and in the zip format
(`torch.save` default since PyTorch 1.6). It contains a tensor, a transposed view and a row view
sharing that tensor's storage (non-trivial strides and offset), a float64 and an int64 scalar,
so the Rust tests can check geometry and dtype handling against values known here.

Usage (from the workspace root, in a venv with torch installed):
    python scripts/torch_tiny_fixture.py
"""

from collections import OrderedDict
from pathlib import Path

import torch

OUT = Path("fixtures/reference")


def state_dict() -> "OrderedDict[str, torch.Tensor]":
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
    return OrderedDict(
        [
            ("base", base),
            ("base_t", base.t()),  # shape (4, 3), strides (1, 4)
            ("row", base[1]),  # offset 4
            ("double", torch.tensor([0.5, -1.25], dtype=torch.float64)),
            ("count", torch.tensor(7, dtype=torch.int64)),  # rank 0
        ]
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sd = state_dict()
    torch.save(sd, OUT / "torch_tiny_legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(sd, OUT / "torch_tiny_zip.pth")
    for name in ("torch_tiny_legacy.pth", "torch_tiny_zip.pth"):
        loaded = torch.load(OUT / name, weights_only=True)
        assert all(torch.equal(loaded[k], v) for k, v in sd.items())
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
