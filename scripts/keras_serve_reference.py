#!/usr/bin/env python3
"""Keras' own answers on real photos for the committed Keras fixtures, as ocular serves them.

Developer script (CI never runs Python). Writes `fixtures/keras/serve/`: each photo of
`fixtures/keras/sklesion/` resized (PIL bilinear) to each served fixture's input size and saved
as PNG, and `reference.json` with what Keras computes on exactly those pixels after the
preprocessing `ocular models import` records (`--scale/--mean/--std` for fixtures without their
own Rescaling layer): the classifier output and, for models with a global-average-pooling head,
the GradientTape Grad-CAM grid of the top class. `crates/ocular-server/tests/integration/serve_models.rs`
imports every fixture, uploads these PNGs over HTTP and compares (1e-4; Grad-CAM correlation
>= 0.999). A PNG at the input size reaches the model unresampled (TF bilinear at scale 1 is the
identity), so both sides see the same pixels.

Set-up (outside the repository):
    python3 -m venv /tmp/venv-keras
    /tmp/venv-keras/bin/pip install tensorflow-cpu keras numpy h5py pillow
Run from the workspace root:
    /tmp/venv-keras/bin/python scripts/keras_serve_reference.py
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from keras_fixtures import head_gradcam  # noqa: E402

ROOT = os.path.join(HERE, "..", "fixtures", "keras")
OUT = os.path.join(ROOT, "serve")
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "ellipse.png"]

# fixture, (width, height) when the model has no fixed size, scale, mean, std, extra inputs.
# Fixtures whose reference inputs were 0..255 carry their own normalisation; the others were
# trained (randomly) on about -4..4, so the import maps 0..255 to -2..2.
SERVED = [
    ("xception_like", None, 1.0, 0.0, 1.0, {"meta": [0.2, 0.4, 0.6, 0.8]}),
    ("efficientnet_like", None, 1.0, 0.0, 1.0, {}),
    ("mobilenetv2_like", None, 1 / 64, 2.0, 1.0, {}),
    ("resnet_like", None, 1 / 64, 2.0, 1.0, {}),
    ("densenet_like", None, 1 / 64, 2.0, 1.0, {}),
    ("multi_input", None, 1 / 64, 2.0, 1.0, {"vec": [-1.0, -0.5, 0.0, 0.5, 1.0]}),
    ("dynamic_size", (18, 23), 1 / 64, 2.0, 1.0, {}),
]


def pooled_feature_layer(model):
    """The layer whose output the classifier head's global average pooling reads, if any."""
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        return None
    # The head's pooling is the last one (squeeze-excitation blocks pool earlier).
    return pools[-1]._inbound_nodes[0].input_tensors[0]._keras_history[0].name


def tape_gradcam(model, layer, feeds, out_index):
    """Grad-CAM of the top class with GradientTape (the Keras Grad-CAM recipe)."""
    outputs = model.outputs if len(model.outputs) > 1 else [model.output]
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, outputs[out_index]])
    with tf.GradientTape() as tape:
        feats, probs = grad_model(feeds if len(feeds) > 1 else feeds[0])
        cls = int(np.argmax(probs[0]))
        picked = probs[:, cls]
    grads = tape.gradient(picked, feats)
    alpha = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", feats, alpha)).numpy()[0]
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cls, cam


def main():
    os.makedirs(OUT, exist_ok=True)
    models = []
    for name, size, scale, mean, std, extras in SERVED:
        model = keras.models.load_model(os.path.join(ROOT, name + ".keras"), compile=False)
        image_input = next(t for t in model.inputs if len(t.shape) == 4)
        h, w = image_input.shape[1], image_input.shape[2]
        if size is not None:
            w, h = size
        out_index = next(i for i, t in enumerate(model.outputs) if len(t.shape) == 2)
        output = model.outputs[out_index]._keras_history[0].name
        cases = []
        for photo in PHOTOS:
            file = f"{w}x{h}_{photo}"
            img = Image.open(os.path.join(ROOT, "sklesion", photo)).convert("RGB").resize((w, h), Image.BILINEAR)
            img.save(os.path.join(OUT, file))
            pixels = np.asarray(Image.open(os.path.join(OUT, file)).convert("RGB"), dtype=np.float32)[None]
            x = (pixels * np.float32(scale) - np.float32(mean)) / np.float32(std)
            feeds = []
            for t in model.inputs:
                input_name = t._keras_history[0].name
                feeds.append(x if len(t.shape) == 4 else np.asarray([extras[input_name]], dtype=np.float32))
            outs = model(feeds if len(feeds) > 1 else feeds[0])
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            probs = np.asarray(outs[out_index])[0]
            case = {"image": file, "output": probs.tolist()}
            layer = pooled_feature_layer(model)
            if name != "xception_like" and layer is not None:
                cls, cam = tape_gradcam(model, layer, feeds, out_index)
                case["gradcam"] = {"class": cls, "grid": cam.reshape(-1).tolist(), "layer": layer,
                                   "width": int(cam.shape[1]), "height": int(cam.shape[0])}
            if name == "xception_like":
                backbone = model.get_layer("xception")
                feature_model = keras.Model(backbone.input, backbone.get_layer("block14_sepconv2_act").output)
                cls = np.array([int(np.argmax(probs))])
                meta = np.asarray([extras["meta"]], dtype=np.float32)
                p, cams, _ = head_gradcam(model, feature_model, x, meta, cls)
                assert np.abs(p[0] - probs).max() < 1e-6, "hand-wired head disagrees with the model"
                case["gradcam"] = {"class": int(cls[0]), "grid": cams[0].reshape(-1).tolist(),
                                   "layer": "block14_sepconv2_act",
                                   "width": int(cams.shape[2]), "height": int(cams.shape[1])}
            cases.append(case)
        models.append({"fixture": name, "width": w, "height": h, "scale": scale, "mean": mean, "std": std,
                       "extras": extras, "output": output, "cases": cases})
        print("reference for", name, f"{w}x{h}", "output", output)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"photos": PHOTOS, "models": models}, f, indent=1)


if __name__ == "__main__":
    main()
