"""Run configurations: plain dataclasses whose fields, defaults and bounds come from the settings table.

Like scikit-learn's estimators, constructing a config only stores values;
``validate()`` checks every field once, at the kdcore boundary, against its
declaration in :mod:`kdcore.params`, and raises a ``ValueError`` whose
message names the field, the value and what is allowed (for instance
``temperature must be > 0.0 (got 0); allowed: (0.0, 100.0]``). Everything
below this module may assume a validated config.

The settings every task shares (training and distillation) are declared in
:mod:`kdcore.params`; a task declares its own teacher and student settings
next to its models (``kdcore.tasks.digits`` for the digit classifiers).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import params


def default(name: str, role: str = "", task: str = params.ALL):
    """A dataclass field whose default is the table's (for ``role``, when it differs; for ``task``, when its own)."""
    return field(default=params.get(name, task).default_for(role))


class Validated:
    """``validate()`` for a config dataclass: each field is checked against its row of the table.

    ``PREFIX`` maps a field to its setting's name (a student's ``units`` is
    the setting ``student_units``, as its command-line flag ``--student-units``).
    ``TASK`` names the task whose rows apply: a task's own configs say which;
    the shared ones hold only settings every task has (``params.ALL``).
    """

    PREFIX = ""
    TASK = params.ALL

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


@dataclass
class DistillConfig(TrainConfig):
    """A distillation run; the from-scratch baseline uses the same student and seed.

    ``student`` is the task's own student config (``Task.default_distill()``
    fills it in); there is no default, since this class serves every task and
    a student of the wrong task would train the wrong network. The run
    belongs to its student's task.
    """

    student: object = None
    temperature: float = default("temperature")
    alpha: float = default("alpha")
    loss: str = default("loss")
    labels_fraction: float = default("labels_fraction")
    hint_epochs: int = default("hint_epochs")
    temperature_schedule: str = default("temperature_schedule")
    temperature_end: float = default("temperature_end")
    alpha_schedule: str = default("alpha_schedule")
    alpha_end: float = default("alpha_end")
    baseline: bool = default("baseline")
    recipe: dict | None = None  # a recipe as data (kdcore.recipes); None: the one the settings above describe

    @property
    def TASK(self) -> str:  # noqa: N802 - the name every Validated config answers to
        return getattr(self.student, "TASK", params.ALL)

    def validate(self, n_train: int | None = None) -> "DistillConfig":
        super().validate(n_train)
        if self.recipe is not None:
            from .recipes import from_dict as recipe_from_dict

            if not isinstance(self.recipe, dict):
                raise ValueError(f"recipe must be a recipe's settings (a mapping with its stages), "
                                 f"as kdcore.recipes reads them (got {repr(self.recipe):.60})")
            recipe_from_dict(self.recipe)  # its own one-line errors name the stage and term
        if not isinstance(self.student, Validated):
            raise ValueError(f"student must be a task's student config, as Task.default_distill() gives "
                             f"(got {type(self.student).__name__})")
        self.student.validate()
        return self


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, task=None):
    """Build a config from a dict (JSON, URL, preset), refusing unknown keys by name.

    ``task`` is the :class:`~kdcore.tasks.Task` a distillation run's nested
    ``student`` dict belongs to: its ``student_config`` builds the student.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    data = dict(data)
    if issubclass(cls, DistillConfig) and isinstance(data.get("student"), dict):
        if task is None:
            raise ValueError("a student given as settings needs its task to build it")
        data["student"] = from_dict(task.student_config, data["student"])
    return cls(**data)
