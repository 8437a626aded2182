"""Soft targets of a language-model teacher: run in each step, or kept as a top-k cache per word.

**Soft targets** come one of two ways (setting ``soft_targets``):

- ``online``: the teacher runs inside the training step (no gradient), with
  its own state carried along the same streams;
- ``cache``: before training, the teacher reads the training streams once and
  keeps, per token, its ``top_k`` probabilities at T (float16) and their word
  ids (uint16). 929k tokens × 10k words would be 37 GB; k = 32 is 119 MB.
  The mass r left outside the top k stays in the target (renormalising over
  the top k would make the teacher look surer than it is, the more so at
  high T, where the tail holds most of the mass); setting ``cache_rest`` says
  how it is spread over the other words:

  - ``student`` (default): in the student's own proportions. The target is
    then the teacher's top k plus "any other word" with mass r, and the KL is
    that of these k + 1 outcomes: the student is taught the top k and how much
    to leave for the rest, and nothing about the rest's shape, which the cache
    does not know;
  - ``even``: evenly, r / (V − k) each. This also teaches a shape, a uniform
    one: it is label smoothing towards the uniform distribution with weight
    alpha · r, which is known to cost perplexity (Vaswani et al. 2017, §5.4).

  Either KL is computed from the top k and a few sums per word
  (:func:`cached_soft_loss`, T² factor included) and is tested equal, value
  and gradient, to :func:`kdcore.losses.soft_target_loss` on the rebuilt full
  distribution, which is what the online way feeds it.
"""
from __future__ import annotations

import weakref

import numpy as np

from ...dataset import Dataset
from .data import streams
from .model import _runner, vocab_size, zero_state
from .settings import CACHE_REST


def teacher_cache(teacher, x: np.ndarray, y: np.ndarray, batch: int, seq_len: int, temperature: float,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's top-k probabilities at T (float16) and word ids (uint16), laid out as the training chunks."""
    import tensorflow as tf

    xs, _ = streams(x, y, batch, seq_len)
    vocab = vocab_size(teacher)
    k = min(k, vocab)
    probs = np.zeros((*xs.shape, k), "float16")
    ids = np.zeros((*xs.shape, k), "uint16" if vocab <= 2**16 else "int32")
    run = _runner(teacher)
    state = [tf.constant(s) for s in zero_state(teacher, batch)]
    for t, xc in enumerate(xs):
        logits, state = run(tf.constant(xc), state)
        top = tf.math.top_k(tf.nn.softmax(logits / temperature, axis=-1), k)
        probs[t], ids[t] = top.values.numpy(), top.indices.numpy()
    return probs, ids


_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _kept_cache(teacher, data: Dataset, batch: int, seq_len: int, temperature: float, k: int):
    """:func:`teacher_cache`, kept for the teacher's last training text and settings.

    An experiment distils the same teacher once per seed: the cache is built
    once (for full PTB a teacher pass over 929k words) and reused. Only the
    last one per teacher is kept (119 MB for full PTB at k = 32).
    """
    key = (data.name, len(data.y_train), batch, seq_len, float(temperature), k)
    kept = _CACHES.get(teacher)
    if kept is None or kept[0] != key or kept[1] is not data.x_train:
        kept = (key, data.x_train, teacher_cache(teacher, data.x_train, data.y_train, batch, seq_len, temperature, k))
        _CACHES[teacher] = kept
    return kept[2]


def cached_logits(probs, ids, vocab: int, temperature: float, rest: str = "even", student_logits=None):
    """Teacher "logits" T · log p of the full distribution rebuilt from a top-k cache (tensors, (rows, vocab)).

    The top k keep their probabilities; the mass r left over goes to the
    other ``vocab − k`` words evenly (``rest="even"``) or in proportion to
    the student's softmax at T (``rest="student"``, which needs
    ``student_logits``; no gradient flows through it). Floored at 1e-12 so
    log stays finite. softmax(logits / T) gives the rebuilt distribution
    back, so :func:`kdcore.losses.soft_target_loss` of these logits is the
    reference that :func:`cached_soft_loss` is tested against.
    """
    import tensorflow as tf

    flat_p = tf.reshape(tf.cast(probs, "float32"), (-1, probs.shape[-1]))
    k = flat_p.shape[-1]
    ids = tf.reshape(tf.cast(ids, "int32"), (-1, k))
    rows = tf.shape(flat_p)[0]
    left = tf.maximum(1.0 - tf.reduce_sum(flat_p, -1, keepdims=True), 0.0)
    if rest == "even":
        base = tf.broadcast_to(left / max(vocab - k, 1), (rows, vocab))
    else:
        q = tf.stop_gradient(tf.nn.softmax(tf.reshape(tf.cast(student_logits, "float32"), (-1, vocab))
                                           / temperature, axis=-1))
        outside = 1.0 - tf.reduce_sum(tf.gather(q, ids, batch_dims=1), -1, keepdims=True)
        base = q * left / tf.maximum(outside, 1e-12)
    index = tf.stack([tf.repeat(tf.range(rows), k), tf.reshape(ids, (-1,))], axis=1)
    dense = tf.tensor_scatter_nd_update(base, index, tf.reshape(flat_p, (-1,)))
    return temperature * tf.math.log(tf.maximum(dense, 1e-12))


def cached_soft_loss(probs, ids, student_logits, temperature: float, rest: str = "student"):
    """T² · mean over words of KL(rebuilt teacher ‖ softmax(student / T)): :func:`cached_terms`' soft term alone."""
    return cached_terms(None, student_logits, probs, ids, temperature, 1.0, rest)[1]


def cached_terms(labels, student_logits, probs, ids, temperature: float, alpha: float, rest: str = "student"):
    """(total, soft, hard) of a step fed by the top-k cache, the dense teacher never built; total = α·soft + (1 − α)·hard.

    ``soft`` is T² · mean KL(rebuilt teacher ‖ softmax(s / T)), the same value
    and gradient as ``soft_target_loss(cached_logits(..., rest), s, T, "kl")``;
    ``hard`` the next word's cross-entropy, as :func:`kdcore.losses.hard_label_loss`
    (every word of a text is labelled; ``labels=None`` leaves it out). Both
    are tested equal to ``kdcore.losses.distillation_terms`` on the rebuilt
    distribution. With z = s / T, lse = logsumexp(z), q = softmax(z), p the
    cached top k, P = Σ_top p, r = 1 − P the rest and Q = Σ_top q:

    ``rest="student"`` (the rest in the student's proportions: k + 1 outcomes)

        KL = Σ_top p (log p − log q) + r (log r − log(1 − Q))
        ∂KL/∂z = (P + r) q − p̃,  p̃ = p on the top k and r q / (1 − Q) elsewhere

    ``rest="even"`` (b = r / (V − k) on each other word, m = P + (V − k) b)

        KL = Σ_top p log p + (V − k) b log b − Σ_top p z − b (Σ_all z − Σ_top z) + m · lse
        ∂KL/∂z = m q − b − [p − b on the top k]

    and the cross-entropy's ∂/∂s is softmax(s) − onehot(y). Why one function:
    the (words × vocabulary) logits are the big tensor of a small student's
    step, and each pass over them costs. At T = 1 both terms need the same
    softmax, so it is taken once and the whole gradient is one scaled copy of
    it plus k + 1 updates per word; at another T the softmax at T is one more
    exp of the same shifted logits. Derived through log-softmaxes and gathers
    instead, the soft term cost as much as the rest of the step.
    """
    import tensorflow as tf

    if rest not in CACHE_REST:
        raise ValueError(f"cache_rest must be one of {', '.join(CACHE_REST)} (got {rest!r})")
    vocab = student_logits.shape[-1]
    p = tf.reshape(tf.cast(probs, "float32"), (-1, probs.shape[-1]))
    k = p.shape[-1]
    ids = tf.reshape(tf.cast(ids, "int32"), (-1, k))
    big_p = tf.reduce_sum(p, -1)
    left = tf.maximum(1.0 - big_p, 0.0) * (1.0 if k < vocab else 0.0)  # k = V: no other word, only rounding
    entropy_top = tf.reduce_sum(p * tf.math.log(tf.maximum(p, 1e-12)), -1)
    inv_t, t2, alpha = 1.0 / float(temperature), float(temperature) ** 2, float(alpha)
    rows = tf.shape(p)[0]
    row = tf.range(rows)
    index = tf.stack([tf.repeat(row, k), tf.reshape(ids, (-1,))], axis=1)
    y = None if labels is None else tf.reshape(tf.cast(labels, "int32"), (-1,))
    one_exp = float(temperature) == 1.0

    @tf.custom_gradient
    def terms(s):
        top = tf.reduce_max(s, -1, keepdims=True)
        shifted = s - top
        e1 = tf.exp(shifted) if (y is not None or one_exp) else None
        e = e1 if one_exp else tf.exp(shifted * inv_t)  # softmax(s / T), unnormalised
        total = tf.reduce_sum(e, -1)
        lse = top[:, 0] * inv_t + tf.math.log(total)
        z_top = tf.gather(s, ids, batch_dims=1) * inv_t
        if rest == "student":
            q_top = tf.exp(z_top - lse[:, None])
            big_q = tf.reduce_sum(q_top, -1)
            outside = tf.maximum(1.0 - big_q, 1e-6)
            kl = (entropy_top - tf.reduce_sum(p * (z_top - lse[:, None]), -1)
                  + left * (tf.math.log(tf.maximum(left, 1e-12)) - tf.math.log(outside)))
            # (P + r) q − p̃ written as one scale of q everywhere plus a correction on the top k
            scale, shift = big_p - left * big_q / outside, tf.zeros_like(big_p)
            top_update = left[:, None] * q_top / outside[:, None] - p
        else:
            b = left / max(vocab - k, 1) + 1e-12
            scale, shift = big_p + (vocab - k) * b, b
            kl = (entropy_top + (vocab - k) * b * tf.math.log(b) - tf.reduce_sum(p * z_top, -1)
                  - b * (tf.reduce_sum(s, -1) * inv_t - tf.reduce_sum(z_top, -1)) + scale * lse)
            top_update = shift[:, None] - p
        soft = t2 * tf.reduce_mean(kl)
        if y is None:
            hard = tf.zeros_like(soft)
        else:
            total_1 = total if one_exp else tf.reduce_sum(e1, -1)
            hard = tf.reduce_mean(top[:, 0] + tf.math.log(total_1) - tf.gather(s, y[:, None], batch_dims=1)[:, 0])

        def grad(d_total, d_soft=None, d_hard=None):
            n = tf.cast(rows, "float32")
            d_soft = 0.0 if d_soft is None else d_soft
            d_hard = 0.0 if d_hard is None else d_hard
            c_soft = (d_total * alpha + d_soft) * float(temperature) / n  # T² · (1/T) · (1/words)
            c_hard = (d_total * (1.0 - alpha) + d_hard) / n
            if y is None:
                g = e * (c_soft * scale / total)[:, None]
            elif one_exp:
                g = e * ((c_soft * scale + c_hard) / total)[:, None]
            else:
                g = e * (c_soft * scale / total)[:, None] + e1 * (c_hard / total_1)[:, None]
            if rest == "even":
                g = g - (c_soft * shift)[:, None]
            updates = [tf.reshape(c_soft * top_update, (-1,))]
            where = [index]
            if y is not None:
                updates.append(-tf.broadcast_to(c_hard, tf.shape(y)))
                where.append(tf.stack([row, y], axis=1))
            return tf.tensor_scatter_nd_add(g, tf.concat(where, 0), tf.concat(updates, 0))

        return (alpha * soft + (1.0 - alpha) * hard, soft, hard), grad

    return terms(tf.reshape(tf.cast(student_logits, "float32"), (-1, vocab)))


def online_terms(labels, student_logits, teacher_logits, temperature: float, alpha: float, loss: str = "kl",
                 beta: float = 0.5):
    """(total, soft, hard) of a step that runs the teacher, for each ``loss`` the task offers; total = α·soft + (1 − α)·hard.

    ``kl`` is :func:`kdcore.losses.distillation_terms`' (the teacher's whole
    softmax, which the cache's KL is tested equal to); ``reverse-kl`` and
    ``gjsd`` are :func:`kdcore.losses.reverse_kl_loss` and
    :func:`kdcore.losses.generalized_jsd_loss` (GKD's β = ``beta``), mixed
    with the next word's cross-entropy as the KL is. Both already carry T².
    With ``alpha`` = 0 or no teacher the soft term is not computed (reported 0).
    """
    from ...losses import distillation_terms, generalized_jsd_loss, hard_label_loss, reverse_kl_loss

    if loss == "kl" or alpha == 0 or teacher_logits is None:
        return distillation_terms(labels, student_logits, teacher_logits, temperature,
                                  alpha if teacher_logits is not None else 0.0, "kl")
    soft = (reverse_kl_loss(teacher_logits, student_logits, temperature) if loss == "reverse-kl"
            else generalized_jsd_loss(teacher_logits, student_logits, beta, temperature))
    hard = hard_label_loss(labels, student_logits)
    return alpha * soft + (1.0 - alpha) * hard, soft, hard
