"""Digits: classifiers of 28×28 grey images (MNIST, Fashion-MNIST, a user's .npz or IDX folder).

The first task of KD Studio, and the one every screen was built on. The
datasets live in :mod:`kdcore.data`, the image preprocessing of a drawn or
uploaded digit in :mod:`kdcore.images`; this module holds the task's
settings, its networks and the task object that ties them together.

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

from dataclasses import dataclass

from ... import data as datasets
from ... import params
from ...config import TrainConfig, Validated, default
from ...params import Param
from ..base import HINT, SOFT, Task
from .presets import PRESETS

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
TEACHER_VARIANTS = ("cnn", "cnn-large")

params.register(
    Param("variant", str, "cnn", "the teacher network: the seed tutorial's CNN, or one twice as wide",
          choices=TEACHER_VARIANTS, label="Teacher network", group="teacher", tasks=("digits",)),
    Param("dropout", float, 0.0, "dropout before and after the teacher's dense layer", low=0.0, high=0.9,
          step=0.05, group="teacher", tasks=("digits",)),
    Param("augment", bool, False, "random shifts of up to 10 % of each training digit", label="Augmentation (random shifts)", group="teacher",
          tasks=("digits",)),
    Param("student_filters", int, 0, "conv filters of the student (0 = a plain MLP)", low=0, high=256,
          ui_range=(0, 64), label="Conv filters (0 = MLP)", group="student", tasks=("digits",)),
    Param("student_units", int, 128, "hidden units per dense layer of the student", low=1, high=4096, step=8,
          ui_range=(8, 1024), label="Hidden units", group="student", tasks=("digits",)),
    Param("student_layers", int, 1, "hidden dense layers of the student", low=1, high=8, ui_range=(1, 4),
          label="Hidden layers", group="student", tasks=("digits",)),
)


@dataclass
class TeacherConfig(TrainConfig):
    """The teacher network: the seed tutorial's CNN, or a larger variant."""

    variant: str = default("variant")
    dropout: float = default("dropout")
    augment: bool = default("augment")
    epochs: int = default("epochs", role="teacher")


@dataclass
class StudentConfig(Validated):
    """Student size: conv filters (0 = plain MLP), hidden units, hidden layers."""

    PREFIX = "student_"

    filters: int = default("student_filters")
    units: int = default("student_units")
    layers: int = default("student_layers")


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


class Digits(Task):
    name = "digits"
    title = "Digits (28×28 grey images)"
    description = ("A CNN teacher and a small MLP or CNN student on MNIST-style images: MNIST, its 5,000 "
                   "offline digits, Fashion-MNIST, or your own .npz or IDX folder.")
    example = "canvas"
    presets = PRESETS
    terms = (SOFT, HINT)
    teacher_config = TeacherConfig
    student_config = StudentConfig

    def datasets(self) -> list[dict]:
        return datasets.available()

    def default_dataset(self) -> tuple[str, str]:
        return datasets.default_dataset()

    def load(self, name: str | None = None):
        return datasets.load(name)

    def build_teacher(self, cfg: TeacherConfig):
        return build_teacher(cfg)

    def build_student(self, cfg: StudentConfig, seed: int = 0):
        return build_student(cfg, seed)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return teacher_stats(cfg)  # digits are always 28×28×1 and 10 classes

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return student_stats(cfg)

    def describe_student(self, cfg: StudentConfig) -> str:
        return f"{cfg.units}-unit MLP" if not cfg.filters else f"CNN ({cfg.filters} filters, {cfg.units} units)"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        extras = [f"dropout {cfg.dropout:g}"] * bool(cfg.dropout) + ["shifts"] * bool(cfg.augment)
        return ", ".join([cfg.variant, f"{cfg.epochs} epochs", *extras])

    def prepare_image(self, source, shape):
        """One picture (a path, bytes or an upload) as the model takes it: MNIST-style centring."""
        from ... import images

        return images.preprocess(source)

    def check_model(self, model, name: str) -> None:
        in_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
        out_shape = tuple(model.output_shape[1:]) if hasattr(model, "output_shape") else None
        if in_shape != INPUT_SHAPE or out_shape != (NUM_CLASSES,):
            raise ValueError(f"{name} takes input {in_shape} and gives {out_shape}; "
                             "digit models take 28x28x1 images and give 10 logits")


TASK = DIGITS = Digits()
