"""Per-stage medians of the analyses a bench/run.sh run stored, for both sides.

    python stages.py bench/results/compare-STAMP.json WORK_DIR

ocular stores each analysis with its stage timings (decode, input check, preprocess,
inference, Grad-CAM, render); skin_app.py stores decode, inference (+ Grad-CAM) and render. The
driver's order is fixed: one cold-start analysis, then each cell's warm-up and measured
requests, so the last rows of each store are the run's cells, in order. Prints a markdown table.
"""

import json
import os
import sqlite3
import statistics
import sys


def cells(doc):
    s = doc["settings"]
    per = [("analyze-c1", s["seq"]), ("analyze_gradcam-c1", s["seq"]), ("analyze-c10", s["conc"]),
           ("analyze_gradcam-c10", s["conc"])]
    return [(name, s["warmup"], n) for name, n in per]


def split(rows, layout):
    """rows oldest first; the run's cells are the last sum(warmup + n) rows."""
    total = sum(w + n for _, w, n in layout)
    rows = rows[-total:]
    out, at = {}, 0
    for name, warmup, n in layout:
        out[name] = rows[at + warmup:at + warmup + n]
        at += warmup + n
    return out


def medians(timings):
    keys = sorted({k for t in timings for k in t})
    return {k: statistics.median(t.get(k, 0.0) for t in timings) for k in keys}


def main():
    doc = json.load(open(sys.argv[1]))
    work = sys.argv[2]
    n = doc["servers"][0]["products"]
    db = sqlite3.connect(f"file:{os.path.join(work, f'catalog-{n}', 'ocular', 'ocular.db')}?mode=ro", uri=True)
    ocular = [json.loads(t) for (t,) in db.execute("SELECT timings FROM analyses ORDER BY created_at, rowid")]
    python_db = os.path.join(work, 'python-skin', 'analyses.db')
    python = []
    if any(s["side"] == "python-skin" for s in doc["servers"]) and os.path.exists(python_db):
        db = sqlite3.connect(f"file:{python_db}?mode=ro", uri=True)
        python = [json.loads(r)["timings_ms"] for (r,) in db.execute("SELECT result FROM analyses ORDER BY created")]
    layout = cells(doc)
    print("| cell | side | " + "stage medians (ms) |")
    print("|---|---|---|")
    for side, rows in (("ocular", ocular), ("Python", python)):
        if not rows:
            continue
        for name, timings in split(rows, layout).items():
            m = medians(timings)
            print(f"| {name} | {side} | " + ", ".join(f"{k} {v:.1f}" for k, v in m.items()) + " |")


if __name__ == "__main__":
    main()
