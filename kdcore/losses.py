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

import math

from keras import ops

from . import params
from .params import SCHEDULES


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


# --- More distillation methods: each paper's loss, checked against NumPy in tests/test_losses_methods.py ---------
# Teacher first, student second, as above. Where a paper and its authors' code differ, the docstring says which was
# followed. A setting of the settings table (temperature) is checked by its row; the methods' own weights by _number.
_MASKED = 1e9  # subtracted from a logit to drop its class from a softmax (exp(−1e9) is exactly 0 in float32)


def _number(name: str, value, low: float = -math.inf, high: float = math.inf, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite number in the range, else one ``ValueError`` naming ``name``."""
    inside = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and (value > low if low_open else value >= low) and value <= high)
    if not inside:
        bounds = f"{'(' if low_open else '['}{low}, {high}{']' if high < math.inf else ')'}"
        allowed = "" if low == -math.inf else f" in {bounds}"
        raise ValueError(f"{name} must be a finite number{allowed} (got {value!r})")
    return float(value)


def _temperature(temperature) -> float:
    return float(params.check("temperature", temperature))


def _kl(log_p, log_q):
    """KL(p ‖ q) = Σ p · (log p − log q) over the last axis, from log-probabilities (a class with p = 0 adds 0)."""
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


def attention_map(features, p: float = 2.0):
    """Zagoruyko & Komodakis's spatial attention: Q = Σ_c |A_c|^p over channels, flattened, divided by ‖Q‖₂.

    ``features`` is a (batch, H, W, C) map; the result is (batch, H·W). Summing
    over channels is what lets a student with fewer channels be compared with
    its teacher at all: only *where* the network looks is kept, not what its
    channels compute there. Dividing by the norm keeps only the map's shape,
    not its size, which differs between networks; the paper reports the
    normalisation is what makes the student train well. A larger p weighs the most active places more (the paper
    uses p = 2). The authors' code takes the mean over channels instead of the
    sum, which the normalisation cancels.
    """
    a = ops.power(ops.abs(ops.cast(features, "float32")), _number("p", p, 0.0, low_open=True))
    q = ops.reshape(ops.sum(a, axis=-1), (ops.shape(a)[0], -1))
    return q / ops.maximum(ops.norm(q, axis=-1, keepdims=True), 1e-12)


def attention_transfer_loss(teacher_features, student_features, p: float = 2.0):
    """Attention Transfer (Zagoruyko & Komodakis 2017): mean over the batch of ‖Q_s/‖Q_s‖ − Q_t/‖Q_t‖‖₂.

    Q is :func:`attention_map` of a (batch, H, W, C) feature map; the channel
    counts may differ, the height and width may not. Why: a student that
    looks at the same parts of an image as its teacher learns faster than one
    told only the teacher's answer, and the attention map is a hint that costs
    no regressor (FitNets' hint needs one to match channel counts). The paper
    writes the distance as the p-norm with p = 2 and weighs it β/2 (β is the
    caller's weight); its code (szagoruyko/attention-transfer, mdistiller's AT)
    uses the mean squared difference per position instead, ‖·‖₂²/(H·W),
    for which β = 1000 was tuned. This follows the paper's equation, whose size
    does not depend on H·W.
    """
    t_shape, s_shape = tuple(ops.shape(teacher_features)), tuple(ops.shape(student_features))
    if len(t_shape) != 4 or len(s_shape) != 4 or t_shape[1:3] != s_shape[1:3]:
        raise ValueError(f"attention transfer needs (batch, H, W, C) maps of equal H and W "
                         f"(got teacher {t_shape}, student {s_shape}); pool or upsample one of them first")
    difference = attention_map(student_features, p) - attention_map(teacher_features, p)
    return ops.mean(ops.norm(difference, axis=-1))


def _flat(features):
    x = ops.cast(features, "float32")
    return ops.reshape(x, (ops.shape(x)[0], -1))


def _smooth_l1(a, b):
    """Huber loss with δ = 1 (PyTorch's ``smooth_l1_loss``, which RKD's code uses): ½x² below 1, |x| − ½ above."""
    x = ops.abs(a - b)
    return ops.mean(ops.where(x < 1.0, 0.5 * ops.square(x), x - 0.5))


def _normalised_distances(e):
    """Every pairwise Euclidean distance of a batch, divided by their mean over pairs of distinct points.

    The small floor under the squared distance keeps the square root's
    gradient finite on the diagonal, which is then set to exactly 0.
    """
    squared = ops.sum(ops.square(e[:, None, :] - e[None, :, :]), axis=-1)
    n = ops.shape(e)[0]
    d = ops.sqrt(ops.maximum(squared, 1e-12)) * (1.0 - ops.eye(n))
    positive = ops.sum(ops.cast(d > 0, "float32"))
    return d / ops.maximum(ops.sum(d) / ops.maximum(positive, 1.0), 1e-12)


def rkd_distance(teacher_features, student_features):
    """Relational KD's distance-wise loss (Park et al. 2019): smooth-L1 between normalised distance matrices.

    ψ_D(t_i, t_j) = ‖t_i − t_j‖₂ / μ, with μ the mean distance over the
    batch's pairs; the student's ψ_D is pulled towards the teacher's with
    the Huber loss (δ = 1). Why relations: the student need not reproduce the
    teacher's embedding, which may be wider, only how far apart it puts
    the examples of a batch; dividing by μ makes that independent of the two
    embeddings' scales, and Huber keeps a few outlying pairs from dominating.
    ``features`` are (batch, d), d may differ between teacher and student
    (a feature map is flattened). Following the authors' code (lenscloth/RKD,
    mdistiller's RKD), μ is the mean of the non-zero distances and the loss
    is the mean over all batch² pairs, the paper's sum divided by a constant.
    """
    return _smooth_l1(_normalised_distances(_flat(student_features)), _normalised_distances(_flat(teacher_features)))


def _triplet_cosines(e):
    """cos ∠(e_j, e_i, e_k) for every triplet: (batch, batch, batch), 0 where two of the points coincide."""
    directions = e[None, :, :] - e[:, None, :]  # [i, j] = e_j − e_i
    unit = directions / ops.sqrt(ops.maximum(ops.sum(ops.square(directions), axis=-1, keepdims=True), 1e-24))
    return ops.matmul(unit, ops.transpose(unit, (0, 2, 1)))


def rkd_angle(teacher_features, student_features):
    """Relational KD's angle-wise loss (Park et al. 2019): smooth-L1 between the angles of every triplet.

    ψ_A(t_i, t_j, t_k) = cos ∠t_i t_j t_k = ⟨e_ij, e_kj⟩ with e_ij = (t_i − t_j)/‖t_i − t_j‖:
    a second-order relation, where :func:`rkd_distance`'s is of first order, and
    angles need no normalising at all (they do not change with scale). As in
    the authors' code, the loss is the mean of the Huber loss over all batch³
    ordered triplets (those with a repeated point contribute 0 on both sides);
    memory grows as batch³ · d, so keep batches to a few dozen.
    """
    return _smooth_l1(_triplet_cosines(_flat(student_features)), _triplet_cosines(_flat(teacher_features)))


def _target_or_rest(z, target):
    """log [p_y, 1 − p_y] of softmax(z) per row, the rest's mass from its own log-sum-exp: exact when p_y ≈ 1."""
    log_all = ops.logsumexp(z, axis=-1, keepdims=True)
    log_target = ops.sum(z * target, axis=-1, keepdims=True) - log_all
    log_rest = ops.logsumexp(z - _MASKED * target, axis=-1, keepdims=True) - log_all
    return ops.concatenate([log_target, log_rest], axis=-1)


def decoupled_kd_loss(teacher_logits, student_logits, labels, temperature: float, tckd_weight: float = 1.0,
                      nckd_weight: float = 8.0):
    """Decoupled KD (Zhao et al. 2022): α · TCKD + β · NCKD, both at T and scaled by T².

    Zhao et al. show the classic KL term splits exactly into
    KD = TCKD + (1 − p_y^t) · NCKD, where
    - TCKD = KL(b^t ‖ b^s) on the binary split b = [p_y, 1 − p_y] (target class
      vs the rest): how sure the teacher is of the right answer;
    - NCKD = KL(p̂^t ‖ p̂^s) over the non-target classes alone, renormalised
      (target masked out): the "dark knowledge" of which wrong classes look alike.
    Why decouple: in the classic sum NCKD is weighed by 1 − p_y^t, so the
    better the teacher knows an example, the less its dark knowledge counts;
    weighing it by a free β (``nckd_weight``: mdistiller's default 8, tuned
    per teacher–student pair in the paper) restores it. ``tckd_weight`` is α (1 in the paper). Both are T²-scaled for
    the reason in the module docstring, as in mdistiller's DKD, which this
    follows; unlike that code it never takes the log of a probability, so a
    teacher certain of the target gives 0, not NaN. A label of −1 ("no label",
    as in :func:`hard_label_loss`) takes the teacher's top class as the target.
    """
    temperature = _temperature(temperature)
    alpha = _number("tckd_weight", tckd_weight, 0.0)
    beta = _number("nckd_weight", nckd_weight, 0.0)
    t = ops.cast(teacher_logits, "float32") / temperature
    s = ops.cast(student_logits, "float32") / temperature
    y = ops.cast(ops.reshape(labels, (-1,)), "int32")
    y = ops.where(y >= 0, y, ops.cast(ops.argmax(t, axis=-1), "int32"))
    target = ops.one_hot(y, ops.shape(s)[-1])
    tckd = ops.mean(_kl(_target_or_rest(t, target), _target_or_rest(s, target)))
    nckd = ops.mean(_kl(ops.log_softmax(t - _MASKED * target, axis=-1), ops.log_softmax(s - _MASKED * target, axis=-1)))
    return temperature ** 2 * (alpha * tckd + beta * nckd)


def _mean_pearson(a, b):
    """Pearson's correlation between the rows of a and of b, averaged over rows (ε under the norms, as DIST's code)."""
    a = a - ops.mean(a, axis=-1, keepdims=True)
    b = b - ops.mean(b, axis=-1, keepdims=True)
    norms = ops.norm(a, axis=-1) * ops.norm(b, axis=-1)
    return ops.mean(ops.sum(a * b, axis=-1) / (norms + 1e-8))


def dist_loss(teacher_logits, student_logits, temperature: float, inter_weight: float = 1.0,
              intra_weight: float = 1.0):
    """DIST (Huang et al. 2022): β · inter-class + γ · intra-class relation loss, at T and scaled by T².

    With p = softmax(z/T), per example (a row):
    inter = 1 − mean over examples of Pearson(p^s_i, p^t_i); per class (a
    column across the batch): intra = 1 − mean over classes of
    Pearson(p^s_·c, p^t_·c). Why correlation instead of KL: KL asks the
    student for the teacher's exact probabilities, which a much smaller
    student may not reach; Pearson's correlation is unchanged when the
    student's probabilities are shifted and scaled, so only their relations
    must match: the ranking of classes for an example (inter) and how the
    examples of a batch share one class (intra). ``inter_weight`` is β,
    ``intra_weight`` γ (both 1 by default in the authors' code). The T²
    factor follows the authors' classification code (linked from
    hunto/DIST_KD), which multiplies each term by τ²; the paper states the
    loss at τ without it.
    """
    temperature = _temperature(temperature)
    beta = _number("inter_weight", inter_weight, 0.0)
    gamma = _number("intra_weight", intra_weight, 0.0)
    p_t = ops.softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    p_s = ops.softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    inter = 1.0 - _mean_pearson(p_s, p_t)
    intra = 1.0 - _mean_pearson(ops.transpose(p_s), ops.transpose(p_t))
    return temperature ** 2 * (beta * inter + gamma * intra)


def standardise_logits(logits, temperature: float = 1.0):
    """Logit standardisation (Sun et al. 2024): Z(z) = (z − mean(z)) / std(z) / τ, per example.

    τ is the base temperature. Why: classic KD divides teacher and student
    logits by one shared T, so a student whose softmax is to match the
    teacher's must also match its logits' range; a small student often cannot
    (and the paper argues it need not: the ranking of the logits, their shape,
    is what carries the knowledge). After the z-score both have mean 0 and
    standard deviation 1/τ, so only the shape is left to learn. As in the
    authors' code (sunshangquan/logit-standardization-KD) the standard
    deviation is the unbiased one (divided by K − 1) plus 10⁻⁷; the paper
    writes 1/K, a difference of √(K/(K − 1)) in the scale that τ absorbs.
    The last axis holds the classes, so (batch, time, vocab) works too.
    """
    temperature = _temperature(temperature)
    z = ops.cast(logits, "float32")
    centred = z - ops.mean(z, axis=-1, keepdims=True)
    classes = ops.cast(ops.shape(z)[-1], "float32")
    std = ops.sqrt(ops.sum(ops.square(centred), axis=-1, keepdims=True) / (classes - 1.0))
    return centred / (std + 1e-7) / temperature


def standardised_soft_loss(teacher_logits, student_logits, temperature: float, mode: str = "kl"):
    """:func:`soft_target_loss` between :func:`standardise_logits` of both sides: the paper's KD with ``logit_stand``.

    The standardised logits are divided by ``temperature`` once, inside the
    soft loss (it is the base temperature τ); the T² factor stays, as in the
    authors' code.
    """
    return soft_target_loss(standardise_logits(teacher_logits), standardise_logits(student_logits), temperature, mode)


def _masked_token_mean(per_token, mask):
    """Mean of a per-position value over the positions where ``mask`` is true (all of them when it is None)."""
    if mask is None:
        return ops.mean(per_token)
    m = ops.cast(mask, "float32")
    return ops.sum(per_token * m) / ops.maximum(ops.sum(m), 1.0)


def generalized_jsd_loss(teacher_logits, student_logits, beta: float = 0.5, temperature: float = 1.0, mask=None):
    """GKD's generalised Jensen–Shannon divergence (Agarwal et al. 2024), per token, times T².

    JSD(β) = β · KL(p_t ‖ m) + (1 − β) · KL(p_s ‖ m), m = β · p_t + (1 − β) · p_s,
    with p = softmax(logits/T) over the last axis. Logits are (batch, vocab)
    or (batch, time, vocab); ``mask`` (batch[, time]) is true on the positions
    that count (the mean is over those). Why not the forward KL of
    :func:`soft_target_loss`? It makes a student cover every word the teacher
    might say, and a small language model that cannot spreads its mass over
    nonsense; the reverse KL makes it pick the teacher's likeliest words
    (mode seeking), and JSD(β) moves between the two: JSD(β)/β tends to the
    forward KL(p_t ‖ p_s) as β → 0 and JSD(β)/(1 − β) to the reverse
    KL(p_s ‖ p_t) as β → 1. JSD(0) and JSD(1) themselves are 0 for every
    student, so β = 0 and β = 1 give those two KLs instead (note the jump in
    scale: near an end the loss is β or 1 − β times the KL), as TRL's
    ``generalized_jsd_loss`` does, whose convention (β on the teacher's side
    of m) and per-token mean this follows. m is formed in log space (log-sum-exp),
    so a word both give almost no mass stays finite. TRL divides by T but does
    not multiply by T²; here the T² of the module docstring keeps the
    gradient's size as T changes (at T = 1 the two agree).
    """
    beta = _number("beta", beta, 0.0, 1.0)
    temperature = _temperature(temperature)
    log_t = ops.log_softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    log_s = ops.log_softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    if beta == 0.0:
        per_token = _kl(log_t, log_s)
    elif beta == 1.0:
        per_token = _kl(log_s, log_t)
    else:
        log_m = ops.logsumexp(ops.stack([log_t + ops.log(beta), log_s + ops.log(1.0 - beta)]), axis=0)
        per_token = beta * _kl(log_t, log_m) + (1.0 - beta) * _kl(log_s, log_m)
    return temperature ** 2 * _masked_token_mean(per_token, mask)


def reverse_kl_loss(teacher_logits, student_logits, temperature: float = 1.0, mask=None):
    """T² · mean over (real) tokens of KL(p_s ‖ p_t), the mode-seeking divergence: :func:`generalized_jsd_loss`, β = 1.

    Gu et al. (2024, MiniLLM) and Agarwal et al. (2024) distil language
    models with it: the student is penalised for putting mass where the
    teacher puts little, not for missing some of the teacher's mass.
    """
    return generalized_jsd_loss(teacher_logits, student_logits, 1.0, temperature, mask)




def schedule(kind: str, start: float, end: float, epoch: float, epochs: int) -> float:
    """A temperature or weight that moves from ``start`` (first epoch) to ``end`` (last epoch).

    ``epoch`` counts from 0 to ``epochs − 1`` and may be fractional (a step
    within an epoch). With f = epoch / (epochs − 1) (0 when there is one epoch):
    - ``constant``: start, always;
    - ``linear``: start + (end − start) · f;
    - ``cosine``: end + (start − end) · (1 + cos πf) / 2, which changes slowly
      at both ends and fastest in the middle (Loshchilov & Hutter's SGDR curve).
    Why schedule at all: a high T early shows the student the teacher's whole
    similarity structure, a lower T later sharpens it towards the answer;
    DKD's code ramps its weight in over the first epochs for the same reason
    a learning rate warms up.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)} (got {kind!r})")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1 (got {epochs!r})")
    start, end = _number("start", start), _number("end", end)
    epoch = _number("epoch", epoch, 0.0, epochs - 1)
    f = epoch / (epochs - 1) if epochs > 1 else 0.0
    if kind == "constant":
        return start
    if kind == "linear":
        return start + (end - start) * f
    return end + (start - end) * (1.0 + math.cos(math.pi * f)) / 2.0


# --- a recipe's terms by name (kdcore.recipes.LOSSES lists them; kdcore.stages sums them) --------------------------
def logits_term(name: str, teacher_logits, student_logits, labels, temperature: float):
    """The logits loss ``name`` of a recipe term: each is one of the formulas above, called with its defaults."""
    if name in params.LOSS_MODES:
        return soft_target_loss(teacher_logits, student_logits, temperature, name)
    if name == "dkd":
        return decoupled_kd_loss(teacher_logits, student_logits, labels, temperature)
    if name == "dist":
        return dist_loss(teacher_logits, student_logits, temperature)
    if name == "ls-kl":
        return standardised_soft_loss(teacher_logits, student_logits, temperature)
    if name == "reverse-kl":
        return reverse_kl_loss(teacher_logits, student_logits, temperature)
    if name == "gjsd":
        return generalized_jsd_loss(teacher_logits, student_logits, temperature=temperature)
    raise ValueError(f"unknown logits loss {name!r}")


def feature_term(name: str, teacher_features, student_features):
    """The feature loss ``name`` of a recipe term, teacher's layer first (a regressor already applied)."""
    if name == "hint":
        return hint_loss(teacher_features, student_features)
    if name == "at":
        return attention_transfer_loss(teacher_features, student_features)
    if name == "rkd-distance":
        return rkd_distance(teacher_features, student_features)
    if name == "rkd-angle":
        return rkd_angle(teacher_features, student_features)
    raise ValueError(f"unknown feature loss {name!r}")
