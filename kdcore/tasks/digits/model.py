"""The digits task's networks: layer lists first, then Keras models, and their sizes from either.

A model is first a list of layer specs (pure Python); :func:`build` turns it
into a Keras model and :func:`stats` counts its parameters and
multiply-accumulates from the same list, without importing TensorFlow (the
Distill page's size table updates on every slider move). Both networks output
logits; softmax and temperature belong to the losses.

The layer named ``hint`` is where the FitNets stage reads the teacher and
trains the student: the first pooled feature map for a CNN student, the last
hidden layer of the teacher (and the first of the student) for an MLP student.
"""
from __future__ import annotations

from .settings import StudentConfig, TeacherConfig

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
_TEACHER_SIZES = {"cnn": (32, 64, 128), "cnn-large": (64, 128, 256)}


def teacher_layers(cfg: TeacherConfig) -> list[tuple]:
    """The seed tutorial's CNN: Conv32-Pool-Conv64-Pool-Dense128-Dense10 (or doubled)."""
    c1, c2, dense = _TEACHER_SIZES[cfg.variant]
    spec = [("shift", 0.1)] if cfg.augment else []
    spec += [("conv", c1, "conv1"), ("pool", "pool1"), ("conv", c2, "conv2"), ("pool", "pool2"), ("flatten",)]
    if cfg.dropout:
        spec.append(("dropout", cfg.dropout))
    spec.append(("dense", dense, "hint"))
    if cfg.dropout:
        spec.append(("dropout", cfg.dropout))
    return spec + [("logits", NUM_CLASSES)]


def student_layers(cfg: StudentConfig) -> list[tuple]:
    """[Conv(filters)-Pool] - Dense(units) × layers - Dense10; filters = 0 gives an MLP."""
    spec: list[tuple] = []
    if cfg.filters:
        spec += [("conv", cfg.filters, "conv1"), ("pool", "hint")]
    spec.append(("flatten",))
    for i in range(cfg.layers):
        name = "hint" if (i == 0 and not cfg.filters) else f"hidden{i + 1}"
        spec.append(("dense", cfg.units, name))
    return spec + [("logits", NUM_CLASSES)]


def stats(spec: list[tuple]) -> dict:
    """Parameters, multiply-accumulates per image and float32 weight bytes, from a layer list."""
    h, w, c = INPUT_SHAPE
    flat = None
    params = macs = 0
    for layer in spec:
        kind = layer[0]
        if kind == "conv":  # 3x3, valid padding
            f = layer[1]
            h, w = h - 2, w - 2
            params += 9 * c * f + f
            macs += h * w * f * 9 * c
            c = f
        elif kind == "pool":
            h, w = h // 2, w // 2
        elif kind == "flatten":
            flat = h * w * c
        elif kind in ("dense", "logits"):
            n = layer[1]
            params += flat * n + n
            macs += flat * n
            flat = n
    return {"params": params, "macs": macs, "weight_bytes": 4 * params}


def teacher_stats(cfg: TeacherConfig) -> dict:
    return stats(teacher_layers(cfg))


def student_stats(cfg: StudentConfig) -> dict:
    return stats(student_layers(cfg))


def build(spec: list[tuple], name: str, seed: int = 0):
    """A Keras functional model from a layer list; ``seed`` fixes the initial weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(INPUT_SHAPE, name="image")
    for layer in spec:
        kind = layer[0]
        if kind == "shift":
            x = layers.RandomTranslation(layer[1], layer[1], fill_mode="constant", seed=seed, name="shift")(x)
        elif kind == "conv":
            x = layers.Conv2D(layer[1], 3, activation="relu", name=layer[2])(x)
        elif kind == "pool":
            x = layers.MaxPooling2D(2, name=layer[1])(x)
        elif kind == "flatten":
            x = layers.Flatten(name="flatten")(x)
        elif kind == "dropout":
            x = layers.Dropout(layer[1], seed=seed)(x)
        elif kind == "dense":
            x = layers.Dense(layer[1], activation="relu", name=layer[2])(x)
        elif kind == "logits":
            x = layers.Dense(layer[1], name="logits")(x)
    return keras.Model(inputs, x, name=name)


def build_teacher(cfg: TeacherConfig):
    return build(teacher_layers(cfg), "teacher", cfg.seed)


def build_student(cfg: StudentConfig, seed: int = 0):
    """Same ``seed`` → same initial weights: the distilled student and its baseline start equal."""
    return build(student_layers(cfg), "student", seed)


def model_stats(model) -> dict:
    """Parameters and MACs of any built model (Conv2D and Dense layers), as data."""
    params = int(model.count_params())
    macs = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "Conv2D":
            _, oh, ow, oc = layer.output.shape
            kh, kw = layer.kernel_size
            macs += oh * ow * oc * kh * kw * layer.input.shape[-1]
        elif cls == "Dense":
            macs += layer.input.shape[-1] * layer.units
    return {"params": params, "macs": int(macs), "weight_bytes": 4 * params}
