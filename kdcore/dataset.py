"""The shared dataset type: what every task's loader returns and every trainer takes.

A :class:`Dataset` is three splits (train, valid, test) and a ``source``
sentence saying where the examples came from; what the arrays hold (pixels,
token ids) is the task's business. Training reads train; every choice (the
curves, a study's objective, a sweep's best cell) reads valid; the test split
is scored once, on a run's final model. Loaders live with their task (``kdcore.tasks.<task>``); this module
imports nothing of kdcore, so any layer may use it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KERAS_CACHE = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"  # Keras's loaders' downloads
DIGIT_CLASSES = tuple(str(i) for i in range(10))  # ten classes named by their index, as MNIST's


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message is one readable sentence."""


VALID_FRACTION = 0.1  # of the training split, for a source that has no validation split of its own


def carve_valid(x, y, n_valid: int | float = VALID_FRACTION, seed: int = 0) -> tuple:
    """(x_train, y_train, x_valid, y_valid): ``n_valid`` examples (or that share, when < 1) moved out of training.

    Stratified, so the valid split has each class in its training share and a
    choice made on it is not swayed by a class that happens to be rare there;
    seeded, so the split is the same on every load and every machine (a study's
    workers, a cached teacher's fingerprint and a rerun all see the same
    examples). Labels that are not one class per example (a language model's
    next words) are split by a seeded shuffle alone.
    """
    y = np.asarray(y)
    n = len(y)
    k = max(1, int(round(n_valid * n))) if n_valid < 1 else int(n_valid)
    if not 0 < k < n:
        raise DatasetError(f"cannot carve {k} validation examples out of {n} training examples; a dataset "
                           "needs more training examples, or an x_valid, y_valid of its own")
    rng = np.random.default_rng(seed)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        # each class gives its share; rounding leftovers go to the classes with the largest remainders
        classes, counts = np.unique(y, return_counts=True)
        want = counts * k / n
        take = np.floor(want).astype(int)
        for i in np.argsort(take - want)[: k - take.sum()]:
            take[i] += 1
        valid = np.concatenate([rng.choice(np.flatnonzero(y == c), size=t, replace=False)
                                for c, t in zip(classes, take)])
    else:
        valid = rng.permutation(n)[:k]
    keep = np.ones(n, dtype=bool)
    keep[valid] = False
    valid = np.sort(valid)
    return x[keep], y[keep], x[valid], y[valid]


@dataclass
class Dataset:
    """Train, valid and test splits. Built without a valid split, it carves one (:func:`carve_valid`, 10 %)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    classes: tuple = DIGIT_CLASSES
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None

    def __post_init__(self):
        if self.x_valid is None:
            self.x_train, self.y_train, self.x_valid, self.y_valid = carve_valid(self.x_train, self.y_train)

    def summary(self) -> dict:
        return {"name": self.name, "source": self.source, "train": int(len(self.y_train)),
                "valid": int(len(self.y_valid)), "test": int(len(self.y_test))}

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0,
               n_valid: int | None = None) -> "Dataset":
        """A smaller, class-balanced-by-chance copy (for tests and quick demos).

        The valid split shrinks with the training one (same share) unless ``n_valid`` is given.
        """
        rng = np.random.default_rng(seed)
        if n_train and n_valid is None:
            n_valid = max(1, round(n_train * len(self.y_valid) / max(1, len(self.y_train))))
        tr = rng.permutation(len(self.y_train))[:n_train] if n_train else slice(None)
        te = rng.permutation(len(self.y_test))[:n_test] if n_test else slice(None)
        va = rng.permutation(len(self.y_valid))[:n_valid] if n_valid else slice(None)
        return Dataset(self.name, self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te],
                       self.source, self.classes, self.x_valid[va], self.y_valid[va])


def hide_labels(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Keep labels for a stratified ``fraction`` of examples; mark the rest -1 ("no label")."""
    y = np.asarray(y).copy()
    if fraction >= 1.0:
        return y
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = max(1, int(round(fraction * len(idx))))
        keep[rng.choice(idx, size=n, replace=False)] = True
    y[~keep] = -1
    return y
