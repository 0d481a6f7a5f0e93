#!/usr/bin/env python3
"""Reference outputs of the real sklesion Keras model, for the Rust converter's test.

Developer script (CI never runs Python). Writes `fixtures/keras/sklesion/`:

- `NAME.png`: 254x254 RGB images, exactly the pixels fed to the model. Photos from
  scikit-image are resized with `tf.image.resize(..., "bilinear", antialias=False)` as the
  sklesion package does, then rounded to uint8 so a PNG holds the model input exactly.
  `ellipse.png` is a synthetic brown ellipse on skin tone (docs/MODELS.md check: vasc ~ 0.72).
- `reference.json`: for each (image, metadata) case, Keras' probabilities and the Grad-CAM
  grid (8x8, normalised to [0, 1]) computed with GradientTape on `block14_sepconv2_act`.

Usage (venv outside the repository, see scripts/keras_fixtures.py):
    /tmp/venv-keras/bin/python scripts/keras_sklesion_reference.py \
        [--model models/.cache/src/sklesion/model.keras] [--photos models/photos]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "keras", "sklesion")
SIZE = 254
AGE_MEAN = 51.9018  # training mean, used when the age is missing (docs/MODELS.md)


def meta(sex, location, age):
    """sex one-hot [female, male, unknown] + location one-hot [arm, head-or-neck,
    leg-or-genital, trunk, unknown] + age/90 + age_missing."""
    sexes = ["female", "male", "unknown"]
    places = ["arm", "head-or-neck", "leg-or-genital", "trunk", "unknown"]
    v = [0.0] * 10
    v[sexes.index(sex)] = 1.0
    v[3 + places.index(location)] = 1.0
    v[8] = (AGE_MEAN if age is None else age) / 90.0
    v[9] = 1.0 if age is None else 0.0
    return v


METAS = [
    meta("unknown", "unknown", None),
    meta("female", "trunk", 45),
    meta("male", "head-or-neck", 70),
]


def photo(path):
    rgb = np.asarray(Image.open(path).convert("RGB"))
    resized = tf.image.resize(rgb, (SIZE, SIZE), method="bilinear", antialias=False).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def ellipse():
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = (224, 172, 150)  # skin tone
    inside = ((xx - 127) / 60) ** 2 + ((yy - 127) / 40) ** 2 <= 1.0
    img[inside] = (101, 67, 33)  # dark brown lesion
    return img.astype(np.uint8)


def gradcam(model, feature_model, image, meta_vec, klass):
    get = model.get_layer
    feats = feature_model(get("normalization")(image))
    with tf.GradientTape() as tape:
        a = tf.convert_to_tensor(feats)
        tape.watch(a)
        g = tf.reduce_mean(a, axis=(1, 2))
        h = get("batch_normalization_4")(get("dense")(get("dropout")(g)))
        m = get("batch_normalization_5")(get("dense_1")(meta_vec))
        m = get("batch_normalization_6")(get("dense_2")(m))
        x = get("dropout_1")(get("concatenate")([h, m]))
        x = get("batch_normalization_7")(get("dense_3")(x))
        probs = get("dense_4")(x)
        score = probs[:, klass]
    grads = tape.gradient(score, a)
    alpha = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", a, alpha)).numpy()[0]
    return probs.numpy()[0], (cam / cam.max() if cam.max() > 0 else cam)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.environ.get("OCULAR_SKLESION_KERAS", "models/.cache/src/sklesion/model.keras"))
    p.add_argument("--photos", default="models/photos")
    args = p.parse_args()
    os.makedirs(OUT, exist_ok=True)

    model = keras.saving.load_model(args.model, compile=False)
    image_input, meta_input = [t[0] for t in model.get_config()["input_layers"]]
    backbone = model.get_layer("xception")
    feature_model = keras.Model(backbone.input, backbone.get_layer("block14_sepconv2_act").output)

    images = {name: photo(os.path.join(args.photos, name + ".png")) for name in ("coffee", "chelsea", "astronaut")}
    images["ellipse"] = ellipse()
    cases = []
    for name, img in images.items():
        Image.fromarray(img).save(os.path.join(OUT, name + ".png"), optimize=True)
        x = img.astype(np.float32)[None]
        for mv in METAS:
            mvec = np.asarray([mv], np.float32)
            full = model([x, mvec]).numpy()[0]
            klass = int(np.argmax(full))
            probs, cam = gradcam(model, feature_model, x, mvec, klass)
            assert np.abs(probs - full).max() < 1e-6, "hand-wired head disagrees with the model"
            cases.append({"image": name + ".png", "meta": mv, "class": klass,
                          "probs": full.tolist(), "cam": cam.reshape(-1).tolist()})
            print(name, mv, "class", klass, "p", np.round(full, 3))
    ref = {"size": SIZE, "image_input": image_input, "meta_input": meta_input,
           "classes": ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], "cases": cases}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    main()
