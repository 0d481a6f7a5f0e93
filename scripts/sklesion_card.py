#!/usr/bin/env python3
"""Writes crates/ocular-convert/data/sklesion_card.json from the sklesion wheel's pickles.

The wheel's model_props.pkl, cl_info.pkl and cr_test.pkl hold the class names, descriptions,
benign/malign split, metadata encoding and the published test report. They are pickles (which
ocular never unpickles at run time), so this developer script extracts the facts once.
Setup: python3 -m venv /tmp/venv-card && /tmp/venv-card/bin/pip install numpy pandas
Usage: /tmp/venv-card/bin/python scripts/sklesion_card.py PATH/TO/unzipped/sklesion
"""
import json
import pickle
import sys
from pathlib import Path

src = Path(sys.argv[1])
p = pickle.load(open(src / "model_props.pkl", "rb"))
c = pickle.load(open(src / "cl_info.pkl", "rb"))
r = pickle.load(open(src / "cr_test.pkl", "rb"))
order = [p["i_cl_map"][i] for i in range(7)]
labels = [
    {"code": k, "name": c[k]["name"], "description": " ".join(c[k]["description"].split()),
     "malignant": c[k]["severity"] == "Malign"}
    for k in order
]
classes = {
    k: {m: float(r[m][k]) for m in ["precision", "recall", "f1-score"]} | {"support": int(r["support"][k])}
    for k in order
}
card = {
    "labels": labels,
    "metadata": {
        "sex": list(p["oh_map"]["sex"].keys()), "location": list(p["oh_map"]["loc"].keys()),
        "age_mean": float(p["age_mean"]), "age_max": float(p["age_max"]),
        "vector": "sex one-hot (3) + location one-hot (5) + age/age_max + age_missing; a missing age is filled with age_mean",
    },
    "test_report": {
        "images": int(r["support"]["accuracy"]), "accuracy": float(r["f1-score"]["accuracy"]),
        "balanced_accuracy": float(r["recall"]["macro avg"]), "macro_f1": float(r["f1-score"]["macro avg"]),
        "macro_precision": float(r["precision"]["macro avg"]), "per_class": classes,
    },
    "training_data": "HAM10000 (Tschandl et al. 2018): 10015 dermatoscopic images of pigmented lesions, "
                     "67% melanocytic nevi; test split of 1511 images",
    "intended_use": "Education and research on dermatoscopic images. Not a medical device and not a diagnosis: "
                    "any concerning lesion must be seen by a clinician.",
    "source": "sklesion 0.2.2 (MIT), files model.keras, model_props.pkl, cl_info.pkl, cr_test.pkl",
}
out = Path(__file__).resolve().parent.parent / "crates/ocular-convert/data/sklesion_card.json"
out.write_text(json.dumps(card, indent=1))
print("wrote", out)
