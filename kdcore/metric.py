"""How a score is read: a :class:`Metric` knows its direction, its formatting and its gaps.

A task names one metric (``accuracy`` for the classifiers, ``perplexity`` for
the language model); every place that formats, compares, averages or plots a
score asks that object instead of testing the metric's name, so a task with a
third metric (F1, a word error rate) is one more value here or in its own
package, not an edit across the engine and the pages.

Records (the run store, ``--json``) carry only the metric's *name*, in keys
such as ``student_perplexity``; :func:`get` turns a name back into the
object. Every Metric made registers its name, so a task's own metric
resolves too. This module imports nothing from kdcore: it is the bottom layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

_KNOWN: dict[str, "Metric"] = {}


@dataclass(frozen=True)
class Metric:
    """One way of scoring a model on its test split.

    ``percent``: the score is a share in [0, 1], shown as a percentage and its
    differences as percentage points. ``log_space``: the score is a geometric
    quantity whose gaps read as ratios (perplexity is exp of a mean loss), so
    gaps are compared in logarithms.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool = True
    log_space: bool = False
    percent: bool = False
    digits: int = 1

    def __post_init__(self):
        _KNOWN[self.name] = self

    # --- reading ------------------------------------------------------------------------------------
    def format(self, value) -> str:
        """A score as a person reads it: "97.3%", "121.5"; "n/a" when there is none."""
        if value is None:
            return "n/a"
        return f"{value:.{self.digits}%}" if self.percent else f"{value:,.{self.digits}f}"

    def format_change(self, change) -> str:
        """A difference of two scores (student − baseline) in the metric's own units: "+1.2 points", "-7.9 ppl".

        A plain hyphen-minus, not "−": ``st.metric`` reads a delta's sign from it.
        """
        if change is None:
            return "n/a"
        return f"{(100 if self.percent else 1) * change:+,.{self.digits}f} {self.unit}"

    def format_spread(self, spread: dict | None, change: bool = False) -> str:
        """An experiment's ``{"mean", "std"}`` over seeds: "96.1% ± 0.3%", "411.8 ± 9.0".

        With ``change`` it is a difference of scores: "+1.2 ± 0.3 points".
        """
        if not spread or spread.get("mean") is None:
            return "n/a"
        if not change:
            return f"{self.format(spread['mean'])} ± {self.format(spread.get('std') or 0.0)}"
        mean, std = ((100 if self.percent else 1) * v for v in (spread["mean"], spread.get("std") or 0.0))
        return f"{mean:+,.{self.digits}f} ± {std:,.{self.digits}f} {self.unit}"

    def format_interval(self, low, high) -> str:
        """Two changes as an interval in the metric's units: "+1.2 to +2.8 points", "-12.0 to -3.1 ppl"."""
        return f"{self.format_change(low).rsplit(' ', 1)[0]} to {self.format_change(high)}"

    def format_gain(self, gain) -> str:
        """A :meth:`gain` (positive = better) shown as the change it is: a perplexity gain of 7.9 reads "-7.9 ppl"."""
        return self.format_change(None if gain is None else gain * self.sign)

    # --- comparing ----------------------------------------------------------------------------------
    @property
    def sign(self) -> int:
        """+1 when a higher score is better, −1 when a lower one is: multiply a change by it to get a gain."""
        return 1 if self.higher_is_better else -1

    def better(self, a, b) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return (a - b) * self.sign > 0

    def gain(self, student, baseline):
        """How much better the student scored than the baseline, in score units: positive means better."""
        if student is None or baseline is None:
            return None
        return (student - baseline) * self.sign

    def gap_recovered(self, student, baseline, teacher):
        """Share of the teacher–baseline gap the student closed: (s − b) / (t − b), in logs when ``log_space``.

        None when a score is missing (or not positive in log space) or the
        teacher is no better than the baseline: there is then no gap to close.
        """
        scores = (student, baseline, teacher)
        if any(v is None for v in scores) or (self.log_space and any(v <= 0 for v in scores)):
            return None
        s, b, t = (math.log(v) for v in scores) if self.log_space else scores
        if (t - b) * self.sign <= 1e-9:
            return None
        return (s - b) / (t - b)

    # --- drawing ------------------------------------------------------------------------------------
    def axis(self, empty: bool = False) -> dict:
        """Plotly y-axis settings for this score: shares as percentages, log-space scores on a log axis.

        A share's axis spans 0–100 % while ``empty``, so a chart still waiting for its first epoch reads right.
        """
        if self.percent:
            return {"tickformat": ".0%", "range": [0, 1] if empty else None}
        return {"type": "log"} if self.log_space else {"rangemode": "tozero"}

    def hover(self, precise: bool = False) -> str:
        """A Plotly/``format`` spec for a score: ".1%" or ",.1f" (one digit more with ``precise``)."""
        digits = self.digits + precise
        return f".{digits}%" if self.percent else f",.{digits}f"

    @property
    def direction(self) -> str:
        """"" when higher is better (the usual reading), else " (lower is better)" for a title."""
        return "" if self.higher_is_better else " (lower is better)"


ACCURACY = Metric("accuracy", "Test accuracy", "points", percent=True)
PERPLEXITY = Metric("perplexity", "Perplexity", "ppl", higher_is_better=False, log_space=True)


def get(name: str | None) -> Metric:
    """The metric called ``name`` (None: accuracy, what records written before metrics had names hold)."""
    if name is None:
        return ACCURACY
    if name not in _KNOWN:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(_KNOWN)}")
    return _KNOWN[name]


def of_record(record: dict) -> Metric:
    """The metric a stored result was scored by: its ``metric`` field, else the one whose score keys it holds.

    Records written before results named their metric hold only keys such as
    ``student_perplexity`` or ``test_accuracy``; a record with none is accuracy's.
    """
    if record.get("metric") in _KNOWN:
        return _KNOWN[record["metric"]]
    return next((m for m in reversed(_KNOWN.values())
                 if any(k == m.name or k.endswith("_" + m.name) for k in record)), ACCURACY)


def of_epochs(series: dict[str, list[dict]]) -> Metric:
    """The metric per-epoch records are scored by (``valid_accuracy``, ``valid_perplexity``; ``test_accuracy`` in
    records kept before runs had a valid split)."""
    return of_record({k: None for records in series.values() for r in records for k in r})


__all__ = ["ACCURACY", "PERPLEXITY", "Metric", "get", "of_epochs", "of_record"]
