"""The images task's networks: a VGG-style teacher and a small student, first as layer lists, then Keras models.

As for digits, a network is first a list of layer specs (pure Python):
:func:`build` makes it a Keras model, :func:`stats` counts it. Every block
ends in a layer named ``block1`` … ``block5``: the FitNets stage pairs the
teacher's ``block{student_hint}`` (the hint layer) with the student's
``block{student_guided}`` (the guided layer), see :meth:`Images.hint_layers`.
The input shape and the number of classes come from the dataset, so the
networks are built when the data is known; the size table (no TensorFlow)
is for 32×32×3 images and 10 classes.
"""
from __future__ import annotations

from ...dataset import Dataset
from .settings import VGG_CHANNELS, VGG_DEPTHS, StudentConfig, TeacherConfig

SIZE_SHAPE = (32, 32, 3)  # what the size table assumes: CIFAR-10's images and classes
SIZE_CLASSES = 10
VGG_DENSE = 512
CROP = 0.125  # random shifts of up to 4 of 32 pixels: CIFAR's pad-4-and-crop
BN_MOMENTUM = 0.9  # Keras's 0.99 leaves the moving statistics near their start after a short CPU run


def _conv_blocks(channels, depths, batchnorm: bool, prefix: str) -> list[tuple]:
    spec: list[tuple] = []
    for b, (c, n) in enumerate(zip(channels, depths), start=1):
        spec += [("conv", c, f"{prefix}{b}_conv{i + 1}", batchnorm) for i in range(n)]
        spec.append(("pool", f"block{b}"))
    return spec


def teacher_layers(cfg: TeacherConfig) -> list[tuple]:
    """VGG for small images (as in the CIFAR ports of VGG): 5 conv blocks, one dense layer, logits."""
    channels = [max(4, round(c * cfg.width)) for c in VGG_CHANNELS]
    spec = [("flip",), ("shift", CROP)] if cfg.augment else []
    spec += _conv_blocks(channels, VGG_DEPTHS[cfg.variant], cfg.batchnorm, "b")
    spec += [("flatten",), ("dropout", cfg.dropout), ("dense", max(16, round(VGG_DENSE * cfg.width)), "fc"),
             ("dropout", cfg.dropout), ("logits",)]
    return spec


def student_layers(cfg: StudentConfig) -> list[tuple]:
    """Blocks of ``depth`` BatchNorm convolutions (channels doubling), global average pooling, logits."""
    channels = [cfg.filters * 2 ** b for b in range(cfg.blocks)]
    return _conv_blocks(channels, [cfg.depth] * cfg.blocks, True, "s") + [("gap",), ("logits",)]


def _pooled(h: int, w: int) -> tuple[int, int, int]:
    """(pool size, h, w) after a block: 2×2 while both sides allow it, else none (28×28 inputs reach 1×1)."""
    return (2, h // 2, w // 2) if min(h, w) >= 2 else (1, h, w)


def stats(spec: list[tuple], shape=SIZE_SHAPE, classes: int = SIZE_CLASSES) -> dict:
    """Parameters, multiply-accumulates per image and float32 weight bytes, from a layer list.

    Convolutions are 3×3 with "same" padding; BatchNorm counts its four
    numbers per channel, as Keras's ``count_params`` does.
    """
    h, w, c = shape
    n_params = macs = 0
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            f, bn = layer[1], layer[3]
            n_params += 9 * c * f + (4 * f if bn else f)
            macs += h * w * f * 9 * c
            c = f
        elif kind == "pool":
            _, h, w = _pooled(h, w)
        elif kind in ("flatten", "gap"):
            c, h, w = (h * w * c if kind == "flatten" else c), 1, 1
        elif kind in ("dense", "logits"):
            n = layer[1] if kind == "dense" else classes
            n_params += c * n + n
            macs += c * n
            c = n
    return {"params": n_params, "macs": macs, "weight_bytes": 4 * n_params}


def build(spec: list[tuple], name: str, shape, classes: int, seed: int = 0):
    """A Keras functional model from a layer list; ``seed`` fixes the initial weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    h, w = shape[0], shape[1]
    x = inputs = keras.Input(tuple(shape), name="image")
    for layer in spec:
        kind = layer[0]
        if kind == "flip":
            x = layers.RandomFlip("horizontal", seed=seed, name="flip")(x)
        elif kind == "shift":
            x = layers.RandomTranslation(layer[1], layer[1], fill_mode="constant", seed=seed, name="shift")(x)
        elif kind == "conv":
            _, f, lname, bn = layer
            x = layers.Conv2D(f, 3, padding="same", use_bias=not bn, name=lname)(x)
            if bn:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{lname}_bn")(x)
            x = layers.ReLU(name=f"{lname}_relu")(x)
        elif kind == "pool":
            size, h, w = _pooled(h, w)
            x = layers.MaxPooling2D(size, name=layer[1])(x)
        elif kind == "flatten":
            x = layers.Flatten(name="flatten")(x)
        elif kind == "gap":
            x = layers.GlobalAveragePooling2D(name="gap")(x)
        elif kind == "dropout":
            x = layers.Dropout(layer[1], seed=seed)(x) if layer[1] else x
        elif kind == "dense":
            x = layers.Dense(layer[1], activation="relu", name=layer[2])(x)
        elif kind == "logits":
            x = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, x, name=name)


def build_teacher(cfg: TeacherConfig, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
    return build(teacher_layers(cfg), "teacher", shape, classes, cfg.seed)


def build_student(cfg: StudentConfig, seed: int = 0, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
    """Same ``seed`` → same initial weights: the distilled student and its baseline start equal."""
    return build(student_layers(cfg), "student", shape, classes, seed)


def _shape_of(data: Dataset | None) -> tuple[tuple, int]:
    """(image shape, number of classes) of a dataset; CIFAR-10's 32×32×3 and 10 without one."""
    if data is None:
        return SIZE_SHAPE, SIZE_CLASSES
    return tuple(int(s) for s in data.x_train.shape[1:]), len(data.classes)
