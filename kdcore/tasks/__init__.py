"""Tasks: what KD Studio distils, one package per kind of model.

Each built-in task lives in its own package here (``digits/``, ``images/``,
``lm/``, ``text/``) and fills in :class:`~kdcore.tasks.base.Task`. Central
code (pipeline, experiments, studies, export, the CLI and the pages) asks
the task object, never its name. The built-in tasks are listed once, in
``BUILTIN``; a test or a plug-in adds another with :func:`register`.
"""
from __future__ import annotations

import importlib

from .base import HINT, SOFT, Metric, Task, Term

BUILTIN = ("digits", "images", "lm", "text")  # packages under kdcore/tasks/, each exposing TASK
DEFAULT = "digits"  # the task a fresh dashboard and a bare CLI command start on

_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Make ``task`` known to the pages and the CLI (a test registers a toy task this way)."""
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _builtin() -> None:
    """Register the built-in tasks on first use (importing a task is cheap: TensorFlow loads later)."""
    for name in BUILTIN:
        if name not in _REGISTRY:
            register(importlib.import_module(f".{name}", __name__).TASK)


def names() -> list[str]:
    _builtin()
    return list(_REGISTRY)


def get(name: str | Task | None = None) -> Task:
    """The task called ``name`` (default :data:`DEFAULT`); an unknown name is refused with the known ones.

    A :class:`Task` is returned as it is, so a caller holding the object hands it on and every function
    that takes a task takes either.
    """
    if isinstance(name, Task):
        return name
    _builtin()
    name = name or DEFAULT
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


__all__ = ["BUILTIN", "DEFAULT", "HINT", "SOFT", "Metric", "Task", "Term", "get", "names", "register", "unregister"]
