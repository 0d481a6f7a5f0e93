"""The "Dermal" skin-lesion service as an idiomatic Python stack would write it today, for
bench/run.sh: FastAPI + uvicorn (1 worker) + TensorFlow/Keras 3, the same sklesion model file
ocular converts (models/.cache/src/sklesion/model.keras).

What it does per request (the same work as ocular's analyze, minus ocular's skin/object input
check, which the original service never had):
- decode the upload with PIL (EXIF orientation applied), `tf.image.resize` to 254x254 bilinear
  without antialias (the sklesion package's own preprocessing), metadata vector as in
  scripts/keras_sklesion_reference.py;
- probabilities from the Keras model; with `gradcam=true`, Grad-CAM on `block14_sepconv2_act`
  with `tf.GradientTape` (the classic Keras example, wired through the nested Xception as the
  reference script does), the 8x8 map coloured with matplotlib's `jet` and blended over the photo,
  as the Keras Grad-CAM example and the original service did;
- photo and overlay saved as JPEG (longest side <= 640, like ocular) with a row in SQLite.

The model is loaded once, before uvicorn accepts connections (FastAPI lifespan), and warmed with
one call of each path. Both model paths are `tf.function`s: eager Keras would be slower, and a
competent deployment compiles them.

Run: OCULAR_SKLESION_KERAS=... BENCH_DATA=DIR uvicorn skin_app:app --workers 1 --port 8101
"""

import io
import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import asynccontextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from fastapi import FastAPI, File, Form, HTTPException, UploadFile  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

SIZE = 254
AGE_MEAN = 51.9018  # training mean, used when the age is missing (docs/MODELS.md)
SEXES = ["female", "male", "unknown"]
PLACES = ["arm", "head-or-neck", "leg-or-genital", "trunk", "unknown"]
CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
MALIGN = {"akiec", "bcc", "mel"}
JET = matplotlib.colormaps["jet"]

state = {}


def meta_vector(sex, location, age):
    v = np.zeros((1, 10), np.float32)
    v[0, SEXES.index(sex)] = 1.0
    v[0, 3 + PLACES.index(location)] = 1.0
    v[0, 8] = (AGE_MEAN if age is None else age) / 90.0
    v[0, 9] = 1.0 if age is None else 0.0
    return v


def load():
    path = os.environ.get("OCULAR_SKLESION_KERAS", "models/.cache/src/sklesion/model.keras")
    model = keras.saving.load_model(path, compile=False)
    get = model.get_layer
    backbone = get("xception")
    features = keras.Model(backbone.input, backbone.get_layer("block14_sepconv2_act").output)

    def head(a, meta):
        g = tf.reduce_mean(a, axis=(1, 2))
        h = get("batch_normalization_4")(get("dense")(g))
        m = get("batch_normalization_5")(get("dense_1")(meta))
        m = get("batch_normalization_6")(get("dense_2")(m))
        x = get("batch_normalization_7")(get("dense_3")(get("concatenate")([h, m])))
        return get("dense_4")(x)

    @tf.function(reduce_retracing=True)
    def predict(image, meta):
        return model([image, meta], training=False)

    @tf.function(reduce_retracing=True)
    def predict_gradcam(image, meta):
        a = features(get("normalization")(image), training=False)
        with tf.GradientTape() as tape:
            tape.watch(a)
            probs = head(a, meta)
            klass = tf.argmax(probs[0])
            score = probs[:, klass]
        grads = tape.gradient(score, a)
        alpha = tf.reduce_mean(grads, axis=(1, 2))
        cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", a, alpha))[0]
        return probs, cam

    return predict, predict_gradcam


def open_db(data):
    db = sqlite3.connect(os.path.join(data, "analyses.db"), check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS analyses (id TEXT PRIMARY KEY, created REAL, result TEXT, "
        "image TEXT, heatmap TEXT)"
    )
    return db


@asynccontextmanager
async def lifespan(_app):
    started = time.time()
    data = os.environ.get("BENCH_DATA", "bench/out/python-skin")
    os.makedirs(os.path.join(data, "images"), exist_ok=True)
    state["predict"], state["gradcam"] = load()
    x = np.zeros((1, SIZE, SIZE, 3), np.float32)
    m = meta_vector("unknown", "unknown", None)
    state["predict"](x, m)
    state["gradcam"](x, m)
    state["data"] = data
    state["db"] = open_db(data)
    state["db_lock"] = threading.Lock()
    state["load_s"] = time.time() - started
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/health/ready")
def ready():
    return {"status": "ok", "ready": "predict" in state, "model_loaded": "predict" in state,
            "load_s": state.get("load_s")}


def overlay(photo, cam):
    """The Keras Grad-CAM example: jet colours of the upscaled map, 0.4 over the photo."""
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else cam
    heat = Image.fromarray(np.uint8(255 * JET(cam)[..., :3])).resize(photo.size, Image.BILINEAR)
    return Image.blend(photo, heat, 0.4), cam


def jpeg(image):
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


# A plain `def` endpoint: FastAPI runs it in its thread pool, and TensorFlow releases the GIL.
@app.post("/api/v1/analyze")
def analyze(
    image: UploadFile = File(...),
    age: float | None = Form(None),
    sex: str = Form("unknown"),
    location: str = Form("unknown"),
    gradcam: bool = True,
    force: bool = False,  # accepted for ocular's clients; there is no input check to override
):
    timings = {}
    t0 = time.perf_counter()
    if age is not None and not 0 <= age <= 120:
        raise HTTPException(400, "age must be a number from 0 to 120")
    if sex not in SEXES or location not in PLACES:
        raise HTTPException(400, "invalid sex or location")
    try:
        photo = ImageOps.exif_transpose(Image.open(image.file)).convert("RGB")
    except Exception as e:  # PIL raises many types for bad input
        raise HTTPException(400, f"not an image: {e}") from e
    x = tf.image.resize(np.asarray(photo)[None], (SIZE, SIZE), method="bilinear", antialias=False)
    meta = meta_vector(sex, location, age)
    t1 = time.perf_counter()
    timings["decode"] = (t1 - t0) * 1e3
    if gradcam:
        probs, cam = state["gradcam"](x, meta)
        cam = cam.numpy()
    else:
        probs, cam = state["predict"](x, meta), None
    probs = probs.numpy()[0]
    t2 = time.perf_counter()
    timings["inference"] = (t2 - t1) * 1e3
    thumb = photo.copy()
    thumb.thumbnail((640, 640))
    aid = uuid.uuid4().hex
    image_path = os.path.join(state["data"], "images", aid + ".jpg")
    with open(image_path, "wb") as f:
        f.write(jpeg(thumb))
    heatmap = None
    heatmap_path = None
    if cam is not None:
        blended, cam = overlay(thumb, cam)
        heatmap_path = os.path.join(state["data"], "images", aid + "-heatmap.jpg")
        with open(heatmap_path, "wb") as f:
            f.write(jpeg(blended))
        best = int(np.argmax(probs))
        heatmap = {"grid": cam.round(4).tolist(), "class": CLASSES[best]}
    timings["render"] = (time.perf_counter() - t2) * 1e3
    result = {
        "id": aid,
        "prediction": CLASSES[int(np.argmax(probs))],
        "probabilities": [{"code": c, "probability": float(p), "malignant": c in MALIGN} for c, p in zip(CLASSES, probs)],
        "malignant_probability": float(sum(p for c, p in zip(CLASSES, probs) if c in MALIGN)),
        "heatmap": heatmap,
        "timings_ms": timings,
    }
    with state["db_lock"]:
        state["db"].execute(
            "INSERT INTO analyses VALUES (?, ?, ?, ?, ?)",
            (aid, time.time(), json.dumps(result), image_path, heatmap_path),
        )
        state["db"].commit()
    return JSONResponse(result)
