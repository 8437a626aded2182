"""Run configurations: plain dataclasses whose fields, defaults and bounds come from the settings table.

Like scikit-learn's estimators, constructing a config only stores values;
``validate()`` checks every field once, at the kdcore boundary, against its
declaration in :mod:`kdcore.params`, and raises a ``ValueError`` whose
message names the field, the value and what is allowed (for instance
``temperature must be > 0.0 (got 0); allowed: (0.0, 100.0]``). Everything
below this module may assume a validated config.

The settings every task shares (training and distillation) are declared
here; a task declares its own teacher and student settings next to its
models (``kdcore.tasks.digits`` for the digit classifiers).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import params
from .params import Param

LOSS_MODES = ("kl", "soft-ce", "prob-mse", "logit-mse")

params.register(
    Param("epochs", int, 10, "passes over the training set", low=1, high=1000, widget="number",
          role_defaults={"teacher": 5}),
    Param("batch_size", int, 64, "examples per training step", low=1, high=8192, widget="number"),
    Param("learning_rate", float, 1e-3, "Adam's step size", low=0.0, high=1.0, low_open=True, step=1e-4,
          widget="number"),
    Param("seed", int, 0, "fixes initial weights and batch order; the baseline shares it", low=0, high=2**31 - 1,
          widget="number"),
    Param("temperature", float, 4.0, "softens the teacher's probabilities: softmax(logits / T)", low=0.0,
          high=100.0, low_open=True, step=0.5, ui_range=(0.5, 20.0), label="Temperature T", group="distill"),
    Param("alpha", float, 0.9, "weight of the soft (teacher) term; 1 − alpha weighs the labels", low=0.0,
          high=1.0, step=0.05, label="Alpha (weight of the soft targets)", group="distill"),
    Param("loss", str, "kl", "how the student's softened outputs are compared with the teacher's",
          choices=LOSS_MODES, label="Soft loss", group="distill"),
    Param("labels_fraction", float, 1.0, "share of training labels the student may see; the teacher "
          "teaches the rest by its soft targets alone", low=0.0, high=1.0, low_open=True, step=0.025,
          label="Share of training labels the student sees", group="distill"),
    Param("hint_epochs", int, 0, "FitNets hint-training epochs before distilling (0 = off)", low=0, high=1000,
          widget="number", label="FitNets hint epochs (0 = off)", group="distill"),
    Param("baseline", bool, True, "also train the same student from scratch (same start, labels only)",
          label="Train baseline too", group="distill"),
)


def default(name: str, role: str = "", task: str = "digits"):
    """A dataclass field whose default is the table's (for ``role``, when it differs)."""
    return field(default=params.get(name, task).default_for(role))


class Validated:
    """``validate()`` for a config dataclass: each field is checked against its row of the table.

    ``PREFIX`` maps a field to its setting's name (a student's ``units`` is
    the setting ``student_units``, as its command-line flag ``--student-units``).
    """

    PREFIX = ""
    TASK = "digits"

    def check_fields(self) -> None:
        for f in dataclasses.fields(self):
            name = self.PREFIX + f.name
            try:
                params.get(name, self.TASK)
            except KeyError:
                continue  # not a setting (a nested config, say)
            params.check(name, getattr(self, f.name), self.TASK)

    def validate(self, n_train: int | None = None):
        self.check_fields()
        return self


@dataclass
class TrainConfig(Validated):
    """What every training run shares: teacher, student and baseline alike."""

    epochs: int = default("epochs")
    batch_size: int = default("batch_size")
    learning_rate: float = default("learning_rate")
    seed: int = default("seed")

    def validate(self, n_train: int | None = None):
        self.check_fields()
        if n_train is not None and self.batch_size > n_train:
            raise ValueError(f"batch_size must be <= the number of training examples ({n_train}) "
                             f"(got {self.batch_size})")
        return self


def _digits_student():
    from .tasks.digits import StudentConfig  # the default task's student; lazily, tasks import this module

    return StudentConfig()


@dataclass
class DistillConfig(TrainConfig):
    """A distillation run; the from-scratch baseline uses the same student and seed.

    ``student`` is the task's own student config (for digits,
    :class:`kdcore.tasks.digits.StudentConfig`).
    """

    student: object = field(default_factory=_digits_student)
    temperature: float = default("temperature")
    alpha: float = default("alpha")
    loss: str = default("loss")
    labels_fraction: float = default("labels_fraction")
    hint_epochs: int = default("hint_epochs")
    baseline: bool = default("baseline")

    def validate(self, n_train: int | None = None) -> "DistillConfig":
        super().validate(n_train)
        if isinstance(self.student, dict):
            self.student = _student_class(self.TASK)(**self.student)
        self.student.validate()
        return self


def validate_soft_params(temperature, alpha, mode) -> None:
    """The distillation loss's own parameters (also checked by kdcore.losses)."""
    params.check("temperature", temperature)
    params.check("alpha", alpha)
    params.check("loss", mode)


def _student_class(task: str):
    from . import tasks

    return tasks.get(task).student_config


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, task: str = "digits"):
    """Build a config from a dict (JSON, URL, preset), refusing unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    data = dict(data)
    if issubclass(cls, DistillConfig) and isinstance(data.get("student"), dict):
        data["student"] = from_dict(_student_class(task), data["student"], task)
    return cls(**data)
