"""The "SEARCH_IMG" product search as an idiomatic Python stack would write it, for bench/run.sh:
FastAPI + uvicorn (1 worker), EfficientNet-Lite0 image features in PyTorch (or, with
`BENCH_IMAGE_BACKEND=onnx`, ONNX Runtime Python on ocular's exported graph), all-MiniLM-L6-v2
through sentence-transformers, and numpy matrices of catalog vectors.

Unlike the original service, and like ocular, product vectors are computed once (at ingest) and
kept in memory as float32 numpy matrices; a search embeds only the query:
- `POST /api/v1/search` (multipart `image`, `top_k`): EfficientNet pooled feature (L2-normalised)
  → cosine against the image matrix → `np.argpartition` top-k;
- `POST /api/v1/search/text` (JSON `{"query", "top_k"}`): MiniLM of the query against the text
  matrix and the ConSE image-in-text matrix, SQLite FTS5 bm25 keywords, reciprocal rank fusion
  (k = 60, depth 100): the same hybrid as ocular's.

Subcommands (see bench/run.sh):
  python search_app.py prepare DIR   # DIR/python/*.f32 + products.jsonl -> .npy + catalog.db (FTS5)
  python search_app.py ingest FILE.jsonl N   # batched import of real photos; prints images/s
Serve: BENCH_CATALOG=DIR/python uvicorn search_app:app --workers 1 --port 8102
"""

import json
import os
import re
import sqlite3
import sys
import threading
import time
from contextlib import asynccontextmanager

import numpy as np
from PIL import Image, ImageOps

SIZE = 224
DIMS = {"image": 1280, "text": 384, "image_text": 384}
RRF_K = 60.0
FUSION_DEPTH = 100
THRESHOLD = 0.2  # ocular's default SIMILARITY_THRESHOLD
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODELS = os.environ.get("OCULAR_MODELS_DIR", os.path.join(ROOT, "models"))


def class_names():
    """ImageNet class names as ocular ships them (the same ConSE prompts on both sides)."""
    with open(os.path.join(MODELS, "efficientnet-lite0", "manifest.json")) as f:
        return [label["name"] for label in json.load(f)["labels"]]


class ImageModel:
    """EfficientNet-Lite0: (x - 127) / 128 at 224x224 → pooled 1280-d feature and probabilities."""

    def __init__(self, backend):
        self.backend = backend
        if backend == "onnx":
            import onnxruntime as ort

            path = os.path.join(MODELS, "efficientnet-lite0", "model.onnx")
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        else:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            pth = os.path.join(MODELS, ".cache", "src", "efficientnet-lite0", "efficientnet-lite0.pth")
            self.torch = torch
            self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=pth).eval()

    @staticmethod
    def pixels(source):
        image = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
        return np.asarray(image.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)

    def run(self, batch):
        """batch: (N, 224, 224, 3) float32 RGB → (features (N, 1280), probabilities (N, 1000))."""
        x = ((batch - 127.0) / 128.0).transpose(0, 3, 1, 2)
        if self.backend == "onnx":
            probs, feats = self.session.run(["probabilities", "features"], {"pixel_values": np.ascontiguousarray(x)})
        else:
            torch = self.torch
            with torch.inference_mode():
                fmap = self.model.extract_features(torch.from_numpy(np.ascontiguousarray(x)))
                pooled = fmap.mean(dim=(2, 3))
                probs = torch.softmax(self.model._fc(pooled), dim=1).numpy()
                feats = pooled.numpy()
        return feats / np.linalg.norm(feats, axis=1, keepdims=True), probs


class TextModel:
    def __init__(self):
        from sentence_transformers import SentenceTransformer

        path = os.environ.get("OCULAR_MINILM_DIR", os.path.join(MODELS, ".cache", "src", "minilm"))
        self.model = SentenceTransformer(path, device="cpu")

    def embed(self, texts):
        return self.model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)


def conse(prompts, probs, t=10):
    """L2norm(Σ_top-t p_i · MiniLM("a photo of a {class_i}")) per row of probabilities."""
    top = np.argpartition(-probs, t, axis=1)[:, :t]
    weights = np.take_along_axis(probs, top, axis=1)
    v = np.einsum("nt,ntd->nd", weights, prompts[top])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def terms(query):
    words = []
    for w in re.split(r"\W+", query.lower()):
        if w and w not in words and w != "_":
            words.append(w)
    return words[:32]


def top_k(scores, k):
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx])]


# ---------------------------------------------------------------- prepare and ingest (CLI)


def open_catalog_db(path):
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS products (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, title TEXT, "
        "description TEXT, category TEXT, price REAL)"
    )
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(title, description, category, "
        "content='products', content_rowid='seq')"
    )
    return db


def prepare(directory):
    """The shared synthetic catalog (crates/ocular-search/examples/bench_catalog.rs) → npy + SQLite."""
    py = os.path.join(directory, "python")
    for space, dim in DIMS.items():
        raw = os.path.join(py, space + ".f32")
        np.save(os.path.join(py, space + ".npy"), np.fromfile(raw, "<f4").reshape(-1, dim))
        os.remove(raw)  # the .npy holds the same numbers; 100k products are 0.8 GB of them
    path = os.path.join(py, "catalog.db")
    if os.path.exists(path):
        os.remove(path)
    db = open_catalog_db(path)
    with open(os.path.join(py, "products.jsonl")) as f:
        rows = [(i, p["id"], p["title"], p["description"], p["category"], p["price"])
                for i, p in enumerate(map(json.loads, f))]
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.execute("INSERT INTO products_fts(products_fts) VALUES ('rebuild')")
    db.commit()
    print(f"prepared {len(rows)} products in {py}")


def ingest(path, n, batch_size=8):
    """Imports `n` records of a JSON Lines file of photos, as ocular's import does: per batch,
    decode, image model (features + ConSE), text model, one SQLite transaction. Prints one JSON
    line; images/s counts from the first record to the last commit (models already loaded)."""
    backend = os.environ.get("BENCH_IMAGE_BACKEND", "torch")
    started = time.perf_counter()
    image_model, text_model = ImageModel(backend), TextModel()
    load_s = time.perf_counter() - started
    base = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        records = [json.loads(line) for line in f][:n]
    out = os.path.join(os.path.dirname(path), f"python-ingest-{backend}.db")
    if os.path.exists(out):
        os.remove(out)
    db = open_catalog_db(out)
    db.execute("CREATE TABLE vectors (seq INTEGER, space TEXT, vector BLOB)")
    started = time.perf_counter()
    # Inside the clock, as in ocular's import, which builds its ConSE prompt matrix on first use.
    prompts = text_model.embed([f"a photo of a {c}" for c in class_names()])
    prompts_s = time.perf_counter() - started
    for at in range(0, len(records), batch_size):
        chunk = records[at:at + batch_size]
        pixels = np.stack([ImageModel.pixels(os.path.join(base, r["image"])) for r in chunk])
        feats, probs = image_model.run(pixels)
        image_text = conse(prompts, probs)
        texts = text_model.embed([f"{r['title']}. {r.get('description', '')}".strip(". ") for r in chunk])
        with db:
            for j, r in enumerate(chunk):
                seq = at + j
                db.execute("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
                           (seq, r["id"], r["title"], r.get("description", ""), r.get("category"), r.get("price")))
                db.execute("INSERT INTO products_fts(rowid, title, description, category) VALUES (?, ?, ?, ?)",
                           (seq, r["title"], r.get("description", ""), r.get("category")))
                for space, v in (("image", feats[j]), ("text", texts[j]), ("image_text", image_text[j])):
                    db.execute("INSERT INTO vectors VALUES (?, ?, ?)", (seq, space, v.astype("<f4").tobytes()))
    seconds = time.perf_counter() - started
    print(json.dumps({"backend": backend, "images": len(records), "seconds": seconds,
                      "images_per_s": len(records) / seconds, "model_load_s": load_s, "prompts_s": prompts_s,
                      "images_per_s_after_prompts": len(records) / (seconds - prompts_s)}))


# ---------------------------------------------------------------- the service

state = {}


@asynccontextmanager
async def lifespan(_app):
    started = time.time()
    catalog = os.environ.get("BENCH_CATALOG", os.path.join(ROOT, "bench", "out", "catalog", "python"))
    state["image_model"] = ImageModel(os.environ.get("BENCH_IMAGE_BACKEND", "torch"))
    state["text_model"] = TextModel()
    # Loaded whole into memory, as the "numpy matrix of catalog vectors" design says.
    state["vectors"] = {space: np.load(os.path.join(catalog, space + ".npy")) for space in DIMS}
    state["db"] = open_catalog_db(os.path.join(catalog, "catalog.db"))
    state["db_lock"] = threading.Lock()
    # Warm both models once, so the first user does not pay for lazy initialisation.
    state["image_model"].run(np.zeros((1, SIZE, SIZE, 3), np.float32))
    state["text_model"].embed(["warm up"])
    state["load_s"] = time.time() - started
    yield


def create_app():
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from pydantic import BaseModel

    app = FastAPI(lifespan=lifespan)

    class TextQuery(BaseModel):
        query: str
        top_k: int = 10
        threshold: float = THRESHOLD

    def products(seqs):
        with state["db_lock"]:
            marks = ",".join("?" * len(seqs))
            rows = state["db"].execute(
                f"SELECT seq, id, title, description, category, price FROM products WHERE seq IN ({marks})",
                [int(s) for s in seqs]).fetchall()
        by_seq = {r[0]: {"id": r[1], "title": r[2], "description": r[3], "category": r[4], "price": r[5]}
                  for r in rows}
        return [by_seq[int(s)] for s in seqs]

    @app.get("/health/ready")
    def ready():
        return {"status": "ok", "ready": True, "model_loaded": True, "load_s": state.get("load_s"),
                "products": len(state["vectors"]["image"])}

    # Plain `def` endpoints: FastAPI runs them in its thread pool; torch, onnxruntime and numpy
    # release the GIL while they compute.
    @app.post("/api/v1/search")
    def search_image(image: UploadFile = File(...), top_k: int = Form(10), threshold: float = Form(THRESHOLD)):
        t0 = time.perf_counter()
        try:
            pixels = ImageModel.pixels(image.file)[None]
        except Exception as e:  # PIL raises many types for bad input
            raise HTTPException(400, f"not an image: {e}") from e
        t1 = time.perf_counter()
        q = state["image_model"].run(pixels)[0][0]
        t2 = time.perf_counter()
        scores = state["vectors"]["image"] @ q
        best = [i for i in top_k_(scores, top_k) if scores[i] >= threshold]
        t3 = time.perf_counter()
        results = [{"product": p, "score": float(scores[i])} for p, i in zip(products(best), best)]
        timings = {"decode": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "index": (t3 - t2) * 1e3,
                   "total": (time.perf_counter() - t0) * 1e3}
        return {"results": results, "timings_ms": timings}

    @app.post("/api/v1/search/text")
    def search_text(body: TextQuery):
        query = body.query.strip()
        if not query or len(query) > 1000:
            raise HTTPException(400, "query must be 1 to 1000 characters")
        t0 = time.perf_counter()
        q = state["text_model"].embed([query])[0]
        t1 = time.perf_counter()
        depth = -(-(body.top_k + 1) // FUSION_DEPTH) * FUSION_DEPTH
        text_scores = state["vectors"]["text"] @ q
        image_scores = state["vectors"]["image_text"] @ q
        text_hits, image_hits = top_k_(text_scores, depth), top_k_(image_scores, depth)
        t2 = time.perf_counter()
        words = terms(query)
        keyword = []
        if words:
            expr = " OR ".join(f'"{w}"' for w in words)
            with state["db_lock"]:
                keyword = [r[0] for r in state["db"].execute(
                    "SELECT rowid FROM products_fts WHERE products_fts MATCH ? ORDER BY bm25(products_fts), rowid "
                    "LIMIT ?", (expr, depth))]
        t3 = time.perf_counter()
        fused = {}
        for ranking in (text_hits, image_hits, keyword):
            for rank, seq in enumerate(ranking):
                fused[int(seq)] = fused.get(int(seq), 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda s: (-fused[s], s))[:body.top_k]
        results = [{"product": p, "score": fused[s], "text_similarity": float(text_scores[s]),
                    "image_similarity": float(image_scores[s])} for p, s in zip(products(best), best)]
        timings = {"embed": (t1 - t0) * 1e3, "index": (t2 - t1) * 1e3, "keyword": (t3 - t2) * 1e3,
                   "total": (time.perf_counter() - t0) * 1e3}
        return {"results": results, "timings_ms": timings}

    return app


def top_k_(scores, k):
    return top_k(scores, k) if len(scores) else np.zeros(0, np.int64)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        prepare(sys.argv[2])
    elif sys.argv[1:2] == ["ingest"]:
        ingest(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
else:
    app = create_app()
