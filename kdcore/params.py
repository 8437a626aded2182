"""The one table of settings: every knob a run has, declared once.

A :class:`Param` says what a setting is (name, type, range or choices, step,
default, a one-line help) and which tasks use it. Everything else reads this
table instead of repeating it:

- validation (:func:`check`), whose messages name the field and its allowed
  range, e.g. ``temperature must be > 0.0 (got 0); allowed: (0.0, 100.0]``;
- the command line's flags (:func:`add_flags`, :func:`given`);
- the dashboard's widgets (:func:`widget_spec`: a slider, a number box, a
  select box or a checkbox with the table's bounds);
- a shared link's query string (:func:`to_url`, :func:`from_url`).

The settings every task shares (training, distillation) are declared at the
end of this module; a task adds its own with :func:`register` (``kdcore.tasks.digits``
does, and a test registers a toy task the same way). A name may be declared
again for other tasks with other bounds: :func:`get` finds the one that fits
the task at hand.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

ALL = "*"  # a Param used by every task


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int, float, bool or str
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()
    low_open: bool = False  # the low end is excluded (temperature > 0)
    high_open: bool = False  # the high end is excluded (GKD's beta < 1)
    group: str = "train"  # train | teacher | student | distill: where a page shows it
    tasks: tuple = (ALL,)
    widget: str = ""  # "slider" or "number" for numbers (default: slider when the range is short)
    ui_range: tuple | None = None  # a slider's own narrower range, when the valid one is too wide to slide
    role_defaults: dict = field(default_factory=dict)  # e.g. {"teacher": 5}: a default that differs by role
    label: str = ""  # what a form calls it (default: the name in words)

    def for_task(self, task: str) -> bool:
        return ALL in self.tasks or task in self.tasks

    def default_for(self, role: str = "") -> object:
        return self.role_defaults.get(role, self.default)

    @property
    def allowed(self) -> str:
        """The allowed values in words, for messages and help: ``(0.0, 100.0]``, ``one of kl, soft-ce``."""
        if self.kind is bool:
            return "true or false"
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind is str:
            return "text"
        lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{lo}{self.low}, {self.high}{hi}"

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_TABLE: list[Param] = []


def register(*params: Param) -> None:
    """Add settings to the table (a task does this when it is imported). Re-registering replaces."""
    for p in params:
        for old in [q for q in _TABLE if q.name == p.name and set(q.tasks) == set(p.tasks)]:
            _TABLE.remove(old)
        _TABLE.append(p)


def get(name: str, task: str = ALL) -> Param:
    """The declaration of ``name`` that applies to ``task``."""
    for p in reversed(_TABLE):  # a task's own declaration wins over one for every task
        if p.name == name and task in p.tasks:
            return p
    for p in _TABLE:
        if p.name == name and p.for_task(task):
            return p
    raise KeyError(f"unknown setting {name!r} for task {task!r}")


def table(task: str | None = None) -> list[Param]:
    """Every setting (of one task, when given), one entry per name."""
    if task is None:
        return list(_TABLE)
    names = dict.fromkeys(p.name for p in _TABLE if p.for_task(task))
    return [get(n, task) for n in names]


# --- validation ---------------------------------------------------------------------------------
def _fail(p: Param, what: str, value) -> ValueError:
    return ValueError(f"{p.name} must be {what} (got {value!r}); allowed: {p.allowed}")


def check(name: str, value, task: str = ALL):
    """Return ``value`` if it is allowed for setting ``name``, else raise one readable ``ValueError``.

    The message starts with the setting's name and ends with
    its allowed range. Booleans are not numbers, NaN and infinities are
    refused, whole numbers are required where the table says ``int``.
    """
    p = get(name, task)
    if p.kind is bool:
        if not isinstance(value, bool):
            raise _fail(p, "true or false", value)
        return value
    if p.kind is str:
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            raise _fail(p, p.allowed, value)
        return value
    integer = p.kind is int
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise _fail(p, "a whole number" if integer else "a number", value)
    if not math.isfinite(value):
        raise _fail(p, "a finite number", value)
    if p.low is not None and (value <= p.low if p.low_open else value < p.low):
        raise _fail(p, f"{'>' if p.low_open else '>='} {p.low}", value)
    if p.high is not None and (value >= p.high if p.high_open else value > p.high):
        raise _fail(p, f"{'<' if p.high_open else '<='} {p.high}", value)
    if p.choices and value not in p.choices:
        raise _fail(p, p.allowed, value)
    return value


def parse(name: str, text: str, task: str = ALL):
    """A setting from text (a URL or a form), converted to its type and checked."""
    p = get(name, task)
    if p.kind is bool:
        if str(text).lower() not in ("true", "false", "1", "0"):
            raise _fail(p, "true or false", text)
        return check(name, str(text).lower() in ("true", "1"), task)
    if p.kind is str:
        return check(name, str(text), task)
    try:
        value = p.kind(text) if p.kind is float else int(str(text))
    except ValueError:
        raise _fail(p, "a whole number" if p.kind is int else "a number", text) from None
    return check(name, value, task)


# --- the command line ---------------------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, names) -> None:
    """One ``--flag`` per setting; unset flags stay ``None`` so the config's defaults apply.

    Types are converted by :func:`given` rather than argparse, so a bad value
    gets the table's own message (field and allowed range), not argparse's.
    """
    for name in names:
        p = next(q for q in _TABLE if q.name == name)
        text = p.help.replace("%", "%%")  # argparse %-formats help: "10 %" would break --help
        if p.kind is bool:
            parser.add_argument(p.flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            # a task that declares the setting again with other values says so (task lm's own soft losses)
            allowed = p.allowed + "".join(f"; task {', '.join(q.tasks)}: {q.allowed}" for q in _TABLE
                                          if q.name == name and ALL not in q.tasks and q.allowed != p.allowed)
            parser.add_argument(p.flag, dest=name, default=None, metavar=p.kind.__name__.upper(),
                                help=f"{text} ({allowed.replace('%', '%%')})")


def given(args: argparse.Namespace, names, task: str) -> dict:
    """The settings the user gave on the command line, parsed and checked for ``task``.

    A flag that ``task`` does not use is refused by name.
    """
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is None:
            continue
        if not any(p.name == name and p.for_task(task) for p in _TABLE):
            raise ValueError(f"{name.replace('_', '-')} is not a setting of task {task!r}")
        out[name] = value if isinstance(value, bool) else parse(name, value, task)
    return out


# --- the dashboard --------------------------------------------------------------------------------
def widget_spec(name: str, task: str = ALL) -> tuple[str, dict]:
    """(widget kind, keyword arguments) for a Streamlit input of this setting; pages call ``st.<kind>``.

    The keyword arguments hold ``label``, ``help`` and the bounds, all from the table; free text
    (a layer mapping) is a text box.
    """
    p = get(name, task)
    if p.kind is bool:
        return "checkbox", {"label": p.title, "help": p.help}
    if p.choices:
        return "selectbox", {"label": p.title, "options": list(p.choices), "help": p.help}
    if p.kind is str:
        return "text_input", {"label": p.title, "help": p.help}
    lo, hi = p.ui_range or (p.low, p.high)
    if p.low_open and lo == p.low:  # a slider cannot exclude its end: start one step above it
        lo = lo + (p.step or 0.01)
    if p.high_open and hi == p.high:
        hi = hi - (p.step or 0.01)
    kwargs = {"label": p.title, "min_value": p.kind(lo), "max_value": p.kind(hi), "help": f"{p.help} ({p.allowed})"}
    if p.step is not None:
        kwargs["step"] = p.kind(p.step)
    kind = p.widget or "slider"
    if kind == "number" and p.kind is float:
        decimals = max(0, -int(math.floor(math.log10(p.step)))) if p.step else 4
        kwargs["format"] = f"%.{decimals}f"
    return ("slider" if kind == "slider" else "number_input"), kwargs


def to_url(values: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def from_url(query: dict, names, task: str = ALL) -> dict:
    """The settings found in a link's query string, parsed and checked (unknown keys are ignored)."""
    return {n: parse(n, query[n], task) for n in names if n in query}


def clip_to_widget(name: str, value, task: str = ALL):
    """A valid value moved inside its slider's range, or None when it already fits."""
    p = get(name, task)
    if not p.ui_range or p.kind not in (int, float):
        return None
    lo, hi = p.ui_range
    return None if lo <= value <= hi else p.kind(min(max(value, lo), hi))


# --- the settings every task shares (training and distillation) -----------------------------------
LOSS_MODES = ("kl", "soft-ce", "prob-mse", "logit-mse")
SCHEDULES = ("constant", "linear", "cosine")  # how a temperature or weight moves over epochs: kdcore.losses.schedule

register(
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
    Param("temperature_schedule", str, "constant", "how T moves over the epochs, from temperature at the first "
          "to temperature_end at the last", choices=SCHEDULES, label="T schedule", group="distill"),
    Param("temperature_end", float, 1.0, "T at the last epoch when T is scheduled", low=0.0, high=100.0,
          low_open=True, step=0.5, ui_range=(0.5, 20.0), label="T at the last epoch", group="distill"),
    Param("alpha_schedule", str, "constant", "how alpha moves over the epochs, from alpha at the first to "
          "alpha_end at the last", choices=SCHEDULES, label="Alpha schedule", group="distill"),
    Param("alpha_end", float, 0.5, "alpha at the last epoch when alpha is scheduled", low=0.0, high=1.0,
          step=0.05, label="Alpha at the last epoch", group="distill"),
    Param("baseline", bool, True, "also train the same student from scratch (same start, labels only)",
          label="Train baseline too", group="distill"),
    Param("ensemble_average", str, "probs", "with several teachers, what is averaged: their probabilities at T "
          "(probs, Hinton et al. 2015) or their logits", choices=("probs", "logits"),
          label="Ensemble: average", group="distill"),
    Param("ensemble", int, 1, "teachers to train as one ensemble, with seeds seed, seed+1, …; each is saved "
          "with the ensemble's group name (1 = one teacher)", low=1, high=20, widget="number",
          label="Teachers to train (an ensemble when > 1)", group="teacher"),
)
