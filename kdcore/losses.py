"""The distillation losses, each formula written once.

Inputs are logits (NumPy arrays or tensors, shape (batch, classes)); outputs
are scalars (backend tensors: ``float(...)`` gives a Python number). These are
the functions the training loop itself calls, so what the tests check against
NumPy is exactly what trains the student.

Why soften with a temperature T? The teacher's softmax on a training digit is
nearly one-hot; its small probabilities (a 7 that looks a bit like a 1) carry
the "dark knowledge" but vanish into rounding. Dividing the logits by T > 1
before the softmax lifts them, so the student can learn the teacher's whole
similarity structure, not just its top answer (Hinton, Vinyals & Dean 2015).

Why multiply the soft term by T²? The gradient of the softened cross-entropy
with respect to a logit is (q_i - p_i) / T, and for high T its size falls like
1/T². Scaling by T² keeps the soft term's gradients the same size whatever T
is, so changing T does not silently change the balance set by ``alpha``.

This is also why ``keras.distillation.LogitsDistillation`` with its default
string loss is wrong: that applies KL divergence to raw logits, with neither a
softmax nor the T² factor. Here no code path can skip either.
"""
from __future__ import annotations

from keras import ops

from .config import validate_soft_params


def _soft_per_example(teacher_logits, student_logits, temperature: float, mode: str):
    """Per-example soft loss, before the batch mean and the T² factor."""
    t = ops.cast(teacher_logits, "float32")
    s = ops.cast(student_logits, "float32")
    if mode == "logit-mse":
        return ops.mean(ops.square(s - t), axis=-1)
    log_p_t = ops.log_softmax(t / temperature, axis=-1)
    log_p_s = ops.log_softmax(s / temperature, axis=-1)
    p_t = ops.exp(log_p_t)
    if mode == "kl":
        return ops.sum(p_t * (log_p_t - log_p_s), axis=-1)
    if mode == "soft-ce":
        return -ops.sum(p_t * log_p_s, axis=-1)
    # prob-mse
    return ops.mean(ops.square(ops.exp(log_p_s) - p_t), axis=-1) / 2.0


def soft_target_loss(teacher_logits, student_logits, temperature: float, mode: str = "kl"):
    """How far the student's softened distribution is from the teacher's.

    - ``kl``:        T² · mean_batch KL(softmax(t/T) ‖ softmax(s/T))   (Hinton et al. 2015)
    - ``soft-ce``:   T² · mean_batch −Σ softmax(t/T) · log softmax(s/T)
      (same gradient as ``kl``; its value also holds the teacher's entropy)
    - ``prob-mse``:  T² · mean over batch and classes of (softmax(s/T) − softmax(t/T))² / 2
    - ``logit-mse``: mean over batch and classes of (s − t)²; the high-T limit of
      ``kl`` (Hinton §2.1) and Caruana's logit matching, so T plays no part.
    """
    validate_soft_params(temperature, 0.0, mode)
    per_example = _soft_per_example(teacher_logits, student_logits, float(temperature), mode)
    scale = 1.0 if mode == "logit-mse" else float(temperature) ** 2
    return scale * ops.mean(per_example)


def hard_label_loss(labels, student_logits):
    """Cross-entropy with the true labels, averaged over labelled examples only.

    A label of −1 means "no label": such images teach the student only through
    the teacher's soft targets. With no labelled example in the batch the term
    is 0, not NaN.
    """
    y = ops.cast(ops.reshape(labels, (-1,)), "int32")
    labelled = ops.cast(y >= 0, "float32")
    log_p = ops.log_softmax(ops.cast(student_logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_p, ops.expand_dims(ops.maximum(y, 0), -1), axis=-1)[:, 0]
    return -ops.sum(picked * labelled) / ops.maximum(ops.sum(labelled), 1.0)


def hint_loss(hint, regressed):
    """FitNets' stage-1 loss: how far the regressed guided layer is from the teacher's hint layer.

    Romero et al. (2015, eq. 3) write it ½‖u_h − r(v_g)‖². Here it is the mean
    of the squared differences over the batch and every element of the map:
    the mean keeps its size independent of the hint layer's size (a 16×16×32
    map and a 128-unit vector give losses on one scale, so one learning rate
    suits every pair), and under Adam the constant ½ changes nothing, so it is dropped.
    """
    return ops.mean(ops.square(ops.cast(regressed, "float32") - ops.cast(hint, "float32")))


def distillation_terms(labels, student_logits, teacher_logits, temperature: float, alpha: float,
                       mode: str = "kl"):
    """(total, soft, hard) with total = alpha · soft + (1 − alpha) · hard.

    With ``alpha == 0`` the soft term is not computed (it is reported as 0):
    that is the from-scratch baseline, and it needs no teacher at all.
    """
    validate_soft_params(temperature, alpha, mode)
    hard = hard_label_loss(labels, student_logits)
    if alpha == 0 or teacher_logits is None:
        return hard, ops.zeros_like(hard), hard
    soft = soft_target_loss(teacher_logits, student_logits, temperature, mode)
    return alpha * soft + (1.0 - alpha) * hard, soft, hard


def distillation_loss(labels, student_logits, teacher_logits, temperature: float, alpha: float,
                      mode: str = "kl"):
    """alpha · soft_target_loss + (1 − alpha) · cross-entropy(labels, student_logits)."""
    return distillation_terms(labels, student_logits, teacher_logits, temperature, alpha, mode)[0]
