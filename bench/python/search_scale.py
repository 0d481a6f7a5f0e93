"""Photo and text search of a running ocular server over a `bench_catalog` catalog: latency and
photo-search recall@10 against an exact f32 scan (docs/BENCHMARKS.md, "Whole server at 1M").

    python bench/python/search_scale.py timing URL ROUNDS photo.jpg...
    python bench/python/search_scale.py recall URL CATALOG/python photo.jpg...

`timing`: ROUNDS passes over the photos, a photo search and a text search (the four texts of
bench/cgroup-load.sh in turn) interleaved request by request from one client; prints the client's
wall-clock p50 and the medians of the server's own `timings_ms` stages. `recall`: each photo's
vector from POST /api/v1/embed/image, its exact top 10 by one pass over `image.f32` (the
catalog's own vectors, written by bench_catalog), against the top 10 of POST /api/v1/search
(threshold -1). Photos are sent as they are (640x480 JPEG in the measurement). Needs numpy and
curl; talks to URL only."""
import json
import statistics as st
import subprocess
import sys
import time

import numpy as np

TEXTS = ["a cup of coffee", "red motorbike", "tabby cat print", "rocket launch poster"]


def call(args):
    started = time.perf_counter()
    out = subprocess.run(["curl", "-sf", "-X", "POST", *args], check=True, capture_output=True).stdout
    return (time.perf_counter() - started) * 1000, json.loads(out)


def timing(url, rounds, photos):
    stages = {"photo": {}, "text": {}}
    wall = {"photo": [], "text": []}
    for r in range(rounds):
        for i, p in enumerate(photos):
            query = TEXTS[(r * len(photos) + i) % len(TEXTS)]
            for kind, args in [
                ("photo", [url + "/api/v1/search", "-F", f"image=@{p}", "-F", "top_k=10"]),
                ("text", [url + "/api/v1/search/text", "-H", "content-type: application/json",
                          "-d", json.dumps({"query": query, "top_k": 10})]),
            ]:
                ms, answer = call(args)
                wall[kind].append(ms)
                for k, v in answer["timings_ms"].items():
                    stages[kind].setdefault(k, []).append(v)
    for kind in ("photo", "text"):
        parts = ", ".join(f"{k} {st.median(v):.1f}" for k, v in sorted(stages[kind].items()))
        print(f"{kind}: n={len(wall[kind])} client wall p50 {st.median(wall[kind]):.1f} ms; server medians: {parts}")


def recall(url, pydir, photos):
    ids = [json.loads(line)["id"] for line in open(f"{pydir}/products.jsonl")]
    rows = np.memmap(f"{pydir}/image.f32", dtype="<f4", mode="r", shape=(len(ids), 1280))
    queries, served = [], []
    for p in photos:
        _, e = call([url + "/api/v1/embed/image", "-F", f"image=@{p}"])
        q = np.asarray(e["embedding"], dtype=np.float32)
        queries.append(q / np.linalg.norm(q))
        _, r = call([url + "/api/v1/search", "-F", f"image=@{p}", "-F", "top_k=10", "-F", "threshold=-1"])
        served.append(r)
    queries = np.stack(queries)
    best = [(np.full(10, -np.inf, dtype=np.float32), np.zeros(10, dtype=np.int64)) for _ in photos]
    step = 65536
    for start in range(0, len(ids), step):
        scores = np.asarray(rows[start:start + step]) @ queries.T
        for j in range(len(photos)):
            col = scores[:, j]
            top = np.argpartition(-col, 10)[:10] if len(col) > 10 else np.arange(len(col))
            s = np.concatenate([best[j][0], col[top]])
            ix = np.concatenate([best[j][1], top + start])
            keep = np.argsort(-s)[:10]
            best[j] = (s[keep], ix[keep])
    recalls = []
    for p, r, (s, ix) in zip(photos, served, best):
        got = [h["product"]["id"] for h in r["results"]][:10]
        rec = len(set(got) & {ids[i] for i in ix}) / 10
        recalls.append(rec)
        print(f"{p}: recall@10 {rec:.1f}; exact 10th score {s[9]:.6f}, served {r['results'][-1]['score']}; "
              f"timings {r.get('timings_ms')}")
    print(f"queries {len(photos)}: recall@10 mean {np.mean(recalls):.3f}, min {min(recalls):.1f}")


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "timing":
        timing(url, int(sys.argv[3]), sys.argv[4:])
    else:
        recall(url, sys.argv[3], sys.argv[4:])
