#!/usr/bin/env python3
"""Fits the input check's skin probe on the TUNING split only (docs/INPUT_CHECK.md).

Developer script (CI never runs Python). Input: the manifest of `scripts/input_check_set.py`
and what `cargo run --release -p ocular-models --example input_check_eval` writes with
`OCULAR_EMBEDDINGS_OUT=target/input-check-embeddings.csv` (each image's L2-normalised
EfficientNet-Lite0 embedding) and `target/input-check.csv` (its colour and texture signals).

The probe is an L2-regularised logistic regression on the 1280-d embedding. Its regularisation
and its decision threshold are chosen by cross-validation grouped by source photo *inside the
tuning split* (each fold leaves whole photos out); the held-out split is never read here.
Writes `crates/ocular-models/data/skin_probe.json` (weights, bias, threshold, provenance).

    /tmp/venv-inputcheck/bin/python scripts/input_check_probe.py
"""

import csv
import hashlib
import json

import numpy as np

MANIFEST = "fixtures/input_check/manifest.csv"
SIGNALS = "target/input-check.csv"
EMBEDDINGS = "target/input-check-embeddings.csv"
OUT = "crates/ocular-models/data/skin_probe.json"
# The colour gate the probe works behind (skin_check::MIN_SKIN_FRACTION): a photo that is not
# mostly skin-coloured never reaches the probe, so the probe is fitted on those that are.
MIN_SKIN_FRACTION = 0.5
# Smaller photos are refused before the probe (skin_check::MIN_SIDE).
MIN_SIDE = 32
# The recall the threshold must keep in cross-validation: a refusal costs a user a retake,
# an acceptance of a non-skin photo costs a meaningless diagnosis; keep almost every lesion.
TARGET_RECALL = 0.95


def fit(x, y, lam, iters=60):
    """Newton's method for logistic regression with an L2 penalty (bias not penalised)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        g = xb.T @ (p - y) + reg * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], w[-1]


def main():
    manifest = {r["file"]: r for r in csv.DictReader(open(MANIFEST))}
    signals = {r["file"]: r for r in csv.DictReader(open(SIGNALS))}
    emb = {}
    for line in open(EMBEDDINGS):
        f, *v = line.strip().split(",")
        emb[f] = np.asarray(v, np.float64)
    tune = [
        f
        for f, r in manifest.items()
        if r["split"] == "tune"
        and float(signals[f]["skin_fraction"]) >= MIN_SKIN_FRACTION
        and int(signals[f]["min_side"]) >= MIN_SIDE
    ]
    x = np.stack([emb[f] for f in tune])
    y = np.asarray([manifest[f]["label"] == "positive" for f in tune], np.float64)
    groups = sorted({manifest[f]["group"] for f in tune})
    fold_of = {g: int(hashlib.sha256(g.encode()).hexdigest(), 16) % 5 for g in groups}
    folds = np.asarray([fold_of[manifest[f]["group"]] for f in tune])
    best = None
    for lam in [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]:
        scores = np.zeros(len(tune))
        for k in range(5):
            tr, te = folds != k, folds == k
            if te.sum() == 0:
                continue
            w, b = fit(x[tr], y[tr], lam)
            scores[te] = x[te] @ w + b
        # The highest threshold that keeps TARGET_RECALL of the positives (out of fold).
        pos = np.sort(scores[y == 1])
        t = pos[int(np.floor((1 - TARGET_RECALL) * len(pos)))]
        pred = scores >= t
        tp, fp = (pred & (y == 1)).sum(), (pred & (y == 0)).sum()
        precision, recall = tp / max(1, tp + fp), tp / max(1, (y == 1).sum())
        print(f"lambda {lam:<5} cross-validated (tuning split, by photo): precision {precision:.3f} recall {recall:.3f} threshold {t:.3f}")
        if best is None or precision > best[1] + 1e-9:
            best = (lam, precision, recall, t)
    lam, precision, recall, t = best
    w, b = fit(x, y, lam)
    json.dump(
        {
            "about": "Logistic-regression skin probe on EfficientNet-Lite0's L2-normalised 1280-d embedding; "
            "fitted by scripts/input_check_probe.py on the tuning split of fixtures/input_check/manifest.csv "
            "(images with skin fraction >= min_skin_fraction and at least min_side px); see docs/INPUT_CHECK.md",
            "embedding_model": "efficientnet-lite0",
            "min_skin_fraction": MIN_SKIN_FRACTION,
            "min_side": MIN_SIDE,
            "lambda": lam,
            "threshold": round(float(t), 6),
            "cv_precision": round(float(precision), 4),
            "cv_recall": round(float(recall), 4),
            "trained_on": int(len(tune)),
            "bias": round(float(b), 6),
            "weights": [round(float(v), 6) for v in w],
        },
        open(OUT, "w"),
    )
    print(f"chosen lambda {lam}, threshold {t:.3f}; {len(tune)} tuning images -> {OUT}")


if __name__ == "__main__":
    main()
