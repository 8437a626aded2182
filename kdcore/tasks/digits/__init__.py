"""Digits: classifiers of 28×28 grey images (MNIST, Fashion-MNIST, a user's .npz or IDX folder).

The first task of KD Studio, and the one every screen was built on. The
datasets live in :mod:`.data`, the image preprocessing of a drawn or
uploaded digit in :mod:`.pictures`; this package holds the task's
settings (``settings.py``), its networks (``model.py``) and, here, the task
object that ties them together.
"""
from __future__ import annotations

from ..base import HINT, SOFT, Task
from . import data as datasets, pictures
from .presets import PRESETS
from .model import (INPUT_SHAPE, NUM_CLASSES, build, build_student, build_teacher, model_stats, stats, student_layers,
                    student_stats, teacher_layers, teacher_stats)
from .settings import NAME, TEACHER_VARIANTS, StudentConfig, TeacherConfig


class Digits(Task):
    name = NAME
    title = "Digits (28×28 grey images)"
    description = ("A CNN teacher and a small MLP or CNN student on MNIST-style images: MNIST, its 5,000 "
                   "offline digits, Fashion-MNIST, or your own .npz or IDX folder.")
    example = "canvas"
    example_noun = "digit"
    soft_targets_story = ("The teacher's softened probabilities (a 7 that looks a little like a 1) carry what it "
                          "learnt about how digits resemble each other.")
    presets = PRESETS
    quick_datasets = ("mnist-5k",)
    bench_help = ("KD Studio's distillation against keras Distiller and a GradientTape loop (data: fashion-mnist "
                  "when its files are here, else mnist-5k; --quick: 2,000 mnist-5k images)")
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

    def check_model(self, model, name: str) -> None:
        in_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
        out_shape = tuple(model.output_shape[1:]) if hasattr(model, "output_shape") else None
        if in_shape != INPUT_SHAPE or out_shape != (NUM_CLASSES,):
            raise ValueError(f"{name} takes input {in_shape} and gives {out_shape}; "
                             "digit models take 28x28x1 images and give 10 logits")

    def hint_layers(self, cfg) -> tuple[str, str]:
        """A conv student's ``hint`` layer learns the teacher's first pooled map; an MLP's, its ``hint`` dense layer."""
        return ("pool1" if cfg.student.filters else "hint"), "hint"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        extras = [f"dropout {cfg.dropout:g}"] * bool(cfg.dropout) + ["shifts"] * bool(cfg.augment)
        return ", ".join([cfg.variant, f"{cfg.epochs} epochs", *extras])

    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, quick: bool = False) -> dict:
        from . import bench  # the benchmark's timing machinery is loaded only when one runs
        return bench.run(dataset, epochs, repeats, quick)

    def bench_text(self, result: dict) -> str:
        from . import bench
        return bench.text(result)

    def check_image(self, source) -> None:
        pictures.load_image(source)

    def prepare_image(self, source, shape):
        """MNIST-style centring: a model trained on MNIST only works on pictures that look like MNIST."""
        return pictures.preprocess(source)


TASK = DIGITS = Digits()
