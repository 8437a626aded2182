"""The distillation losses against an independent NumPy computation, and the pitfalls they avoid."""
from __future__ import annotations

import numpy as np
import pytest

from kdcore import losses


def np_softmax(z, temperature=1.0):
    z = np.asarray(z, dtype=np.float64) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_soft_loss(t, s, temperature, mode):
    """The four soft-target losses written out directly from their definitions."""
    if mode == "logit-mse":
        return np.mean((np.asarray(s, np.float64) - np.asarray(t, np.float64)) ** 2)
    p_t, p_s = np_softmax(t, temperature), np_softmax(s, temperature)
    if mode == "kl":
        per_example = np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=-1)
    elif mode == "soft-ce":
        per_example = -np.sum(p_t * np.log(p_s), axis=-1)
    else:  # prob-mse
        per_example = np.mean((p_s - p_t) ** 2, axis=-1) / 2
    return temperature ** 2 * per_example.mean()


def np_cross_entropy(labels, s):
    labels = np.asarray(labels)
    keep = labels >= 0
    if not keep.any():
        return 0.0
    return -np.mean(np.log(np_softmax(s)[keep, labels[keep]]))


@pytest.fixture
def logits():
    rng = np.random.default_rng(42)
    teacher = (rng.normal(size=(16, 10)) * 4).astype("float32")
    student = (rng.normal(size=(16, 10)) * 2).astype("float32")
    labels = rng.integers(0, 10, size=16)
    return teacher, student, labels


@pytest.mark.parametrize("mode", ["kl", "soft-ce", "prob-mse", "logit-mse"])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
def test_soft_target_loss_matches_numpy(logits, mode, temperature):
    import tensorflow as tf

    t, s, _ = logits
    expected = np_soft_loss(t, s, temperature, mode)
    on_numpy = float(losses.soft_target_loss(t, s, temperature, mode))
    on_tensors = float(losses.soft_target_loss(tf.constant(t), tf.constant(s), temperature, mode))
    assert on_numpy == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert on_tensors == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_kl_and_soft_ce_differ_by_the_teachers_entropy(logits):
    t, s, _ = logits
    p_t = np_softmax(t, 4.0)
    entropy = -np.sum(p_t * np.log(p_t), axis=-1).mean()
    kl = float(losses.soft_target_loss(t, s, 4.0, "kl"))
    ce = float(losses.soft_target_loss(t, s, 4.0, "soft-ce"))
    assert ce - kl == pytest.approx(16 * entropy, rel=1e-4)
    assert float(losses.soft_target_loss(t, t, 4.0, "kl")) == pytest.approx(0.0, abs=1e-5)


def test_logit_mse_ignores_temperature(logits):
    t, s, _ = logits
    assert float(losses.soft_target_loss(t, s, 1.0, "logit-mse")) == pytest.approx(
        float(losses.soft_target_loss(t, s, 50.0, "logit-mse")))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_loss_mixes_soft_and_hard(logits, alpha):
    t, s, y = logits
    expected = alpha * np_soft_loss(t, s, 3.0, "kl") + (1 - alpha) * np_cross_entropy(y, s)
    assert float(losses.distillation_loss(y, s, t, 3.0, alpha, "kl")) == pytest.approx(expected, rel=1e-4)
    total, soft, hard = losses.distillation_terms(y, s, t, 3.0, alpha, "kl")
    assert float(hard) == pytest.approx(np_cross_entropy(y, s), rel=1e-4)
    assert float(total) == pytest.approx(alpha * float(soft) + (1 - alpha) * float(hard), rel=1e-5)


def test_hard_term_averages_over_labelled_examples_only(logits):
    t, s, y = logits
    hidden = y.copy()
    hidden[::3] = -1
    assert float(losses.hard_label_loss(hidden, s)) == pytest.approx(np_cross_entropy(hidden, s), rel=1e-4)
    assert float(losses.hard_label_loss(hidden, s)) != pytest.approx(np_cross_entropy(y, s), rel=1e-3)


def test_no_labels_gives_zero_hard_term_not_nan(logits):
    t, s, y = logits
    none = np.full_like(y, -1)
    assert float(losses.hard_label_loss(none, s)) == 0.0
    total = float(losses.distillation_loss(none, s, t, 4.0, 0.5))
    assert np.isfinite(total)
    assert total == pytest.approx(0.5 * np_soft_loss(t, s, 4.0, "kl"), rel=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0}, "temperature must be > 0"),
    ({"temperature": -2.0}, "temperature must be > 0"),
    ({"temperature": float("nan")}, "temperature must be a finite number"),
    ({"temperature": 1e6}, "temperature must be <= 100"),
    ({"alpha": -0.1}, "alpha must be >= 0"),
    ({"alpha": 1.5}, "alpha must be <= 1"),
    ({"alpha": float("nan")}, "alpha must be a finite number"),
    ({"mode": "cosine"}, "loss must be one of kl, soft-ce, prob-mse, logit-mse (got 'cosine')"),
])
def test_bad_parameters_are_refused_by_name(logits, kwargs, message):
    t, s, y = logits
    args = {"temperature": 4.0, "alpha": 0.5, "mode": "kl", **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        losses.distillation_loss(y, s, t, **args)
    if "alpha" not in kwargs:
        with pytest.raises(ValueError, match=message.split(" must")[0]):
            losses.soft_target_loss(t, s, args["temperature"], args["mode"])


def test_keras_distillation_pitfall_cannot_happen(logits):
    """keras.distillation's default applies KL to raw logits; a correct Distiller softens and scales by T²."""
    import keras

    t, s, _ = logits
    temperature = 4.0
    ours = float(losses.soft_target_loss(t, s, temperature, "kl"))
    reference = np_soft_loss(t, s, temperature, "kl")
    assert ours == pytest.approx(reference, rel=1e-4)

    kld = keras.losses.KLDivergence()
    on_raw_logits = float(kld(t, s))
    no_softmax_no_t2 = np.mean(np.sum(np.clip(t, 1e-7, 1) * np.log(np.clip(t, 1e-7, 1) / np.clip(s, 1e-7, 1)), -1))
    assert on_raw_logits == pytest.approx(no_softmax_no_t2, rel=1e-3)
    softmax_without_t2 = float(kld(np_softmax(t, temperature), np_softmax(s, temperature)))
    for wrong in (on_raw_logits, softmax_without_t2):
        assert abs(ours - wrong) > 0.1 * ours

    correctly_configured = softmax_without_t2 * temperature ** 2
    assert ours == pytest.approx(correctly_configured, rel=1e-3)


def _soft_gradient_norm(t, s, temperature, t2_scaled=True):
    import tensorflow as tf

    s = tf.Variable(s)
    with tf.GradientTape() as tape:
        loss = losses.soft_target_loss(t, s, temperature, "kl")
        if not t2_scaled:
            loss = loss / temperature ** 2
    return float(tf.norm(tape.gradient(loss, s)))


def test_t_squared_keeps_the_soft_gradient_size_across_temperatures(logits):
    t, s, _ = logits
    t, s = t / 4, s / 2  # logits of a few units, as a trained network gives
    scaled = {T: _soft_gradient_norm(t, s, T) for T in (2.0, 8.0)}
    unscaled = {T: _soft_gradient_norm(t, s, T, t2_scaled=False) for T in (2.0, 8.0)}
    assert 0.5 < scaled[8.0] / scaled[2.0] < 2.0
    assert 8 < unscaled[2.0] / unscaled[8.0] < 32


@pytest.mark.parametrize("mode", ["kl", "soft-ce", "prob-mse", "logit-mse"])
def test_soft_gradient_equals_the_gradient_of_the_formula(logits, mode):
    """kl and soft-ce write their gradient out (it saves the step ~20 ops): it must be the formula's own."""
    import tensorflow as tf

    t, s, _ = logits
    s = tf.Variable(s)
    with tf.GradientTape(persistent=True) as tape:
        ours = losses.soft_target_loss(t, s, 4.0, mode)
        p_t, log_q = tf.nn.softmax(t / 4.0), tf.nn.log_softmax(s / 4.0)
        reference = {"kl": 16 * tf.reduce_mean(tf.reduce_sum(p_t * (tf.math.log(p_t) - log_q), -1)),
                     "soft-ce": 16 * tf.reduce_mean(-tf.reduce_sum(p_t * log_q, -1)),
                     "prob-mse": 16 * tf.reduce_mean(tf.square(tf.exp(log_q) - p_t)) / 2,
                     "logit-mse": tf.reduce_mean(tf.square(s - t))}[mode]
    np.testing.assert_allclose(tape.gradient(ours, s), tape.gradient(reference, s), rtol=1e-4, atol=1e-6)
