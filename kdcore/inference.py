"""Using trained models: softened probabilities, entropy, test-set predictions, confusion.

Everything that reasons about outputs works on logits with NumPy, so the
Temperature page can re-soften at every slider move without touching
TensorFlow. The models run only in :func:`predict_one` and
:func:`test_logits`; the latter keeps each model's test-set logits in memory,
so the Predictions page pays for a pass over the test set once per model and
dataset.

Entropy is measured in bits: a confident answer is near 0 bits, a uniform
guess over ten digits is log2(10) ≈ 3.32 bits.
"""
from __future__ import annotations

import weakref

import numpy as np

MAX_ENTROPY_BITS = float(np.log2(10))
_TEST_LOGITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# --- probabilities -----------------------------------------------------------------------------
def softened(logits, temperature: float) -> np.ndarray:
    """softmax(logits / T) along the last axis, stable for any logit size.

    Subtracting the row maximum before ``exp`` cannot change the result but
    keeps ``exp`` from overflowing when T is small and logits are large.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (got {temperature!r})")
    z = np.asarray(logits, dtype="float64") / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy(p) -> np.ndarray:
    """Shannon entropy in bits along the last axis (0 · log 0 counts as 0)."""
    p = np.asarray(p, dtype="float64")
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=-1)


def entropy_vs_temperature(logits, temperatures) -> np.ndarray:
    """Entropy (bits) of ``softened(logits, T)`` for each T: how much a temperature flattens an answer."""
    return np.array([entropy(softened(logits, t)) for t in temperatures])


def runners_up(p, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most likely classes after the top one: the "dark knowledge" of one answer."""
    p = np.asarray(p)
    order = np.argsort(p)[::-1]
    return [(int(c), float(p[c])) for c in order[1:k + 1]]


# --- running models ----------------------------------------------------------------------------
def predict_one(model, image: np.ndarray) -> np.ndarray:
    """Logits for one example shaped as the model's input (a 28×28×1 digit, a 32×32×3 image...).

    The model is called eagerly with a batch of one: no ``tf.function`` is
    traced, so nothing is retraced from one drawing to the next, and a call
    takes a few milliseconds on a CPU.
    """
    x = np.asarray(image, dtype="float32").reshape((1, *model.input_shape[1:]))
    return np.asarray(model(x, training=False))[0]


def _fingerprint(data) -> tuple:
    return (data.name, len(data.y_test), float(data.x_test[:64].sum()))


def test_logits(model, data) -> np.ndarray:
    """The model's logits on ``data.x_test``, computed once per (model, dataset) and kept while the model lives."""
    from .training import predict_logits

    per_model = _TEST_LOGITS.setdefault(model, {})
    key = _fingerprint(data)
    if key not in per_model:
        per_model[key] = predict_logits(model, data.x_test)
    return per_model[key]


# --- comparing predictions ---------------------------------------------------------------------
def accuracy(scores, y) -> float:
    """Share of rows whose highest score is the label."""
    return float((np.asarray(scores).argmax(-1) == np.asarray(y)).mean())


def confusion(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    out = np.zeros((n_classes, n_classes), dtype="int64")
    np.add.at(out, (np.asarray(y_true, "int64"), np.asarray(y_pred, "int64")), 1)
    return out


def select(labels, predictions: dict[str, np.ndarray], show: str) -> np.ndarray:
    """Indices of test digits to show: ``all``, ``disagreements`` (models differ) or ``errors`` (any model wrong)."""
    labels = np.asarray(labels)
    preds = list(predictions.values())
    if show == "all":
        keep = np.ones(len(labels), dtype=bool)
    elif show == "disagreements":
        keep = np.zeros(len(labels), dtype=bool)
        for other in preds[1:]:
            keep |= other != preds[0]
    elif show == "errors":
        keep = np.zeros(len(labels), dtype=bool)
        for p in preds:
            keep |= p != labels
    else:
        raise ValueError(f"show must be one of all, disagreements, errors (got {show!r})")
    return np.flatnonzero(keep)
