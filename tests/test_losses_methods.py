"""Each added distillation method against a NumPy computation written from its paper, then a real model it trains.

The references below follow the papers' definitions with loops and plain
NumPy (no shared code with kdcore.losses), so a slip in the Keras ops shows
as a mismatch, not as the same slip twice.
"""
from __future__ import annotations

import numpy as np
import pytest

from kdcore import losses
from tests.test_losses import np_softmax


def np_kl(p, q):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def np_huber(x):
    x = np.abs(x)
    return np.where(x < 1, 0.5 * x ** 2, x - 0.5)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def logits(rng):
    teacher = (rng.normal(size=(12, 7)) * 3).astype("float32")
    student = rng.normal(size=(12, 7)).astype("float32")
    labels = rng.integers(0, 7, size=12)
    return teacher, student, labels


def close(value, expected):
    return float(value) == pytest.approx(expected, rel=1e-4, abs=1e-6)


# --- Attention Transfer --------------------------------------------------------------------------------------------
def np_attention_transfer(t, s, p=2.0):
    """Zagoruyko & Komodakis, example by example: Q = Σ_c |A_c|^p, vectorised, compared after L2 normalising."""
    total = 0.0
    for a_t, a_s in zip(np.asarray(t, np.float64), np.asarray(s, np.float64)):
        q_t = (np.abs(a_t) ** p).sum(axis=-1).ravel()
        q_s = (np.abs(a_s) ** p).sum(axis=-1).ravel()
        total += np.linalg.norm(q_s / np.linalg.norm(q_s) - q_t / np.linalg.norm(q_t))
    return total / len(t)


@pytest.mark.parametrize("p", [1.0, 2.0, 4.0])
def test_attention_transfer_matches_the_papers_equation(rng, p):
    import tensorflow as tf

    t = rng.normal(size=(5, 6, 6, 16)).astype("float32")
    s = rng.normal(size=(5, 6, 6, 4)).astype("float32")  # fewer channels: only H and W must agree
    expected = np_attention_transfer(t, s, p)
    assert close(losses.attention_transfer_loss(t, s, p), expected)
    assert close(losses.attention_transfer_loss(tf.constant(t), tf.constant(s), p), expected)
    assert float(losses.attention_transfer_loss(t, 3 * t, p)) == pytest.approx(0.0, abs=1e-5)


def test_attention_transfer_refuses_maps_of_different_size_naming_both(rng):
    t, s = np.zeros((2, 8, 8, 4), "float32"), np.zeros((2, 4, 4, 4), "float32")
    with pytest.raises(ValueError, match=r"equal H and W \(got teacher \(2, 8, 8, 4\), student \(2, 4, 4, 4\)\)"):
        losses.attention_transfer_loss(t, s)
    with pytest.raises(ValueError, match=r"p must be a finite number in \(0.0, inf\) \(got -1\)"):
        losses.attention_map(t, -1)


# --- Relational KD -------------------------------------------------------------------------------------------------
def np_rkd_distance(t, s):
    """Park et al.: distances over pairs, each set divided by its mean over distinct pairs, Huber, mean."""
    def psi(e):
        n = len(e)
        d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(n)] for i in range(n)])
        return d / d[~np.eye(n, dtype=bool)].mean()
    t, s = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (t, s))
    return np_huber(psi(s) - psi(t)).mean()


def np_rkd_angle(t, s):
    """Park et al.: cos ∠e_i e_j e_k = ⟨e_ij, e_kj⟩ for every ordered triplet (0 with a repeated point)."""
    def psi(e):
        n = len(e)
        out = np.zeros((n, n, n))
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    if i != j and k != j:
                        u, v = e[i] - e[j], e[k] - e[j]
                        out[i, j, k] = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
        return out
    t, s = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (t, s))
    return np_huber(psi(s) - psi(t)).mean()


@pytest.mark.parametrize("name", ["rkd_distance", "rkd_angle"])
def test_relational_kd_matches_the_papers_definitions(rng, name):
    t = rng.normal(size=(6, 32)).astype("float32")
    s = (rng.normal(size=(6, 3, 3, 2)) * 5).astype("float32")  # another width, and a map that is flattened
    reference = {"rkd_distance": np_rkd_distance, "rkd_angle": np_rkd_angle}[name]
    assert close(getattr(losses, name)(t, s), reference(t, s))


def test_relational_kd_ignores_the_embeddings_scale_and_rotation(rng):
    t = rng.normal(size=(6, 5)).astype("float32")
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    s = (10 * t @ rotation + 3).astype("float32")  # same relations: scaled, rotated, shifted
    assert float(losses.rkd_distance(t, s)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.rkd_angle(t, s)) == pytest.approx(0.0, abs=1e-6)


def test_relational_kd_gradients_are_finite_with_a_repeated_example(rng):
    import tensorflow as tf

    t = rng.normal(size=(4, 3)).astype("float32")
    s = tf.Variable(np.concatenate([t[:3], t[:1]]) * 2)  # two equal rows: a zero distance and zero directions
    with tf.GradientTape() as tape:
        loss = losses.rkd_distance(t, s) + losses.rkd_angle(t, s)
    assert np.isfinite(tape.gradient(loss, s).numpy()).all()


# --- Decoupled KD --------------------------------------------------------------------------------------------------
def np_dkd(t, s, labels, temperature, alpha, beta):
    """Zhao et al., example by example: binary split at the target class, then the other classes renormalised."""
    tckd = nckd = 0.0
    for z_t, z_s, y in zip(t, s, labels):
        p_t, p_s = np_softmax(z_t, temperature), np_softmax(z_s, temperature)
        tckd += np_kl([p_t[y], 1 - p_t[y]], [p_s[y], 1 - p_s[y]])
        rest = np.arange(len(z_t)) != y
        nckd += np_kl(p_t[rest] / p_t[rest].sum(), p_s[rest] / p_s[rest].sum())
    return temperature ** 2 * (alpha * tckd + beta * nckd) / len(t)


@pytest.mark.parametrize("temperature, alpha, beta", [(1.0, 1.0, 8.0), (4.0, 1.0, 1.0), (2.0, 0.5, 0.0)])
def test_decoupled_kd_matches_the_papers_split(logits, temperature, alpha, beta):
    t, s, y = logits
    assert close(losses.decoupled_kd_loss(t, s, y, temperature, alpha, beta), np_dkd(t, s, y, temperature, alpha, beta))


def test_decoupled_kd_reassembles_classic_kd_when_nckd_is_weighed_by_the_teachers_doubt(logits):
    """Zhao et al.'s identity KD = TCKD + (1 − p_y^t) · NCKD, example by example, against soft_target_loss."""
    t, s, y = logits
    for i in range(len(y)):
        doubt = 1 - np_softmax(t[i], 4.0)[y[i]]
        one = (t[i:i + 1], s[i:i + 1], y[i:i + 1], 4.0)
        rebuilt = float(losses.decoupled_kd_loss(*one, 1.0, 0.0)) + doubt * float(losses.decoupled_kd_loss(*one, 0.0, 1.0))
        assert rebuilt == pytest.approx(float(losses.soft_target_loss(t[i:i + 1], s[i:i + 1], 4.0, "kl")), rel=1e-3)


def test_decoupled_kd_stays_finite_when_the_teacher_is_certain_and_takes_its_answer_for_a_missing_label(logits):
    import tensorflow as tf

    t, s, y = logits
    certain = t.copy()
    certain[np.arange(len(y)), y] = 1e4
    s = tf.Variable(s)
    with tf.GradientTape() as tape:
        loss = losses.decoupled_kd_loss(certain, s, y, 1.0)
    assert np.isfinite(float(loss)) and np.isfinite(tape.gradient(loss, s).numpy()).all()

    unlabelled = np.full_like(y, -1)
    assert close(losses.decoupled_kd_loss(t, s, unlabelled, 2.0), np_dkd(t, s.numpy(), t.argmax(-1), 2.0, 1.0, 8.0))


# --- DIST ----------------------------------------------------------------------------------------------------------
def np_dist(t, s, temperature, beta, gamma):
    """Huang et al. with NumPy's own Pearson coefficient: rows (examples), then columns (classes)."""
    p_t, p_s = np_softmax(t, temperature), np_softmax(s, temperature)
    inter = 1 - np.mean([np.corrcoef(p_s[i], p_t[i])[0, 1] for i in range(len(p_t))])
    intra = 1 - np.mean([np.corrcoef(p_s[:, c], p_t[:, c])[0, 1] for c in range(p_t.shape[1])])
    return temperature ** 2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize("temperature, beta, gamma", [(1.0, 1.0, 1.0), (4.0, 2.0, 0.5)])
def test_dist_matches_pearson_by_row_and_by_column(logits, temperature, beta, gamma):
    t, s, _ = logits
    assert close(losses.dist_loss(t, s, temperature, beta, gamma), np_dist(t, s, temperature, beta, gamma))


# --- Logit standardisation -----------------------------------------------------------------------------------------
def test_standardised_logits_have_mean_zero_and_the_base_temperatures_spread(logits):
    t, _, _ = logits
    z = np.asarray(losses.standardise_logits(t, 2.0))
    expected = (t - t.mean(-1, keepdims=True)) / (t.std(-1, ddof=1, keepdims=True) + 1e-7) / 2.0
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    sequence = np.asarray(losses.standardise_logits(t.reshape(3, 4, 7)))
    np.testing.assert_allclose(sequence.reshape(12, 7), expected * 2.0, rtol=1e-5, atol=1e-6)


def test_standardised_soft_loss_asks_only_for_the_logits_shape(logits):
    t, s, _ = logits
    def z(x):
        return (x - x.mean(-1, keepdims=True)) / x.std(-1, ddof=1, keepdims=True)

    expected = np.mean([np_kl(np_softmax(z(a), 3.0), np_softmax(z(b), 3.0)) for a, b in zip(t, s)]) * 9.0
    assert close(losses.standardised_soft_loss(t, s, 3.0), expected)
    shifted_and_scaled = 0.1 * t - 5.0  # the same ranking, a range a small student could reach
    assert float(losses.standardised_soft_loss(t, shifted_and_scaled, 3.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.soft_target_loss(t, shifted_and_scaled, 3.0, "kl")) > 0.1


# --- Language models: reverse KL and generalised JSD ---------------------------------------------------------------
def np_gkd(t, s, beta, temperature, mask=None):
    """Agarwal et al. token by token, m = β p_t + (1 − β) p_s; β = 0 and 1 are forward and reverse KL."""
    p_t, p_s = np_softmax(t, temperature), np_softmax(s, temperature)
    flat_t, flat_s = p_t.reshape(-1, p_t.shape[-1]), p_s.reshape(-1, p_s.shape[-1])
    keep = np.ones(len(flat_t), bool) if mask is None else np.asarray(mask, bool).ravel()
    values = []
    for a, b, k in zip(flat_t, flat_s, keep):
        if not k:
            continue
        m = beta * a + (1 - beta) * b
        values.append(np_kl(a, b) if beta == 0 else np_kl(b, a) if beta == 1 else
                      beta * np_kl(a, m) + (1 - beta) * np_kl(b, m))
    return temperature ** 2 * np.mean(values)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_generalized_jsd_matches_the_papers_definition_over_masked_sequences(rng, beta, temperature):
    t = (rng.normal(size=(3, 5, 11)) * 3).astype("float32")
    s = rng.normal(size=(3, 5, 11)).astype("float32")
    mask = rng.random((3, 5)) > 0.3
    assert close(losses.generalized_jsd_loss(t, s, beta, temperature, mask), np_gkd(t, s, beta, temperature, mask))
    assert close(losses.generalized_jsd_loss(t[:, 0], s[:, 0], beta, temperature), np_gkd(t[:, 0], s[:, 0], beta,
                                                                                          temperature))


def test_reverse_kl_is_the_students_kl_from_the_teacher_and_differs_from_the_forward_one(logits):
    t, s, _ = logits
    reverse = np.mean([np_kl(np_softmax(b, 2.0), np_softmax(a, 2.0)) for a, b in zip(t, s)]) * 4.0
    assert close(losses.reverse_kl_loss(t, s, 2.0), reverse)
    assert abs(reverse - float(losses.soft_target_loss(t, s, 2.0, "kl"))) > 0.1 * reverse


def test_generalized_jsd_near_its_ends_tends_to_the_two_kls_scaled_by_its_weight(logits):
    t, s, _ = logits
    assert float(losses.generalized_jsd_loss(t, s, 1e-4)) / 1e-4 == pytest.approx(
        float(losses.generalized_jsd_loss(t, s, 0.0)), rel=1e-2)
    assert float(losses.generalized_jsd_loss(t, s, 1 - 1e-4)) / 1e-4 == pytest.approx(
        float(losses.reverse_kl_loss(t, s)), rel=1e-2)


# --- Schedules -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, middle", [("constant", 8.0), ("linear", 5.0), ("cosine", 5.0)])
def test_schedules_run_from_start_on_the_first_epoch_to_end_on_the_last(kind, middle):
    assert losses.schedule(kind, 8.0, 2.0, 0, 11) == pytest.approx(8.0)
    assert losses.schedule(kind, 8.0, 2.0, 5, 11) == pytest.approx(middle)
    assert losses.schedule(kind, 8.0, 2.0, 10, 11) == pytest.approx(8.0 if kind == "constant" else 2.0)
    assert losses.schedule(kind, 8.0, 2.0, 0, 1) == pytest.approx(8.0)


def test_cosine_moves_slowly_at_the_ends_and_linear_evenly():
    cosine = [losses.schedule("cosine", 1.0, 0.0, e, 11) for e in range(11)]
    linear = [losses.schedule("linear", 1.0, 0.0, e, 11) for e in range(11)]
    assert cosine[0] - cosine[1] < linear[0] - linear[1] < cosine[5] - cosine[6]
    assert losses.schedule("cosine", 1.0, 0.0, 2.5, 11) == pytest.approx((1 + np.cos(np.pi * 0.25)) / 2)


# --- Parameters ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda t, s, y: losses.decoupled_kd_loss(t, s, y, 0.0), r"temperature must be > 0.0 \(got 0.0\); allowed"),
    (lambda t, s, y: losses.decoupled_kd_loss(t, s, y, 4.0, nckd_weight=-1), "nckd_weight must be a finite number in"),
    (lambda t, s, y: losses.decoupled_kd_loss(t, s, y, 4.0, tckd_weight=float("nan")), "tckd_weight must be a finite"),
    (lambda t, s, y: losses.dist_loss(t, s, 1e6), "temperature must be <= 100.0"),
    (lambda t, s, y: losses.dist_loss(t, s, 1.0, intra_weight=True), r"intra_weight must be .* \(got True\)"),
    (lambda t, s, y: losses.standardise_logits(t, -1.0), "temperature must be > 0.0"),
    (lambda t, s, y: losses.generalized_jsd_loss(t, s, beta=1.5), r"beta must be a finite number in \[0.0, 1.0\]"),
    (lambda t, s, y: losses.reverse_kl_loss(t, s, float("nan")), "temperature must be a finite number"),
    (lambda t, s, y: losses.schedule("step", 1, 0, 0, 3), "schedule must be one of constant, linear, cosine"),
    (lambda t, s, y: losses.schedule("linear", 1, 0, 3, 3), r"epoch must be a finite number in \[0.0, 2\]"),
    (lambda t, s, y: losses.schedule("linear", 1, 0, 0, 0), "epochs must be a whole number >= 1"),
    (lambda t, s, y: losses.schedule("linear", float("inf"), 0, 0, 3), "start must be a finite number"),
])
def test_bad_parameters_are_refused_by_name(logits, call, message):
    with pytest.raises(ValueError, match=message):
        call(*logits)


@pytest.mark.slow  # tracing eight losses takes ~5 s
def test_every_method_runs_inside_a_compiled_step_with_an_unknown_batch_size(rng):
    import tensorflow as tf

    def spec(*shape):
        return tf.TensorSpec((None, *shape), tf.float32)

    @tf.function(input_signature=[spec(4, 4, 3), spec(4, 4, 2), spec(6), spec(6)])
    def all_losses(map_t, map_s, t, s):
        y = tf.zeros_like(tf.argmax(t, -1))
        return [losses.attention_transfer_loss(map_t, map_s), losses.rkd_distance(map_t, map_s),
                losses.rkd_angle(map_t, map_s), losses.decoupled_kd_loss(t, s, y, 2.0), losses.dist_loss(t, s, 2.0),
                losses.standardised_soft_loss(t, s, 2.0), losses.generalized_jsd_loss(t, s, 0.5, 2.0),
                losses.reverse_kl_loss(t, s, 2.0)]

    values = all_losses(*(rng.normal(size=shape).astype("float32") for shape in
                          [(5, 4, 4, 3), (5, 4, 4, 2), (5, 6), (5, 6)]))
    assert all(np.isfinite(float(v)) and float(v) > 0 for v in values)


# --- Each method trains a real model -------------------------------------------------------------------------------
METHODS = {
    "attention_transfer": lambda out_t, out_s, y: losses.attention_transfer_loss(out_t[0], out_s[0]),
    "rkd_distance": lambda out_t, out_s, y: losses.rkd_distance(out_t[0], out_s[0]),
    "rkd_angle": lambda out_t, out_s, y: losses.rkd_angle(out_t[0], out_s[0]),
    "decoupled_kd": lambda out_t, out_s, y: losses.decoupled_kd_loss(out_t[1], out_s[1], y, 4.0),
    "dist": lambda out_t, out_s, y: losses.dist_loss(out_t[1], out_s[1], 1.0),
    "standardised_kd": lambda out_t, out_s, y: losses.standardised_soft_loss(out_t[1], out_s[1], 2.0),
    "generalized_jsd": lambda out_t, out_s, y: losses.generalized_jsd_loss(out_t[1], out_s[1], 0.5),
    "reverse_kl": lambda out_t, out_s, y: losses.reverse_kl_loss(out_t[1], out_s[1]),
}


def _conv_net(channels: int, seed: int):
    """A small CNN with two outputs: its (8, 8, channels) feature map and its 10 logits."""
    import keras

    keras.utils.set_random_seed(seed)
    images = keras.Input((8, 8, 1))
    features = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(images)
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(features))
    return keras.Model(images, [features, logits])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_makes_a_real_students_loss_fall(rng, method):
    import keras
    import tensorflow as tf

    images = rng.normal(size=(24, 8, 8, 1)).astype("float32")
    teacher, student = _conv_net(8, seed=1), _conv_net(3, seed=2)
    out_t = [tf.constant(o) for o in teacher(images)]
    out_t[1] = out_t[1] * 5.0  # a confident teacher, its logits a range wider than the student's
    labels = tf.argmax(out_t[1], axis=-1)
    optimizer = keras.optimizers.Adam(0.02)

    def step():
        with tf.GradientTape() as tape:
            loss = METHODS[method](out_t, student(images), labels)
        grads = tape.gradient(loss, student.trainable_variables)  # None for the logits layer under a feature loss
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, student.trainable_variables) if g is not None])
        return float(loss)

    first = step()
    for _ in range(40):
        last = step()
    assert np.isfinite(last) and last < 0.5 * first
