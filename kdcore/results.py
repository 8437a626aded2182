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

from .metric import ACCURACY, Metric


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


def verdict(gains: list[float], metric: Metric = ACCURACY, *, noise: float | None = None) -> Verdict:
    """Did distillation help? The one rule every screen and the CLI use.

    ``gains`` are the records' ``gain`` values, distilled minus from-scratch
    score per run (so for perplexity a negative one is good: ``metric`` says
    which way is better). The statistic is the **standard deviation of the
    gain**: measured across seeds when there are two or more runs, else
    ``noise`` (one run's, :meth:`Metric.gain_noise`). The verdict is *helped*
    when the mean gain is more than twice that spread in the good direction,
    *hurt* when it is more than twice in the bad one, and a *tie* otherwise.
    Two spreads is a plain, conservative line: it asks the gain to stand out
    from the run-to-run variation a user would see by running the same recipe
    again, not from the (smaller) error of a mean.
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
    good = mean * metric.sign
    outcome = "helped" if good > 2 * spread else "hurt" if good < -2 * spread else "tie"
    words = {"helped": "distillation helped: the gain is larger than",
             "hurt": "distillation hurt: the loss is larger than",
             "tie": "a tie: the difference is within"}[outcome]
    return Verdict(outcome, mean, spread, f"{words} {basis} ({2 * spread:.3g} in {metric.name}).")


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
    metric: Metric = ACCURACY
    task: str = ""  # as in TeacherResult
    teacher_model: str = ""  # set by the demo, which trains the teacher in the same job
    note: str = ""  # what was done to the data for the teacher (grey given as colour, say), for the page to say
    student_valid: float | None = None  # the final models' metric on the valid split, beside their test scores
    baseline_valid: float | None = None

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
        noise = None
        if self.gain is not None:
            noise = self.metric.gain_noise(self.student_score, self.baseline_score, self.test_examples)
        return verdict([self.gain] if self.gain is not None else [], self.metric, noise=noise)

    def to_json(self) -> dict:
        m = self.metric.name
        # test_images is the older name of test_examples (it counts words and sentences too): kept for its readers
        out = {"model": self.model, "dataset": self.dataset, "test_examples": self.test_examples,
               "test_images": self.test_examples, "metric": m,
               "teacher": self.teacher, f"teacher_{m}": self.teacher_score, f"student_{m}": self.student_score,
               "params": self.params, "history": self.history, "device": self.device, "status": str(self.status),
               "reason": self.reason, "seconds": round(self.seconds, 2), "task": self.task}
        if self.baseline_score is not None:
            v = self.verdict()
            out.update({f"baseline_{m}": self.baseline_score, "gain": self.gain, "gap_recovered": self.gap_recovered,
                        "verdict": v.outcome, "verdict_reason": v.why})
        out.update({f"{who}_valid_{m}": v for who, v in (("student", self.student_valid),
                                                          ("baseline", self.baseline_valid)) if v is not None})
        if self.teacher_model:
            out["teacher_model"] = self.teacher_model
        if self.note:
            out["note"] = self.note
        return out
