"""Run configurations: plain dataclasses, validated in one place.

Like scikit-learn's estimators, constructing a config only stores values;
``validate()`` checks every field once, at the kdcore boundary, and raises a
``ValueError`` whose message names the field, the value and what is allowed
(for instance ``temperature must be > 0 (got 0)``). Everything below this
module may assume a validated config.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

LOSS_MODES = ("kl", "soft-ce", "prob-mse", "logit-mse")
TEACHER_VARIANTS = ("cnn", "cnn-large")

MAX_TEMPERATURE = 100.0
MAX_EPOCHS = 1000
MAX_BATCH = 8192


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _number(name: str, value, *, lo=None, hi=None, lo_open=False, integer=False) -> None:
    """Reject non-numbers, NaN, infinities and values outside [lo, hi]."""
    kind = "a whole number" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    _check(ok_type and not isinstance(value, bool), f"{name} must be {kind} (got {value!r})")
    _check(math.isfinite(value), f"{name} must be a finite number (got {value!r})")
    if lo is not None:
        if lo_open:
            _check(value > lo, f"{name} must be > {lo} (got {value!r})")
        else:
            _check(value >= lo, f"{name} must be >= {lo} (got {value!r})")
    if hi is not None:
        _check(value <= hi, f"{name} must be <= {hi} (got {value!r})")


@dataclass
class TrainConfig:
    """What every training run shares: teacher, student and baseline alike."""

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self, n_train: int | None = None) -> "TrainConfig":
        _number("epochs", self.epochs, lo=1, hi=MAX_EPOCHS, integer=True)
        _number("batch_size", self.batch_size, lo=1, hi=MAX_BATCH, integer=True)
        if n_train is not None:
            _check(self.batch_size <= n_train,
                   f"batch_size must be <= the number of training images ({n_train}) (got {self.batch_size})")
        _number("learning_rate", self.learning_rate, lo=0, hi=1.0, lo_open=True)
        _number("seed", self.seed, lo=0, hi=2**31 - 1, integer=True)
        return self


@dataclass
class TeacherConfig(TrainConfig):
    """The teacher network: the seed tutorial's CNN, or a larger variant."""

    variant: str = "cnn"
    dropout: float = 0.0
    augment: bool = False
    epochs: int = 5

    def validate(self, n_train: int | None = None) -> "TeacherConfig":
        super().validate(n_train)
        _check(self.variant in TEACHER_VARIANTS,
               f"variant must be one of {', '.join(TEACHER_VARIANTS)} (got {self.variant!r})")
        _number("dropout", self.dropout, lo=0.0, hi=0.9)
        _check(isinstance(self.augment, bool), f"augment must be true or false (got {self.augment!r})")
        return self


@dataclass
class StudentConfig:
    """Student size: conv filters (0 = plain MLP), hidden units, hidden layers."""

    filters: int = 0
    units: int = 128
    layers: int = 1

    def validate(self) -> "StudentConfig":
        _number("student filters", self.filters, lo=0, hi=256, integer=True)
        _number("student units", self.units, lo=1, hi=4096, integer=True)
        _number("student layers", self.layers, lo=1, hi=8, integer=True)
        return self


@dataclass
class DistillConfig(TrainConfig):
    """A distillation run; the from-scratch baseline uses the same student and seed."""

    student: StudentConfig = field(default_factory=StudentConfig)
    temperature: float = 4.0
    alpha: float = 0.9
    loss: str = "kl"
    labels_fraction: float = 1.0
    hint_epochs: int = 0  # FitNets hint stage before distillation; 0 = off
    baseline: bool = True
    epochs: int = 10

    def validate(self, n_train: int | None = None) -> "DistillConfig":
        super().validate(n_train)
        if isinstance(self.student, dict):
            self.student = StudentConfig(**self.student)
        self.student.validate()
        validate_soft_params(self.temperature, self.alpha, self.loss)
        _number("labels_fraction", self.labels_fraction, lo=0.0, hi=1.0, lo_open=True)
        _number("hint_epochs", self.hint_epochs, lo=0, hi=MAX_EPOCHS, integer=True)
        _check(isinstance(self.baseline, bool), f"baseline must be true or false (got {self.baseline!r})")
        return self


def validate_soft_params(temperature, alpha, mode) -> None:
    """The distillation loss's own parameters (also checked by kdcore.losses)."""
    _number("temperature", temperature, lo=0.0, hi=MAX_TEMPERATURE, lo_open=True)
    _number("alpha", alpha, lo=0.0, hi=1.0)
    _check(mode in LOSS_MODES, f"loss must be one of {', '.join(LOSS_MODES)} (got {mode!r})")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict):
    """Build a config from a dict (JSON, URL, preset), refusing unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    _check(not unknown, f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    data = dict(data)
    if cls is DistillConfig and isinstance(data.get("student"), dict):
        data["student"] = from_dict(StudentConfig, data["student"])
    return cls(**data)
