"""A toy task, written as a fifth task would be: one package, nothing edited outside it.

Three classes of random 8-dimensional vectors (``blobs``), a one-hidden-layer
MLP teacher and a smaller MLP student. Everything central code asks of a
task is here: its settings (rows of the settings table), its data, its
models and their sizes, its presets (``presets.py``) and the student setting
its sweeps range over. Registered by one line in a test
(``tasks.register(toytask.TASK)``), it runs the Teacher and Distill pages,
the CLI, an experiment, a sweep, a two-worker study and an export
(``tests/test_tasks.py``; ``docs/adding-a-task.md`` walks through it).
It has no example screens (``example = "none"``), so it fills in no example
Protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdcore import params
from kdcore.config import TrainConfig, Validated, default
from kdcore.dataset import Dataset
from kdcore.params import Param
from kdcore.tasks import Task

from .presets import PRESETS

NAME = "toy"
FEATURES, CLASSES = 8, 3

params.register(
    Param("toy_hidden", int, 32, "hidden units of the toy teacher", low=4, high=256, step=4, group="teacher",
          tasks=(NAME,)),
    Param("toy_student_hidden", int, 8, "hidden units of the toy student", low=2, high=64, group="student",
          tasks=(NAME,)),
)


@dataclass
class ToyTeacher(TrainConfig):
    TASK = NAME
    toy_hidden: int = default("toy_hidden", task=NAME)


@dataclass
class ToyStudent(Validated):
    TASK = NAME
    PREFIX = "toy_student_"
    hidden: int = default("toy_student_hidden", task=NAME)


def mlp(hidden: int, seed: int, name: str):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x), name=name)


def size(hidden: int) -> dict:
    n = FEATURES * hidden + hidden + hidden * CLASSES + CLASSES
    return {"params": n, "macs": FEATURES * hidden + hidden * CLASSES, "weight_bytes": 4 * n}


def blobs() -> Dataset:
    """900 vectors around three fixed centres: 600 to train on, 300 to test."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3.0, (CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, 900)
    x = (centres[y] + rng.normal(0, 1.0, (900, FEATURES))).astype("float32")
    return Dataset("blobs", x[:600], y[:600], x[600:], y[600:], "generated blobs", ("a", "b", "c"))


class Toy(Task):
    name = NAME
    title = "Toy vectors"
    teacher_config = ToyTeacher
    student_config = ToyStudent
    presets = PRESETS
    width_setting = "toy_student_hidden"

    def datasets(self):
        return [{"name": "blobs", "available": True, "source": "generated", "train": 540, "valid": 60, "test": 300}]

    def default_dataset(self):
        return "blobs", "the only one"

    def load(self, name=None):
        if name not in (None, "blobs"):
            raise ValueError(f"unknown dataset {name!r}: use blobs")
        return blobs()

    def build_teacher(self, cfg):
        return mlp(cfg.toy_hidden, cfg.seed, "teacher")

    def build_student(self, cfg, seed=0):
        return mlp(cfg.hidden, seed, "student")

    def teacher_size(self, cfg, data=None):
        return size(cfg.toy_hidden)

    def student_size(self, cfg, data=None):
        return size(cfg.hidden)

    def describe_teacher(self, cfg):
        return f"{cfg.toy_hidden}-unit MLP, {cfg.epochs} epochs"

    def describe_student(self, cfg):
        return f"{cfg.hidden}-unit MLP"

    def check_model(self, model, name):
        if tuple(model.input_shape[1:]) != (FEATURES,) or tuple(model.output_shape[1:]) != (CLASSES,):
            raise ValueError(f"{name} is not a toy model")


TASK = Toy()
