"""The shared dataset type: what every task's loader returns and every trainer takes.

A :class:`Dataset` is four arrays and a ``source`` sentence saying where the
examples came from; what the arrays hold (pixels, token ids) is the task's
business. Loaders live with their task (``kdcore.tasks.<task>``); this module
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


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    classes: tuple = DIGIT_CLASSES

    def summary(self) -> dict:
        return {"name": self.name, "source": self.source,
                "train": int(len(self.y_train)), "test": int(len(self.y_test))}

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller, class-balanced-by-chance copy (for tests and quick demos)."""
        rng = np.random.default_rng(seed)
        tr = rng.permutation(len(self.y_train))[:n_train] if n_train else slice(None)
        te = rng.permutation(len(self.y_test))[:n_test] if n_test else slice(None)
        return Dataset(self.name, self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te],
                       self.source, self.classes)


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
