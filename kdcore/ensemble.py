"""Ensembles of teachers: several saved teachers whose soft targets are averaged, then distilled as one.

Hinton et al. 2015 (§4) distil an ensemble of ten speech models into one: the
student learns the average of its members' answers, which is usually better
than any member's (docs/methods.md measures a case where it is not). A run
names its teachers (``distill --teacher A --teacher B --teacher C``, or a
list where one path went), and ``ensemble_average`` says what is averaged:

- ``probs``: the members' probabilities at the run's temperature T, the
  arithmetic mean of softmax(z_i / T);
- ``logits``: the members' logits, whose softmax at T is the geometric mean
  of their probabilities, renormalised (it favours the classes all agree on).

Hinton et al. (§1) name both: "an arithmetic or geometric mean of their
individual predictive distributions".

Either way the average is handed to the existing training code as *one*
teacher's logits (:func:`average`), so the loss, the cache of soft targets
and every task's ``distill_student`` stay as they are. Each member's
training logits come from the task's ``teacher_targets`` (cached per
teacher and dataset, :func:`kdcore.training.teacher_logits`), and the
average is made once per run.

An ensemble cannot do what pairs the layers of one teacher: FitNets' hint,
or a task's other layer terms (every term of ``Task.terms`` but the soft
targets), and a task whose soft targets are not held whole (``teacher_targets``
is None: a language model's) has nothing to average. Those, and members of
other tasks, classes or input shapes, are refused in one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import params, recipes, storage, tasks

AVERAGES = params.get("ensemble_average").choices  # ("probs", "logits")


def average(logits: list, temperature: float, how: str = "probs") -> np.ndarray:
    """The members' logits (each examples × classes) made into one teacher's logits, z̄.

    ``logits``: z̄ = mean_i z_i, so softmax(z̄ / T) ∝ (Π_i softmax(z_i / T))^(1/n).

    ``probs``: the goal is softmax(z̄ / T) = p̄, the mean of p_i = softmax(z_i / T).
    Take z̄ = T · log p̄. Then

        softmax(z̄ / T)_k = exp(log p̄_k) / Σ_j exp(log p̄_j) = p̄_k / Σ_j p̄_j = p̄_k,

    since p̄ sums to 1. So a run at the same T that softens z̄ (``losses.soft_targets``)
    reads exactly the averaged probabilities, and the KL term's Σ p̄ log p̄ too.
    log p̄ is computed as logsumexp_i(log p_i) − log n, with log p_i =
    z_i / T − logsumexp(z_i / T): no probability is formed, so a class a member
    gives 1e-40 keeps its finite logit. Such z̄ are logits only up to a per-example
    constant, so they suit every loss but ``logit-mse``, which would match that
    constant too (refused by :func:`check`).
    """
    from scipy.special import logsumexp

    params.check("ensemble_average", how)
    z = np.stack([np.asarray(one, dtype="float64") for one in logits])
    if how == "logits":
        return z.mean(axis=0).astype("float32")
    scaled = z / float(temperature)
    log_p = scaled - logsumexp(scaled, axis=-1, keepdims=True)
    return (temperature * (logsumexp(log_p, axis=0) - math.log(len(z)))).astype("float32")


def paths(teacher) -> list[str]:
    """One teacher path, or several (a list), as a list of distinct paths; an empty or repeated one is refused."""
    found = [str(teacher)] if isinstance(teacher, (str, Path)) else [str(p) for p in teacher]
    if not found:
        raise ValueError("teacher must name at least one saved teacher (got none)")
    twice = sorted({p for p in found if found.count(p) > 1})
    if twice:
        raise ValueError(f"teacher {twice[0]} is named twice; an ensemble's members are distinct teachers")
    return found


def named(found: list[str]):
    """How a record names the teacher: its path, or the list of an ensemble's paths."""
    return found if len(found) > 1 else found[0]


def run_settings(found: list[str], average: str) -> dict:
    """What a distillation's run record adds to its config for an ensemble: how its teachers are averaged."""
    return {"ensemble_average": average} if len(found) > 1 else {}


def check(cfg, task: tasks.Task, teacher, how: str) -> list[str]:
    """The teacher paths, after every refusal that needs no model loaded (so a page can say it at once).

    A missing file, a member saved for another task, ``ensemble_average`` out of
    its choices, a layer term that pairs one teacher's layers, and ``probs``
    with ``logit-mse``. One teacher passes with its file checked only.
    """
    found = paths(teacher)
    for path in found:
        if not Path(path).is_file():
            raise storage.StorageError(f"no model file at {path}; train or pick a teacher first")
    if len(found) == 1:
        return found
    params.check("ensemble_average", how)  # before any model loads, though average() checks it too
    for path in found:
        other = storage.read_sidecar(path).get("task", task.name)
        if other != task.name:
            raise ValueError(f"teacher {Path(path).name} is a {other} model, not a {task.name} one; an ensemble's "
                             "members are teachers of the run's task")
    for term in task.terms:
        if term != tasks.SOFT and getattr(cfg, term.setting, 0):
            raise ValueError(f"{term.setting} must be 0 with an ensemble of teachers (got "
                             f"{getattr(cfg, term.setting)}): the {term.name} pairs layers of one teacher; "
                             "an ensemble teaches through its averaged soft targets alone")
    recipe = recipes.from_dict(cfg.recipe) if getattr(cfg, "recipe", None) else None
    layered = [t.label for s in recipe.stages for t in s.terms if t.kind == "feature"] if recipe else []
    if layered:
        raise ValueError(f"the recipe's layer terms ({', '.join(layered)}) pair layers of one teacher; an ensemble "
                         "teaches through its averaged soft targets alone (logits and labels terms)")
    if how == "probs" and cfg.loss == "logit-mse":
        raise ValueError("loss logit-mse needs ensemble_average logits (got probs): averaged probabilities "
                         "become logits only up to a constant per example, which logit-mse would match too")
    return found


@dataclass
class Teachers:
    """The teacher(s) of one run, loaded: one model, or an ensemble's members and how they are averaged."""

    paths: list[str]
    models: list
    how: str = "probs"
    member_scores: list = field(default_factory=list)

    @classmethod
    def load(cls, teacher, task: tasks.Task, cfg, how: str = "probs") -> "Teachers":
        """Load and check the teacher(s) named by ``teacher`` (a path or a list), refusing what cannot be averaged."""
        found = check(cfg, task, teacher, how)
        models = [storage.load_model(p, task) for p in found]
        shapes = {(Path(p).name, tuple(m.input_shape[1:]), m.output_shape[-1]) for p, m in zip(found, models)}
        if len({s[1:] for s in shapes}) > 1:
            seen = "; ".join(f"{name}: input {shape}, {classes} classes" for name, shape, classes in sorted(shapes))
            raise ValueError(f"the ensemble's teachers differ in input shape or classes ({seen}); its members "
                             "must answer the same question")
        return cls(found, models, how)

    @property
    def first(self):
        return self.models[0]

    @property
    def is_ensemble(self) -> bool:
        return len(self.models) > 1

    @property
    def named(self):
        return named(self.paths)

    @property
    def names(self) -> list[str]:
        return [storage.read_sidecar(p).get("name", Path(p).stem) for p in self.paths]

    @property
    def name(self) -> str:
        """How a sidecar names the teacher in words: its name, or its members' joined by " + "."""
        return " + ".join(self.names)

    @property
    def params(self) -> int:
        """Parameters of every member together: what the student is compressed from."""
        return sum(int(m.count_params()) for m in self.models)

    def targets(self, task: tasks.Task, data, temperature: float):
        """The ensemble's averaged training logits (:func:`average`); None for one teacher (the task makes its own)."""
        if not self.is_ensemble:
            return None
        each = [task.teacher_targets(m, data) for m in self.models]
        if any(t is None for t in each):
            raise ValueError(f"task {task.name} makes its soft targets during training rather than once per "
                             "teacher, so it cannot average an ensemble's; distil from one teacher")
        return average(each, temperature, self.how)

    def score(self, task: tasks.Task, data, temperature: float) -> float:
        """The teacher's test score; an ensemble's is its average's argmax, each member's kept in ``member_scores``.

        The average is the training one, so with ``probs`` it is taken at the run's T (the argmax may move with T).
        """
        if not self.is_ensemble:
            return task.score(self.first, data)
        from .inference import accuracy, test_logits

        each = [test_logits(m, data) for m in self.models]
        self.member_scores = [accuracy(z, data.y_test) for z in each]
        return accuracy(average(each, temperature, self.how), data.y_test)

    def record(self, metric: str) -> dict:
        """What a run record and a student's sidecar add for an ensemble: how it averaged and each member's score."""
        if not self.is_ensemble:
            return {}
        scores = self.member_scores or [None] * len(self.paths)
        return {"ensemble": {"average": self.how, "members": [
            {"path": p, "name": n, f"test_{metric}": s} for p, n, s in zip(self.paths, self.names, scores)]}}


def groups(saved: list[dict]) -> dict[str, list[str]]:
    """Saved teachers (sidecars, newest first) by the ensemble group they were trained in, oldest member first."""
    out: dict[str, list[str]] = {}
    for meta in reversed(saved):
        if meta.get("group"):
            out.setdefault(meta["group"], []).append(meta["path"])
    return out
