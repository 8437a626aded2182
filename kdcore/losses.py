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

from . import params


def _check_soft(temperature, alpha, mode) -> None:
    """The loss's own settings, checked against the table: a loss may be called without a validated config."""
    params.check("temperature", temperature)
    params.check("alpha", alpha)
    params.check("loss", mode)


def soft_targets(teacher_logits, temperature: float, mode: str = "kl"):
    """The teacher's side of the soft term, per example: what a training step reads instead of its logits.

    It depends on the teacher alone, so :func:`kdcore.training.fit` computes it
    once per run for the whole training set and no step softens the teacher's
    logits again:

    - ``soft-ce``, ``prob-mse``: p_t = softmax(t/T);
    - ``kl``: p_t, then Σ p_t · log p_t (minus the teacher's entropy) as one more
      column, because KL(p_t ‖ p_s) = Σ p_t · log p_t − Σ p_t · log p_s: a step
      then needs the student's side and one addition;
    - ``logit-mse``: the logits themselves.
    """
    _check_soft(temperature, 0.0, mode)
    t = ops.cast(teacher_logits, "float32")
    if mode == "logit-mse":
        return t
    log_p_t = ops.log_softmax(t / float(temperature), axis=-1)
    p_t = ops.exp(log_p_t)
    if mode == "kl":
        return ops.concatenate([p_t, ops.sum(p_t * log_p_t, axis=-1, keepdims=True)], axis=-1)
    return p_t


def _soft_per_example(targets, s, temperature: float, mode: str):
    """Per-example ``prob-mse`` or ``logit-mse`` loss, before the batch mean and the T² factor."""
    if mode == "logit-mse":
        return ops.mean(ops.square(s - targets), axis=-1)
    return ops.mean(ops.square(ops.softmax(s / temperature, axis=-1) - targets), axis=-1) / 2.0


def _softened_cross_entropy(targets, s, temperature: float, mode: str):
    """``kl`` and ``soft-ce``: T² · mean_batch of −Σ p_t · log softmax(s/T), plus Σ p_t · log p_t for ``kl``.

    Both have the same gradient with respect to the student's logits,
    T² · (softmax(s/T) − p_t) / T / batch (see the module docstring on T²), and
    it is written out here: differentiating the batch mean of a batch of
    unknown size automatically costs about twenty small shape and broadcast
    operations per step, which were most of distillation's extra cost over
    training from scratch.
    """
    p_t = targets[:, :-1] if mode == "kl" else targets

    @ops.custom_gradient
    def loss(z):
        log_q = ops.log_softmax(z / temperature, axis=-1)
        per_example = -ops.sum(p_t * log_q, axis=-1)
        if mode == "kl":
            per_example = per_example + targets[:, -1]

        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            batch = ops.cast(ops.shape(z)[0], "float32")
            return upstream * (temperature / batch) * (ops.exp(log_q) - p_t)

        return temperature ** 2 * ops.mean(per_example), grad

    return loss(s)


def _scaled_soft(targets, student_logits, temperature: float, mode: str):
    s, temperature = ops.cast(student_logits, "float32"), float(temperature)
    if mode in ("kl", "soft-ce"):
        return _softened_cross_entropy(targets, s, temperature, mode)
    scale = 1.0 if mode == "logit-mse" else temperature ** 2
    return scale * ops.mean(_soft_per_example(targets, s, temperature, mode))


def soft_target_loss(teacher_logits, student_logits, temperature: float, mode: str = "kl"):
    """How far the student's softened distribution is from the teacher's.

    - ``kl``:        T² · mean_batch KL(softmax(t/T) ‖ softmax(s/T))   (Hinton et al. 2015)
    - ``soft-ce``:   T² · mean_batch −Σ softmax(t/T) · log softmax(s/T)
      (same gradient as ``kl``; its value also holds the teacher's entropy);
      TinyBERT's prediction-layer loss L_pred = CE(z^T/t, z^S/t) (Jiao et al. 2020, eq. 6)
    - ``prob-mse``:  T² · mean over batch and classes of (softmax(s/T) − softmax(t/T))² / 2
    - ``logit-mse``: mean over batch and classes of (s − t)²; the high-T limit of
      ``kl`` (Hinton §2.1) and Caruana's logit matching, so T plays no part.
    """
    return _scaled_soft(soft_targets(teacher_logits, temperature, mode), student_logits, temperature, mode)


def hard_label_loss(labels, student_logits):
    """Cross-entropy with the true labels, averaged over labelled examples only.

    A label of −1 means "no label": such images teach the student only through
    the teacher's soft targets. With no labelled example in the batch the term
    is 0, not NaN.
    """
    y = ops.cast(ops.reshape(labels, (-1,)), "int32")
    labelled = ops.cast(y >= 0, "float32")
    # One fused kernel (TensorFlow's sparse softmax cross-entropy) gives -log p_y and its gradient softmax − onehot
    # together, where a log-softmax, a gather and their automatic gradient pass over the logits several times more:
    # with a 10,000-word vocabulary those passes are much of a small language model's step.
    per_example = ops.sparse_categorical_crossentropy(ops.maximum(y, 0), ops.cast(student_logits, "float32"),
                                                      from_logits=True)
    return ops.sum(per_example * labelled) / ops.maximum(ops.sum(labelled), 1.0)


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
    _check_soft(temperature, alpha, mode)
    targets = None if alpha == 0 or teacher_logits is None else soft_targets(teacher_logits, temperature, mode)
    return terms_from_targets(labels, student_logits, targets, temperature, alpha, mode)


def terms_from_targets(labels, student_logits, targets, temperature: float, alpha: float, mode: str = "kl"):
    """:func:`distillation_terms` with the teacher's side already turned into :func:`soft_targets`."""
    _check_soft(temperature, alpha, mode)
    hard = hard_label_loss(labels, student_logits)
    if alpha == 0 or targets is None:
        return hard, ops.zeros_like(hard), hard
    soft = _scaled_soft(targets, student_logits, temperature, mode)
    return alpha * soft + (1.0 - alpha) * hard, soft, hard


def distillation_loss(labels, student_logits, teacher_logits, temperature: float, alpha: float,
                      mode: str = "kl"):
    """alpha · soft_target_loss + (1 − alpha) · cross-entropy(labels, student_logits)."""
    return distillation_terms(labels, student_logits, teacher_logits, temperature, alpha, mode)[0]


# --- TinyBERT's layer-wise terms (Jiao et al. 2020), used by kdcore.tasks.text -------------------
def token_mse(teacher, student, mask):
    """TinyBERT's embedding-layer and hidden-state loss: MSE(H^S W, H^T) over the real tokens of a batch.

    Jiao et al. (2020) write the hidden-state term L_hidn = MSE(H^S W_h, H^T)
    (eq. 4) and the embedding term L_embd = MSE(E^S W_e, E^T) (eq. 5): the
    student's (batch, tokens, d') states, multiplied by a learned d' × d matrix
    W so that a narrower student can be compared with the teacher at all, are
    pulled towards the teacher's (batch, tokens, d). ``student`` arrives
    projected already (the projections are layers that train with the
    student). Why match hidden states at all? The logits say only what the
    teacher concluded; its layers show how it got there, and a small student
    trained on 10k sentences learns the route faster than the answer.

    ``mask`` (batch, tokens) is True on real tokens: padding positions are left
    out of the mean (their states say nothing about the sentence, and short
    sentences would otherwise be mostly padding). The mean is over real
    tokens and the d features, so the term's size does not depend on d or
    on sentence length.
    """
    m = ops.cast(mask, "float32")[..., None]
    sq = ops.square(ops.cast(student, "float32") - ops.cast(teacher, "float32")) * m
    return ops.sum(sq) / ops.maximum(ops.sum(m) * ops.cast(ops.shape(teacher)[-1], "float32"), 1.0)


def attention_score_loss(teacher_scores, student_scores, mask):
    """TinyBERT's attention loss: L_attn = (1/h) Σ_i MSE(A_i^S, A_i^T) (Jiao et al. 2020, eq. 3).

    A_i = Q_i K_iᵀ / √d_k is head i's attention matrix (batch, heads, tokens,
    tokens) **before the softmax**: the paper uses the unnormalised scores
    because they converged faster and better than the softmax outputs in
    its experiments (the softmax squashes differences among the small weights).
    Why attention at all? Clark et al. (2019) found BERT's heads encode much
    of its linguistic knowledge (syntax, coreference); matching them hands
    that structure to the student directly.

    Only pairs of real tokens count (``mask``: (batch, tokens), True on real
    tokens): padded keys are masked to −∞ in the model, so their raw scores
    mean nothing. When the student has fewer heads than the teacher (h_T a
    multiple of h_S), student head j learns the mean of teacher heads
    j·k … j·k + k − 1, k = h_T / h_S: a choice of ours, the paper keeps equal
    head counts. The mean over heads and real pairs keeps the term's scale
    independent of both.
    """
    t = ops.cast(teacher_scores, "float32")
    s = ops.cast(student_scores, "float32")
    heads_t, heads_s, n = t.shape[1], s.shape[1], t.shape[-1]
    if heads_t != heads_s:
        t = ops.mean(ops.reshape(t, (-1, heads_s, heads_t // heads_s, n, n)), axis=2)
    m = ops.cast(mask, "float32")
    pairs = (m[:, :, None] * m[:, None, :])[:, None]  # (batch, 1, tokens, tokens)
    total = ops.sum(ops.square(s - t) * pairs)
    return total / ops.maximum(ops.sum(pairs) * heads_s, 1.0)


def masked_lm_loss(targets, logits, weights):
    """BERT's masked-language-model loss: −log p(original word) at each masked position, averaged.

    Devlin et al. (2019) hide 15 % of a sentence's words and train the encoder
    to name them from both sides' context; the loss is the cross-entropy of
    the vocabulary softmax at the masked positions only (the others are
    visible, so predicting them teaches nothing). TinyBERT's general stage
    distils a teacher that learned this way; KD Studio's text teacher can do
    it on the unlabelled text available offline before it learns sentiment
    (``kdcore.tasks.text.pretrain``). ``targets`` and ``weights`` are (batch,
    picks): a sentence has a fixed number of picks and ``weights`` is 0 on the
    unused ones, so the mean is over real masked words only.
    """
    w = ops.cast(weights, "float32")
    per_pick = ops.sparse_categorical_crossentropy(ops.cast(targets, "int32"), ops.cast(logits, "float32"),
                                                   from_logits=True)
    return ops.sum(per_pick * w) / ops.maximum(ops.sum(w), 1.0)
