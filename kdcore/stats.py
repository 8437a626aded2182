"""Paired statistics for the verdict: did the distilled student beat the same student trained from scratch?

The two students are paired by construction: same seed, same initial weights,
same batches, and both answer the same test examples. A paired statistic
uses that pairing, so it needs far fewer seeds (or test examples) than
comparing two independent scores would. Every function here returns the
mean gain and its 95 % interval, with gains signed so that positive means
the distilled student is better; the verdict is *helped* when the whole
interval lies above zero, *hurt* when below, and a *tie* otherwise.

- Two or more seeds: the per-seed gains are the sample; the interval is
  Student's t over seeds (:func:`seeds`).
- One seed, accuracy: McNemar's exact test. Only the examples on which the
  two models disagree carry evidence; under "no difference" each is a fair
  coin. The interval is the exact (Clopper–Pearson) one for that coin,
  turned into a difference in accuracy (:func:`mcnemar`).
- One seed, a score averaged over tokens (perplexity): a paired bootstrap over
  test sentences, resampling whole sentences so that both models are
  rescored on the same resample (:func:`bootstrap`).

This module is in the engine's base layer: it imports NumPy and SciPy, and
nothing of kdcore.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean paired gain (positive: the distilled student is better) and its 95 % interval."""

    gain: float
    low: float
    high: float
    method: str  # how the interval was made, in words a page can print
    p_value: float | None = None

    @property
    def outcome(self) -> str:
        """``helped`` (interval above zero), ``hurt`` (below) or ``tie`` (it straddles zero)."""
        return "helped" if self.low > 0 else "hurt" if self.high < 0 else "tie"


def seeds(gains) -> Interval:
    """The mean of per-seed paired gains with its 95 % t-interval: mean ± t(0.975, n−1) · s / √n.

    Each seed gives one paired gain (distilled minus scratch, same seed); the
    seeds are independent, so the t-interval over them is the textbook
    answer. With all gains equal the interval is that one point.
    """
    g = np.asarray([x for x in gains if x is not None], dtype=float)
    if len(g) < 2:
        raise ValueError(f"a t-interval needs the gains of two or more seeds (got {len(g)})")
    mean = float(g.mean())
    half = float(_scipy.t.ppf(0.5 + LEVEL / 2, len(g) - 1) * g.std(ddof=1) / math.sqrt(len(g)))
    return Interval(mean, mean - half, mean + half, f"95 % t-interval over {len(g)} seeds")


def mcnemar(student_correct, baseline_correct) -> Interval:
    """McNemar's exact test on one seed's test predictions, as a gain in accuracy with its 95 % interval.

    ``b`` counts the examples only the distilled student gets right, ``c``
    those only the scratch student gets right. The gain in accuracy is
    (b − c) / n. Given b + c disagreements, b is Binomial(b + c, π), and "no
    difference" is π = ½ (the exact two-sided p-value). The Clopper–Pearson
    interval for π maps to the gain as (b + c)(2π − 1) / n.
    """
    s = np.asarray(student_correct, dtype=bool)
    b0 = np.asarray(baseline_correct, dtype=bool)
    if s.shape != b0.shape or s.ndim != 1 or not len(s):
        raise ValueError("McNemar's test needs both models' right/wrong answers on the same test examples")
    n = len(s)
    b, c = int(np.sum(s & ~b0)), int(np.sum(~s & b0))
    gain = (b - c) / n
    if b + c == 0:
        return Interval(0.0, 0.0, 0.0, f"McNemar's exact test over {n:,} test examples (no disagreements)", 1.0)
    test = _scipy.binomtest(b, b + c, 0.5)
    ci = test.proportion_ci(confidence_level=LEVEL, method="exact")
    scale = (b + c) / n
    return Interval(gain, scale * (2 * ci.low - 1), scale * (2 * ci.high - 1),
                    f"McNemar's exact test over {n:,} test examples ({b} won, {c} lost)", float(test.pvalue))


def bootstrap(student_nll, baseline_nll, tokens, *, resamples: int = 2000, seed: int = 0) -> Interval:
    """A paired bootstrap over test sentences for a per-token score: the gain in perplexity and its 95 % interval.

    ``*_nll`` are each sentence's summed negative log-likelihood (nats) under
    each model, ``tokens`` its length. Perplexity is exp(Σ nll / Σ tokens). A
    resample draws sentences with replacement and rescores *both* models on
    it, which keeps the pairing; the interval is the resamples' 2.5th and
    97.5th percentiles. Gains are baseline − student perplexity, so positive
    means the distilled student is better.
    """
    s, b, n = (np.asarray(a, dtype=float) for a in (student_nll, baseline_nll, tokens))
    if not (s.shape == b.shape == n.shape) or s.ndim != 1 or not len(s):
        raise ValueError("the paired bootstrap needs both models' losses on the same test sentences")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(s), size=(resamples, len(s)))
    words = n[idx].sum(axis=1)
    draws = np.exp(b[idx].sum(axis=1) / words) - np.exp(s[idx].sum(axis=1) / words)
    gain = float(np.exp(b.sum() / n.sum()) - np.exp(s.sum() / n.sum()))
    low, high = np.percentile(draws, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    return Interval(gain, float(low), float(high),
                    f"paired bootstrap over {len(s):,} test sentences ({resamples:,} resamples)")
