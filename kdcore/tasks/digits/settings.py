"""The digits task's settings: one row per setting (``params``), and the teacher's and student's configs."""
from __future__ import annotations

from dataclasses import dataclass

from ... import params
from ...config import TrainConfig, Validated, default
from ...params import Param

NAME = "digits"
TEACHER_VARIANTS = ("cnn", "cnn-large")

params.register(
    Param("variant", str, "cnn", "the teacher network: the seed tutorial's CNN, or one twice as wide",
          choices=TEACHER_VARIANTS, label="Teacher network", group="teacher", tasks=(NAME,)),
    Param("dropout", float, 0.0, "dropout before and after the teacher's dense layer", low=0.0, high=0.9,
          step=0.05, group="teacher", tasks=(NAME,)),
    Param("augment", bool, False, "random shifts of up to 10 % of each training digit", label="Augmentation (random shifts)", group="teacher",
          tasks=(NAME,)),
    Param("student_filters", int, 0, "conv filters of the student (0 = a plain MLP)", low=0, high=256,
          ui_range=(0, 64), label="Conv filters (0 = MLP)", group="student", tasks=(NAME,)),
    Param("student_units", int, 128, "hidden units per dense layer of the student", low=1, high=4096, step=8,
          ui_range=(8, 1024), label="Hidden units", group="student", tasks=(NAME,)),
    Param("student_layers", int, 1, "hidden dense layers of the student", low=1, high=8, ui_range=(1, 4),
          label="Hidden layers", group="student", tasks=(NAME,)),
)


@dataclass
class TeacherConfig(TrainConfig):
    """The teacher network: the seed tutorial's CNN, or a larger variant."""

    TASK = NAME

    variant: str = default("variant", task=NAME)
    dropout: float = default("dropout", task=NAME)
    augment: bool = default("augment", task=NAME)
    epochs: int = default("epochs", role="teacher")


@dataclass
class StudentConfig(Validated):
    """Student size: conv filters (0 = plain MLP), hidden units, hidden layers."""

    TASK = NAME
    PREFIX = "student_"

    filters: int = default("student_filters", task=NAME)
    units: int = default("student_units", task=NAME)
    layers: int = default("student_layers", task=NAME)
