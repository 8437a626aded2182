"""Presets are data, not code paths: a run is "defaults + preset + what the user changed".

Each task declares its own presets (:attr:`Task.presets <kdcore.tasks.base.Task.presets>`,
plain data in its package's ``presets.py``, beside why each value was
chosen); this module only collects them from the registry, so a new task's
presets arrive with the task. Each preset names a dataset, a teacher recipe
and a distillation recipe, in the fields of the task's teacher config and of
its distillation config, and may mark itself the task's Home demo
(``"demo": True``) or one of the experiments ``reproduce`` measures beside
the demo (``"headline": True``). A preset's ``"teacher_dataset"``, when
given, is a larger dataset of the same classes that the teacher alone reads:
the students keep ``"dataset"`` as their transfer set, as in Hinton et al.
(2015, §3), where that is what makes distillation pay. Collected, each
carries its task's name as ``"task"``.
"""
from __future__ import annotations

from . import tasks
from .config import DistillConfig, from_dict

PRESETS: dict[str, dict] = {}  # name -> preset with its "task": every registered task's, collected by _collect


def _collect() -> dict[str, dict]:
    """Add the presets of tasks registered since the last call (a preset name belongs to one task only)."""
    for task in tasks.names():
        for name, spec in tasks.get(task).presets.items():
            owner = PRESETS.setdefault(name, {**spec, "task": task}).get("task", tasks.DEFAULT)
            if owner != task:
                raise ValueError(f"preset {name!r} is declared by tasks {owner!r} and {task!r}; rename one")
    return PRESETS


def get(name: str) -> dict:
    if name not in _collect():
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def names(task: str | tasks.Task | None = None) -> list[str]:
    """Preset names, of one task (a name or the object) when given."""
    wanted = None if task is None else tasks.get(task).name
    return [n for n, p in _collect().items() if wanted is None or p.get("task", tasks.DEFAULT) == wanted]


def demo(task: str | tasks.Task = tasks.DEFAULT) -> str | None:
    """The preset the Home page's quick demo runs for ``task``: the one it marks ``"demo": True``."""
    return next((n for n in names(task) if PRESETS[n].get("demo")), None)


def configs(name: str, **overrides) -> tuple[object, DistillConfig]:
    """(teacher config, distill config) for a preset; ``overrides`` replace distill fields."""
    preset = get(name)
    task = tasks.get(preset.get("task"))
    teacher = from_dict(task.teacher_config, preset["teacher"])
    distill = from_dict(task.distill_class(), {**preset["distill"], **overrides}, task)
    return teacher, distill


_collect()
