"""What runs return: a status, typed results, and one verdict on whether the teacher helped.

Results travel as dataclasses inside kdcore and the pages; they become plain
JSON (``to_json``) only at the edges: the CLI's ``--json`` output and the run
store. The JSON field names are the CLI's contract (``student_accuracy``,
``baseline_accuracy``, ``gap_recovered``…); for a task scored by another
metric the names follow it (``student_perplexity``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


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
    """``outcome`` is ``helped``, ``tie``, ``hurt`` or ``unknown`` (no baseline); ``why`` says it in a sentence."""

    outcome: str
    gain: float | None
    noise: float | None
    why: str


def gain_noise_single(student: float, baseline: float, n_test: int) -> float:
    """Standard deviation of one run's gain (student − baseline accuracy) from the test set's size.

    Each accuracy measured on ``n_test`` examples has the binomial variance
    p(1 − p)/n; the two are measured on the same examples but by different
    models, so the variances are added (an upper bound when the two models
    err on the same examples).
    """
    return math.sqrt((student * (1 - student) + baseline * (1 - baseline)) / max(n_test, 1))


def verdict(gains: list[float], *, noise: float | None = None, higher_is_better: bool = True,
            metric: str = "accuracy") -> Verdict:
    """Did distillation help? The one rule every screen and the CLI use.

    The statistic is the **standard deviation of the gain** (distilled minus
    from-scratch, per run): measured across seeds when there are two or more
    runs, else ``noise`` (for accuracy, :func:`gain_noise_single`). The
    verdict is *helped* when the mean gain is more than twice that spread in
    the good direction, *hurt* when it is more than twice in the bad one, and
    a *tie* otherwise. Two spreads is a plain, conservative line: it asks the
    gain to stand out from the run-to-run variation a user would see by
    running the same recipe again, not from the (smaller) error of a mean.
    """
    gains = [g for g in gains if g is not None]
    if not gains:
        return Verdict("unknown", None, None, "No from-scratch baseline was trained, so there is nothing to "
                                              "compare the distilled student with.")
    mean = sum(gains) / len(gains)
    if len(gains) >= 2:
        spread = math.sqrt(sum((g - mean) ** 2 for g in gains) / (len(gains) - 1))
        basis = f"twice the spread of the gain over {len(gains)} seeds"
    else:
        spread = noise
        basis = "twice the gain's standard error on this test set"
    if spread is None:
        return Verdict("unknown", mean, None, "With one run and no error estimate the gain cannot be told from noise.")
    good = mean if higher_is_better else -mean
    outcome = "helped" if good > 2 * spread else "hurt" if good < -2 * spread else "tie"
    words = {"helped": "distillation helped: the gain is larger than",
             "hurt": "distillation hurt: the loss is larger than",
             "tie": "a tie: the difference is within"}[outcome]
    return Verdict(outcome, mean, spread, f"{words} {basis} ({2 * spread:.3g} {_unit(metric)}).")


def _unit(metric: str) -> str:
    return "in accuracy" if metric == "accuracy" else f"in {metric}"


def gap_recovered(student: float | None, baseline: float | None, teacher: float | None,
                  higher_is_better: bool = True) -> float | None:
    """Share of the teacher–baseline gap that distillation closed: (s − b) / (t − b).

    For perplexity pass logarithms (``higher_is_better=False``): the ratio
    then reads the same. None when the teacher is no better than the baseline.
    """
    if student is None or baseline is None or teacher is None:
        return None
    if (teacher - baseline) * (1 if higher_is_better else -1) <= 1e-9:
        return None
    return (student - baseline) / (teacher - baseline)


# --- results of runs --------------------------------------------------------------------------------
@dataclass
class TeacherResult:
    """A trained teacher: where it was saved, its test score and its curves."""

    model: str
    dataset: str
    params: int
    status: Status
    reason: str
    score: float | None
    seconds: float
    device: str
    history: list = field(default_factory=list)
    metric: str = "accuracy"
    task: str = ""  # the task's name: the pipeline, which knows it, fills it in
    stages: dict = field(default_factory=dict)  # earlier stages' histories (the text teacher's masked-LM "pretrain")

    def to_json(self) -> dict:
        out = {"model": self.model, "dataset": self.dataset, "params": self.params, "status": str(self.status),
               "reason": self.reason, f"test_{self.metric}": self.score, "seconds": round(self.seconds, 2),
               "device": self.device, "history": self.history, "task": self.task}
        if self.stages:
            out["stages"] = self.stages
        return out


@dataclass
class DistillResult:
    """A distilled student, beside its teacher and (when trained) its from-scratch twin."""

    model: str
    dataset: str
    test_examples: int
    teacher: str
    teacher_score: float | None
    student_score: float | None
    baseline_score: float | None = None
    params: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    device: str = ""
    status: Status = Status.FINISHED
    reason: str = ""
    seconds: float = 0.0
    metric: str = "accuracy"
    higher_is_better: bool = True
    task: str = ""  # as in TeacherResult
    teacher_model: str = ""  # set by the demo, which trains the teacher in the same job
    note: str = ""  # what was done to the data for the teacher (grey given as colour, say), for the page to say

    @property
    def gain(self) -> float | None:
        if self.student_score is None or self.baseline_score is None:
            return None
        return self.student_score - self.baseline_score

    @property
    def gap_recovered(self) -> float | None:
        if self.metric == "perplexity":  # a gap in perplexity is a ratio: compare logarithms
            logs = [math.log(v) if v else None for v in (self.student_score, self.baseline_score, self.teacher_score)]
            return gap_recovered(*logs, higher_is_better=False)
        return gap_recovered(self.student_score, self.baseline_score, self.teacher_score)

    def verdict(self) -> Verdict:
        noise = None
        if self.metric == "accuracy" and self.gain is not None:
            noise = gain_noise_single(self.student_score, self.baseline_score, self.test_examples)
        return verdict([self.gain] if self.gain is not None else [], noise=noise,
                       higher_is_better=self.higher_is_better, metric=self.metric)

    def to_json(self) -> dict:
        m = self.metric
        out = {"model": self.model, "dataset": self.dataset, "test_images": self.test_examples,
               "teacher": self.teacher, f"teacher_{m}": self.teacher_score, f"student_{m}": self.student_score,
               "params": self.params, "history": self.history, "device": self.device, "status": str(self.status),
               "reason": self.reason, "seconds": round(self.seconds, 2), "task": self.task}
        if self.baseline_score is not None:
            v = self.verdict()
            out.update({f"baseline_{m}": self.baseline_score, "gain": self.gain, "gap_recovered": self.gap_recovered,
                        "verdict": v.outcome, "verdict_reason": v.why})
        if self.teacher_model:
            out["teacher_model"] = self.teacher_model
        if self.note:
            out["note"] = self.note
        return out
