"""What runs return: a status, typed results, and one verdict on whether the teacher helped.

Results travel as dataclasses inside kdcore and the pages; they become plain
JSON (``to_json``) only at the edges: the CLI's ``--json`` output and the run
store. The JSON field names are the CLI's contract (``student_accuracy``,
``baseline_accuracy``, ``gap_recovered``…); for a task scored by another
metric the names follow it (``student_perplexity``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from .metric import ACCURACY, Metric

if TYPE_CHECKING:  # the statistics load SciPy (most of a second), so only a verdict that needs them does
    from .stats import Interval


class Status(str, Enum):
    """How a run stands. A ``str`` enum, so ``status == "finished"`` and JSON both work."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        return self in (Status.QUEUED, Status.RUNNING)


ACTIVE = (Status.QUEUED, Status.RUNNING)
ENDED = (Status.FINISHED, Status.STOPPED, Status.FAILED, Status.INTERRUPTED)


# --- the verdict ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """``outcome`` is ``helped``, ``tie``, ``hurt`` or ``unknown``; ``why`` says it in a sentence.

    ``gain`` and ``ci95`` (low, high) are in the JSON's sign convention,
    student − baseline score, so for perplexity an interval *below* zero is
    the good one; ``method`` is how the interval was made (:mod:`kdcore.stats`'s words).
    """

    outcome: str
    gain: float | None
    why: str
    ci95: tuple[float, float] | None = None
    method: str = ""
    p_value: float | None = None

    def to_json(self) -> dict:
        """The record's verdict fields: ``verdict``, ``verdict_reason`` and, with an interval, the rest."""
        out = {"verdict": self.outcome, "verdict_reason": self.why}
        if self.ci95 is not None:
            out.update(gain_ci95=list(self.ci95), verdict_method=self.method)
        if self.p_value is not None:
            out["p_value"] = self.p_value
        return out

    @classmethod
    def of_record(cls, record: dict) -> "Verdict | None":
        """The verdict a stored result holds (None without one); its ``gain`` is an experiment's mean."""
        if not record.get("verdict"):
            return None
        gain = record.get("gain")
        ci = record.get("gain_ci95")
        return cls(record["verdict"], gain.get("mean") if isinstance(gain, dict) else gain,
                   record.get("verdict_reason", ""), tuple(ci) if ci else None, record.get("verdict_method", ""),
                   record.get("p_value"))

    def gain_text(self, metric: Metric = ACCURACY) -> str:
        """The gain with its interval: "+2.0 points (95 % CI +1.2 to +2.8 points, 95 % t-interval over 3 seeds)"."""
        if self.ci95 is None:
            return metric.format_change(self.gain)
        p = "" if self.p_value is None else f", p = {self.p_value:.2g}"
        return (f"{metric.format_change(self.gain)} "
                f"(95 % CI {metric.format_interval(*self.ci95)}, {self.method}{p})")

    def headline(self, metric: Metric = ACCURACY) -> str:
        """What a table cell says: "helped: " and :meth:`gain_text` ("no verdict" without one)."""
        if self.outcome == "unknown":
            return "no verdict"
        return f"{self.outcome}: {self.gain_text(metric)}" if self.ci95 is not None else self.outcome


def verdict(gains: list[float], metric: Metric = ACCURACY, *, paired: Interval | None = None) -> Verdict:
    """Did distillation help? The one rule every screen and the CLI use: :mod:`kdcore.stats`'s paired interval.

    ``gains`` are the runs' ``gain`` values, distilled minus from-scratch
    score, one per seed (for perplexity a negative one is good: ``metric``
    says which way is better). Two or more seeds give Student's t-interval
    over them (:func:`kdcore.stats.seeds`); one seed needs ``paired``, the
    task's test of both models' answers on the same test examples
    (:meth:`kdcore.tasks.base.Task.paired_gain`), and without it there is no
    verdict. The interval is turned back into ``gain``'s sign, so for
    perplexity *helped* means an interval below zero.
    """
    gains = [g for g in gains if g is not None]
    if not gains:
        return Verdict("unknown", None, "No from-scratch baseline was trained, so there is nothing to "
                                        "compare the distilled student with.")
    mean = sum(gains) / len(gains)
    if len(gains) >= 2:
        from . import stats

        paired = stats.seeds([g * metric.sign for g in gains])
    elif paired is None:
        return Verdict("unknown", mean, "With one run and no paired test of both models' answers the gain "
                                        "cannot be told from noise.")
    low, high = sorted((paired.low * metric.sign, paired.high * metric.sign))
    ci = metric.format_interval(low, high)
    p = "" if paired.p_value is None else f", p = {paired.p_value:.2g}"
    good, bad = ("above", "below") if metric.higher_is_better else ("below", "above")
    words = {"helped": f"Distillation helped: the gain's 95 % interval, {ci}, lies {good} zero",
             "hurt": f"Distillation hurt: the gain's 95 % interval, {ci}, lies {bad} zero",
             "tie": f"A tie: the gain's 95 % interval, {ci}, holds zero"}[paired.outcome]
    return Verdict(paired.outcome, mean, f"{words} ({paired.method}{p}, in {metric.name}).", (low, high),
                   paired.method, paired.p_value)


# --- results of runs --------------------------------------------------------------------------------
@dataclass
class TeacherResult:
    """A trained teacher: where it was saved, its test and valid scores and its curves."""

    model: str
    dataset: str
    params: int
    status: Status
    reason: str
    score: float | None
    seconds: float
    device: str
    history: list = field(default_factory=list)
    metric: Metric = ACCURACY
    task: str = ""  # the task's name: the pipeline, which knows it, fills it in
    stages: dict = field(default_factory=dict)  # earlier stages' histories (the text teacher's masked-LM "pretrain")
    valid_score: float | None = None  # the final model's metric on the valid split

    def to_json(self) -> dict:
        out = {"model": self.model, "dataset": self.dataset, "params": self.params, "status": str(self.status),
               "reason": self.reason, f"test_{self.metric.name}": self.score,
               f"valid_{self.metric.name}": self.valid_score, "seconds": round(self.seconds, 2),
               "device": self.device, "history": self.history, "task": self.task, "metric": self.metric.name}
        if self.stages:
            out["stages"] = self.stages
        return out


@dataclass
class DistillResult:
    """A distilled student, beside its teacher and (when trained) its from-scratch twin."""

    model: str
    dataset: str
    test_examples: int
    teacher: str | list  # its path; an ensemble's: its members' paths
    teacher_score: float | None
    student_score: float | None
    baseline_score: float | None = None
    params: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    device: str = ""
    status: Status = Status.FINISHED
    reason: str = ""
    seconds: float = 0.0
    metric: Metric = ACCURACY
    task: str = ""  # as in TeacherResult
    teacher_model: str = ""  # set by the demo, which trains the teacher in the same job
    note: str = ""  # what was done to the data for the teacher (grey given as colour, say), for the page to say
    student_valid: float | None = None  # the final models' metric on the valid split, beside their test scores
    baseline_valid: float | None = None
    paired: Interval | None = None  # the task's paired test of student vs baseline on the test split (one seed)
    more: dict = field(default_factory=dict)  # an ensemble's members, a chain's assistant: added to the JSON
    recipe: dict = field(default_factory=dict)  # the distillation it ran, resolved, as data (kdcore.recipes)
    recipe_notes: list = field(default_factory=list)  # what the recipe's check said (a projection added…)

    @property
    def gain(self) -> float | None:
        """Student minus baseline score, as the JSON's ``gain`` holds it (for perplexity, negative is better)."""
        if self.student_score is None or self.baseline_score is None:
            return None
        return self.student_score - self.baseline_score

    @property
    def gap_recovered(self) -> float | None:
        return self.metric.gap_recovered(self.student_score, self.baseline_score, self.teacher_score)

    def verdict(self) -> Verdict:
        return verdict([self.gain] if self.gain is not None else [], self.metric, paired=self.paired)

    def to_json(self) -> dict:
        m = self.metric.name
        # test_images is the older name of test_examples (it counts words and sentences too): kept for its readers
        out = {"model": self.model, "dataset": self.dataset, "test_examples": self.test_examples,
               "test_images": self.test_examples, "metric": m,
               "teacher": self.teacher, f"teacher_{m}": self.teacher_score, f"student_{m}": self.student_score,
               "params": self.params, "history": self.history, "device": self.device, "status": str(self.status),
               "reason": self.reason, "seconds": round(self.seconds, 2), "task": self.task}
        if self.baseline_score is not None:
            out.update({f"baseline_{m}": self.baseline_score, "gain": self.gain, "gap_recovered": self.gap_recovered,
                        **self.verdict().to_json()})
        out.update({f"{who}_valid_{m}": v for who, v in (("student", self.student_valid),
                                                          ("baseline", self.baseline_valid)) if v is not None})
        if self.recipe:
            out.update(recipe=self.recipe, recipe_notes=list(self.recipe_notes))
        if self.teacher_model:
            out["teacher_model"] = self.teacher_model
        if self.note:
            out["note"] = self.note
        return {**out, **self.more}


@dataclass
class EnsembleResult:
    """The teachers of one ensemble, trained in one job: each member's result, and how the job ended."""

    group: str
    members: list[TeacherResult]
    status: Status = Status.FINISHED
    reason: str = ""

    @property
    def models(self) -> list[str]:
        return [m.model for m in self.members if m.model]

    @property
    def model(self) -> str:
        """The first member: what becomes the active teacher when the job ends."""
        return self.models[0] if self.models else ""

    def to_json(self) -> dict:
        first = self.members[0].to_json() if self.members else {}
        return {"group": self.group, "model": self.model, "models": self.models, "status": str(self.status),
                "reason": self.reason, "task": first.get("task", ""), "metric": first.get("metric", ""),
                "members": [m.to_json() for m in self.members],
                "seconds": round(sum(m.seconds for m in self.members), 2)}
