"""Presets are data, not code paths: a run is "defaults + preset + what the user changed".

Each preset names a dataset, a teacher recipe and a distillation recipe, in
the fields of :class:`~kdcore.config.TeacherConfig` and
:class:`~kdcore.config.DistillConfig`. ``omit_class`` (optional) removes one
digit from the distillation transfer set (Hinton et al. 2015, section 3).
"""
from __future__ import annotations

from .config import DistillConfig, TeacherConfig, from_dict

PRESETS: dict[str, dict] = {
    "quick": {
        "description": "About a minute on 2 CPU cores: a short teacher, a small MLP student, and its baseline.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 3},
        "distill": {"student": {"filters": 0, "units": 64, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 15},
    },
    "default": {
        "description": "What the dashboard starts with: an augmented, regularised CNN teacher and a 128-unit MLP student.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 15, "dropout": 0.3, "augment": True},
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 40, "learning_rate": 0.003},
    },
    "hinton-mlp": {
        "description": "Hinton-style: a tiny MLP student taught at a high temperature.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 15, "dropout": 0.3, "augment": True},
        "distill": {"student": {"filters": 0, "units": 32, "layers": 1}, "temperature": 8.0, "alpha": 0.9,
                    "epochs": 40},
    },
    "few-labels": {
        "description": "The student sees labels for only 500 of the 4,000 training digits; the teacher labels the rest softly.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 15, "dropout": 0.3, "augment": True},
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 40, "labels_fraction": 0.125},
    },
    "omit-3": {
        "description": "The student never sees a 3 during distillation, yet learns it from the teacher's soft targets.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 15, "dropout": 0.3, "augment": True},
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 20.0, "alpha": 1.0,
                    "epochs": 40},
        "omit_class": 3,
    },
    "fmnist-mlp": {
        "description": "Fashion-MNIST (full 60k) with a 128-unit MLP student.",
        "dataset": "fashion-mnist",
        "teacher": {"epochs": 10, "dropout": 0.3},
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 2.0, "alpha": 0.5,
                    "epochs": 20},
    },
}


def names() -> list[str]:
    return list(PRESETS)


def get(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def configs(name: str, **overrides) -> tuple[TeacherConfig, DistillConfig]:
    """(teacher config, distill config) for a preset; ``overrides`` replace distill fields."""
    preset = get(name)
    teacher = from_dict(TeacherConfig, preset["teacher"])
    distill = from_dict(DistillConfig, {**preset["distill"], **overrides})
    return teacher, distill
