"""Request inputs for bench/run.sh, the same bytes for ocular and Python.

    python make_inputs.py OUT_DIR N_INGEST

- OUT_DIR/analyze.jpg: scikit-image's `chelsea` as a 640x480 JPEG (quality 90), the photo
  crates/ocular-models/examples/bench_analyze.rs uses (analyze is sent with force=true);
- OUT_DIR/query.jpg: `motorcycle_right` as a 640x480 JPEG (its twin is in the catalog);
- OUT_DIR/ingest/p{i}.jpg + catalog.jsonl: N_INGEST real photos (the 22 shipped photos in turn,
  640x480, one pixel changed per file so every file is distinct, as bench_search does).
"""

import json
import os
import sys

from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PHOTOS = os.path.join(ROOT, "models", "photos")


def photo(name):
    return Image.open(os.path.join(PHOTOS, name)).convert("RGB").resize((640, 480), Image.BILINEAR)


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(os.path.join(out, "ingest"), exist_ok=True)
    photo("chelsea.png").save(os.path.join(out, "analyze.jpg"), quality=90)
    photo("motorcycle_right.png").save(os.path.join(out, "query.jpg"), quality=90)
    names = sorted(f for f in os.listdir(PHOTOS) if f.endswith((".png", ".jpg")))
    with open(os.path.join(out, "ingest", "catalog.jsonl"), "w") as f:
        for i in range(n):
            img = photo(names[i % len(names)])
            x, y = i % 640, 0
            r, g, b = img.getpixel((x, y))
            img.putpixel((x, y), (r ^ (1 + i // 640), g, b))
            img.save(os.path.join(out, "ingest", f"p{i}.jpg"), quality=90)
            record = {"id": f"p{i}", "title": f"Product {i}", "description": "A photo of a thing", "image": f"p{i}.jpg"}
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
