#!/usr/bin/env python3
"""Builds the tiny Keras fixture models and their reference outputs under fixtures/keras/.

Developer script (CI never runs Python): the committed files it writes are what the Rust
converter tests (`crates/ocular-convert/tests/integration/keras.rs`) compare against.

Each fixture is a small model in the style of one architecture family, with seeded random
weights (BatchNorm statistics included, so folding them is really tested), saved as:

- `NAME.keras`  Keras 3 archive (config.json + model.weights.h5)
- `NAME.h5`     legacy HDF5 (model_config attribute + model_weights group)
- `NAME.json`   reference inputs and outputs computed by Keras itself, and for models with
                a classifier head the Grad-CAM grids computed with GradientTape.

`xception_like_tfkeras.h5` is the same model written by tf_keras (Keras 2): the old config
format (`inbound_nodes` as nested lists, `batch_input_shape`, weight names ending in `:0`).

Set-up (outside the repository):
    python3 -m venv /tmp/venv-keras
    /tmp/venv-keras/bin/pip install tensorflow-cpu keras tf_keras numpy h5py pillow
Run from the workspace root:
    /tmp/venv-keras/bin/python scripts/keras_fixtures.py
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "keras")
RNG = np.random.default_rng(20240601)
L = keras.layers


def randomize(model):
    """Seeded weights everywhere, with BatchNorm statistics far from the identity."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            randomize(layer)
            continue
        if isinstance(layer, L.Normalization):
            continue  # keep the statistics `adapt` computed
        new = []
        for w in layer.weights:
            v = w.numpy()
            name = w.path.split("/")[-1]
            if v.dtype.kind != "f":
                new.append(v)
            elif name in ("gamma", "moving_variance", "variance"):
                new.append(RNG.uniform(0.5, 1.5, v.shape).astype(v.dtype))
            elif name in ("beta", "moving_mean", "mean", "bias"):
                new.append(RNG.normal(0.0, 0.2, v.shape).astype(v.dtype))
            else:
                fan = max(1, int(np.prod(v.shape[:-1])))
                new.append(RNG.normal(0.0, 1.3 / np.sqrt(fan), v.shape).astype(v.dtype))
        if new:
            layer.set_weights(new)


def sep_bn(x, filters, name, act_first=True):
    if act_first:
        x = L.Activation("relu", name=name + "_act")(x)
    x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return L.BatchNormalization(epsilon=1e-3, name=name + "_bn")(x)


def xception_like():
    """Xception in miniature, wrapped like sklesion: Normalization, nested backbone, MLP head."""
    bin_ = keras.Input((31, 31, 3), name="input_layer_1")
    x = L.Conv2D(8, 3, strides=2, use_bias=False, name="block1_conv1")(bin_)
    x = L.BatchNormalization(name="block1_conv1_bn")(x)
    x = L.Activation("relu", name="block1_conv1_act")(x)
    x = L.Conv2D(12, 3, use_bias=False, name="block1_conv2")(x)
    x = L.BatchNormalization(name="block1_conv2_bn")(x)
    x = L.Activation("relu", name="block1_conv2_act")(x)
    for i, f in ((2, 16), (3, 24)):
        r = L.Conv2D(f, 1, strides=2, padding="same", use_bias=False)(x)
        r = L.BatchNormalization()(r)
        y = sep_bn(x, f, f"block{i}_sepconv1", act_first=i != 2)
        y = sep_bn(y, f, f"block{i}_sepconv2")
        y = L.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(y)
        x = L.Add()([y, r])
    r = x
    for j in range(1, 4):
        r = sep_bn(r, 24, f"block5_sepconv{j}")
    x = L.Add()([r, x])
    x = L.SeparableConv2D(32, 3, padding="same", use_bias=False, name="block14_sepconv1")(x)
    x = L.BatchNormalization(name="block14_sepconv1_bn")(x)
    x = L.Activation("relu", name="block14_sepconv1_act")(x)
    x = L.SeparableConv2D(40, 3, padding="same", use_bias=False, name="block14_sepconv2")(x)
    x = L.BatchNormalization(name="block14_sepconv2_bn")(x)
    x = L.Activation("relu", name="block14_sepconv2_act")(x)
    x = L.GlobalAveragePooling2D()(x)
    backbone = keras.Model(bin_, x, name="xception")

    img = keras.Input((31, 31, 3), name="image")
    meta = keras.Input((4,), name="meta")
    norm = L.Normalization(name="normalization")
    norm.adapt(RNG.uniform(0, 255, (64, 31, 31, 3)).astype("float32"))
    g = backbone(norm(img))
    m = L.Dense(12, activation="relu", name="dense_1")(meta)
    g = L.Dropout(0.3, name="dropout")(g)
    m = L.BatchNormalization(name="batch_normalization_5")(m)
    h = L.Dense(14, activation="relu", name="dense")(g)
    m = L.Dense(6, activation="relu", name="dense_2")(m)
    h = L.BatchNormalization(name="batch_normalization_4")(h)
    m = L.BatchNormalization(name="batch_normalization_6")(m)
    x = L.Concatenate(name="concatenate")([h, m])
    x = L.Dropout(0.3, name="dropout_1")(x)
    x = L.Dense(10, activation="relu", name="dense_3")(x)
    x = L.BatchNormalization(name="batch_normalization_7")(x)
    out = L.Dense(5, activation="softmax", name="dense_4")(x)
    model = keras.Model([img, meta], out, name="xception_like")
    randomize(model)
    inputs = {
        "image": RNG.uniform(0, 255, (2, 31, 31, 3)).astype("float32"),
        "meta": RNG.uniform(0, 1, (2, 4)).astype("float32"),
    }
    return model, inputs


def mobilenetv2_like():
    """ZeroPadding, strided/dilated convs, DepthwiseConv (multiplier 1 and 2), ReLU(6), Add."""
    img = keras.Input((40, 40, 3), name="image")
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(img)
    x = L.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = L.BatchNormalization(epsilon=1e-3)(x)
    x = L.ReLU(6.0)(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU(max_value=6.0)(y)
    y = L.Conv2D(8, 1, use_bias=False)(y)
    y = L.BatchNormalization()(y)
    x = L.Add()([x, y])
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    x = L.Activation("relu6")(x)
    x = L.Conv2D(12, 3, padding="same", dilation_rate=2)(x)
    x = L.ReLU(negative_slope=0.1)(x)
    x = L.Conv2D(12, 5, strides=2, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(3, padding="valid", dilation_rate=(1, 2), use_bias=True)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    out = L.Dense(6, activation="softmax")(x)
    model = keras.Model(img, out, name="mobilenetv2_like")
    randomize(model)
    return model, {"image": RNG.normal(0, 1, (2, 40, 40, 3)).astype("float32")}


def efficientnet_like():
    """Rescaling, Normalization from config, swish, squeeze-excite (keepdims and Reshape)."""
    img = keras.Input((20, 20, 3), name="image")
    x = L.Rescaling(1.0 / 255.0)(img)
    x = L.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.050, 0.051])(x)
    x = L.Rescaling([2.0, 1.0, 0.5], offset=0.1)(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("swish")(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.Activation("silu")(y)
    s = L.GlobalAveragePooling2D(keepdims=True)(y)
    s = L.Conv2D(2, 1, activation="swish")(s)
    s = L.Conv2D(8, 1, activation="sigmoid")(s)
    y = L.Multiply()([y, s])
    s = L.GlobalAveragePooling2D()(y)
    s = L.Reshape((1, 1, 8))(s)
    s = L.Conv2D(8, 1, activation="hard_sigmoid")(s)
    y = L.Multiply()([s, y])
    y = L.Conv2D(8, 1, use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.Dropout(0.2)(y)
    x = L.Add()([y, x])
    x = L.Conv2D(16, 1, activation="tanh")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(4, activation="softmax")(x)
    model = keras.Model(img, out, name="efficientnet_like")
    randomize(model)
    return model, {"image": RNG.uniform(0, 255, (2, 20, 20, 3)).astype("float32")}


def resnet_like():
    """Conv with bias, BN, MaxPool valid, bottleneck Add, AveragePooling valid and same."""
    img = keras.Input((32, 32, 3), name="image")
    x = L.ZeroPadding2D(3)(img)
    x = L.Conv2D(8, 7, strides=2)(x)
    x = L.BatchNormalization(epsilon=1.001e-5)(x)
    x = L.Activation("relu")(x)
    x = L.ZeroPadding2D(((1, 1), (1, 1)))(x)
    x = L.MaxPooling2D(3, strides=2)(x)
    r = L.Conv2D(16, 1)(x)
    r = L.BatchNormalization(epsilon=1.001e-5)(r)
    y = L.Conv2D(4, 1)(x)
    y = L.BatchNormalization(epsilon=1.001e-5)(y)
    y = L.Activation("relu")(y)
    y = L.Conv2D(4, 3, padding="same")(y)
    y = L.BatchNormalization(epsilon=1.001e-5)(y)
    y = L.Activation("relu")(y)
    y = L.Conv2D(16, 1)(y)
    y = L.BatchNormalization(epsilon=1.001e-5, center=False)(y)
    x = L.Add()([r, y])
    x = L.Activation("relu")(x)
    a = L.AveragePooling2D(2)(x)
    b = L.AveragePooling2D(3, strides=2, padding="same")(x)
    c = L.MaxPooling2D(2, strides=1, padding="same")(x)
    x = L.Concatenate()([a, b])
    x = L.Conv2D(8, 1, use_bias=False)(x)
    x = L.BatchNormalization(scale=False)(x)
    p = L.GlobalMaxPooling2D()(x)
    q = L.GlobalMaxPooling2D(keepdims=True)(c)
    q = L.Flatten()(q)
    x = L.Concatenate()([p, q])
    out = L.Dense(5)(x)
    out = L.Activation("softmax")(out)
    model = keras.Model(img, out, name="resnet_like")
    randomize(model)
    return model, {"image": RNG.normal(0, 1, (2, 32, 32, 3)).astype("float32")}


def densenet_like():
    """Dense blocks: BN-ReLU-Conv, Concatenate on channels and on spatial axes, AvgPool."""
    img = keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(img)
    for _ in range(2):
        y = L.BatchNormalization(epsilon=1.001e-5)(x)
        y = L.Activation("relu")(y)
        y = L.Conv2D(6, 1, use_bias=False)(y)
        y = L.BatchNormalization(epsilon=1.001e-5)(y)
        y = L.Activation("relu")(y)
        y = L.Conv2D(4, 3, padding="same", use_bias=False)(y)
        x = L.Concatenate(axis=3)([x, y])
    x = L.BatchNormalization(epsilon=1.001e-5)(x)
    x = L.Conv2D(8, 1, use_bias=False)(x)
    x = L.AveragePooling2D(2, strides=2)(x)
    top = L.Cropping2D(((0, 4), (0, 0)))(x)
    bottom = L.Cropping2D(((4, 0), (0, 0)))(x)
    tall = L.Concatenate(axis=1)([bottom, top])
    wide = L.Concatenate(axis=-2)([x, tall])
    x = L.Conv2D(8, 3, strides=(1, 2), padding="same")(wide)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(3, activation="softmax")(x)
    model = keras.Model(img, [out, wide], name="densenet_like")
    randomize(model)
    return model, {"image": RNG.normal(0, 1, (2, 16, 16, 3)).astype("float32")}


def multi_input():
    """Two inputs, three outputs; Flatten order, Dense on rank 3, Reshape, merges on vectors."""
    img = keras.Input((6, 5, 3), name="pixels")
    vec = keras.Input((5,), name="vec")
    x = L.Conv2D(4, 3, padding="same", activation="relu")(img)
    feat = x
    x = L.Flatten()(x)
    x = L.Dense(7, activation="relu")(x)
    v = L.Reshape((5, 1))(vec)
    v = L.Dense(3, activation="tanh")(v)
    v = L.Flatten()(v)
    v = L.Dense(7)(v)
    s = L.Add()([x, v])
    p = L.Multiply()([x, v])
    s = L.Subtract()([s, p])
    m = L.Maximum()([s, p])
    a = L.Average()([m, s, p])
    h = L.Concatenate()([a, L.Dropout(0.5)(vec)])
    h = L.Dense(8, activation="gelu")(h)
    h = L.Dense(8, activation="elu")(h)
    h = L.Dense(8, activation="softplus")(h)
    h = L.LeakyReLU(negative_slope=0.2)(h)
    probs = L.Dense(4, activation="softmax", name="probs")(h)
    value = L.Dense(1, name="value")(h)
    feat = L.Reshape((6, 5 * 4))(feat)
    feat = L.Reshape((3, 10, 4))(feat)
    model = keras.Model([img, vec], [probs, value, feat], name="multi_input")
    randomize(model)
    return model, {
        "pixels": RNG.normal(0, 1, (3, 6, 5, 3)).astype("float32"),
        "vec": RNG.normal(0, 1, (3, 5)).astype("float32"),
    }


def activations():
    """Every supported activation, on channels-last feature maps; Softmax on a spatial axis."""
    x_in = keras.Input((3, 4, 5), name="x")
    names = ["relu", "relu6", "sigmoid", "tanh", "swish", "silu", "softmax", "linear",
             "hard_sigmoid", "hard_silu", "elu", "selu", "gelu", "softplus", "softsign",
             "leaky_relu", "exponential", "mish", "log_softmax"]
    outs = [L.Activation(n, name=f"act_{n}")(x_in) for n in names]
    outs.append(L.Softmax(axis=1, name="softmax_h")(x_in))
    outs.append(L.ReLU(max_value=0.5, negative_slope=0.1, threshold=0.2, name="relu_general")(x_in))
    outs.append(L.PReLU(shared_axes=[1, 2], name="prelu")(x_in))
    cat = L.Concatenate(name="all")(outs)
    model = keras.Model(x_in, cat, name="activations")
    randomize(model)
    return model, {"x": RNG.normal(0, 2, (2, 3, 4, 5)).astype("float32")}


def sequential():
    """A Sequential model with a nested Sequential block (common in user code)."""
    block = keras.Sequential(
        [L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.Activation("relu")],
        name="block",
    )
    model = keras.Sequential(
        [keras.Input((9, 9, 2), name="x"), L.Conv2D(4, 3), block, L.MaxPooling2D(2),
         L.Flatten(), L.Dense(3, activation="softmax")],
        name="sequential_model",
    )
    randomize(model)
    return model, {"x": RNG.normal(0, 1, (2, 9, 9, 2)).astype("float32")}


def dynamic_size():
    """Unknown height and width: 'same' padding must be decided at run time (SAME_UPPER)."""
    img = keras.Input((None, None, 3), name="image")
    x = L.Conv2D(6, 3, strides=2, padding="same")(img)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.DepthwiseConv2D(5, strides=2, padding="same")(x)
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(3, activation="softmax")(x)
    model = keras.Model(img, out, name="dynamic_size")
    randomize(model)
    return model, {"image": RNG.normal(0, 1, (2, 23, 18, 3)).astype("float32")}


def unsupported():
    """An LSTM: the converter must refuse it by name and class."""
    x_in = keras.Input((5, 3), name="seq")
    x = L.LSTM(4, name="my_lstm")(x_in)
    out = L.Dense(2)(x)
    return keras.Model(x_in, out, name="unsupported"), {}


def head_gradcam(model, feature_model, image, meta, classes):
    """Autograd Grad-CAM for the sklesion-shaped head (layer names shared with sklesion)."""
    get = model.get_layer
    feats = feature_model(get("normalization")(image))
    with tf.GradientTape() as tape:
        a = tf.convert_to_tensor(feats)
        tape.watch(a)
        g = tf.reduce_mean(a, axis=(1, 2))
        h = get("batch_normalization_4")(get("dense")(get("dropout")(g)))
        m = get("batch_normalization_5")(get("dense_1")(meta))
        m = get("batch_normalization_6")(get("dense_2")(m))
        x = get("dropout_1")(get("concatenate")([h, m]))
        x = get("batch_normalization_7")(get("dense_3")(x))
        probs = get("dense_4")(x)
        picked = tf.gather(probs, classes, axis=1, batch_dims=1)
    grads = tape.gradient(picked, a)
    alpha = tf.reduce_mean(grads, axis=(1, 2))  # (N, C): dP/dA_ijk is constant over i, j
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", a, alpha)).numpy()
    cams = [c / c.max() if c.max() > 0 else c for c in cam]
    return probs.numpy(), np.stack(cams), feats.numpy()


def tensor_json(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return {"name": name, "shape": list(arr.shape), "data": arr.reshape(-1).tolist()}


def save(name, model, inputs, extra=None):
    model.save(os.path.join(OUT, name + ".keras"))
    model.save(os.path.join(OUT, name + ".h5"))
    if not inputs:
        return None
    outs = model([inputs[t.name.split(":")[0]] for t in model.inputs] if len(model.inputs) > 1
                 else inputs[model.inputs[0].name.split(":")[0]])
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    names = [t._keras_history[0].name for t in model.outputs]
    ref = {
        "inputs": [tensor_json(k, v) for k, v in inputs.items()],
        "outputs": [tensor_json(n, o) for n, o in zip(names, outs)],
    }
    ref.update(extra or {})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    return ref


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(7)
    for build in (mobilenetv2_like, efficientnet_like, resnet_like, densenet_like, multi_input,
                  activations, sequential, dynamic_size, unsupported):
        model, inputs = build()
        save(build.__name__, model, inputs)
        print("wrote", build.__name__, model.count_params(), "params")

    model, inputs = xception_like()
    backbone = model.get_layer("xception")
    feature_model = keras.Model(backbone.input, backbone.get_layer("block14_sepconv2_act").output)
    classes = np.array([1, 3])
    probs, cams, feats = head_gradcam(model, feature_model, inputs["image"], inputs["meta"], classes)
    full = model([inputs["image"], inputs["meta"]]).numpy()
    assert np.abs(probs - full).max() < 1e-6, "hand-wired head disagrees with the model"
    extra = {"gradcam": {"layer": "block14_sepconv2_act", "classes": classes.tolist(),
                         "feature_shape": list(feats.shape), "cams": cams.reshape(-1).tolist()}}
    save("xception_like", model, inputs, extra)
    print("wrote xception_like", model.count_params(), "params")

    # The same model written by Keras 2 (tf_keras): the legacy config and weight naming.
    try:
        import tf_keras
    except ImportError:
        print("tf_keras missing: skipped the Keras 2 fixture", file=sys.stderr)
        return
    k2_model = build_tf_keras_xception(tf_keras)
    copy_weights(model, k2_model)
    out2 = k2_model([inputs["image"], inputs["meta"]]).numpy()
    assert np.abs(out2 - full).max() < 1e-5, "tf_keras copy disagrees"
    k2_model.save(os.path.join(OUT, "xception_like_tfkeras.h5"))
    print("wrote xception_like_tfkeras.h5")

    # Keras 2 defined hard_sigmoid as clip(0.2 x + 0.5, 0, 1); Keras 3 as relu6(x + 3) / 6.
    tl = tf_keras.layers
    x_in = tf_keras.Input((4,), name="x")
    h = tl.Dense(6, activation="hard_sigmoid")(x_in)
    out = tl.Dense(3, activation="softmax")(h)
    k2_small = tf_keras.Model(x_in, out, name="tfkeras_hard_sigmoid")
    k2_small.set_weights([RNG.normal(0, 1.5, w.shape).astype("float32") for w in k2_small.get_weights()])
    x = RNG.normal(0, 3, (4, 4)).astype("float32")
    k2_small.save(os.path.join(OUT, "tfkeras_hard_sigmoid.h5"))
    ref = {"inputs": [tensor_json("x", x)],
           "outputs": [tensor_json(k2_small.output_names[0], k2_small(x).numpy())]}
    with open(os.path.join(OUT, "tfkeras_hard_sigmoid.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    print("wrote tfkeras_hard_sigmoid.h5")


def copy_weights(src, dst):
    """Layer by layer in model order (flat `get_weights` orders differ between Keras 2 and 3)."""
    assert len(src.layers) == len(dst.layers)
    for a, b in zip(src.layers, dst.layers):
        if hasattr(a, "layers"):
            copy_weights(a, b)
        elif a.get_weights():
            b.set_weights(a.get_weights())
            if hasattr(b, "finalize_state"):
                b.finalize_state()  # tf_keras Normalization caches mean/variance here


def build_tf_keras_xception(tfk):
    """Rebuilds `xception_like` layer by layer with the Keras 2 API (same weight order)."""
    global L, keras
    saved = (L, keras)
    keras, L = tfk, tfk.layers
    try:
        state = RNG.bit_generator.state
        model, _ = xception_like_no_random()
        RNG.bit_generator.state = state
        return model
    finally:
        L, keras = saved


def xception_like_no_random():
    global randomize
    saved = randomize
    randomize = lambda m: None  # noqa: E731 - weights are copied in afterwards
    try:
        return xception_like()
    finally:
        randomize = saved


if __name__ == "__main__":
    main()
