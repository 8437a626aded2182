"""TinyBERT's intermediate-layer stage: the student's embeddings and layers learn the mapped teacher layers'.

The stage reads only the mapped teacher layers' activations; with two epochs
or more it caches them once when they fit in ``CACHE_BUDGET`` (1.4 GB for
the default student on rotten-tomatoes), else the teacher runs inside each
step (:func:`fit_intermediate`).
"""
from __future__ import annotations

import math
import time

import numpy as np

from ...dataset import Dataset
from .model import depth, features, projection, shape_of
from .settings import TextDistillConfig, layer_map
from .tinybert import Layerwise, describe, read
from .tokenizer import MAX_LEN

CACHE_BUDGET = 2 * 2**30  # bytes of teacher activations the intermediate stage may hold (see fit_intermediate)


def cache_bytes(n: int, teacher_shape: dict, mapping: list[int]) -> int:
    """Bytes (float32) of the teacher activations the intermediate stage reads for ``n`` sentences:
    the embedding output, and the hidden states and attention scores of each mapped teacher layer."""
    layers = len(set(mapping))
    tokens = MAX_LEN * teacher_shape["hidden"]
    scores = teacher_shape["heads"] * MAX_LEN * MAX_LEN
    return 4 * n * (tokens * (1 + layers) + scores * layers)


def teacher_activations(teacher, x: np.ndarray, mapping: list[int], progress=None, batch: int = 256):
    """The teacher's embedding output, then hidden states and attention scores of the mapped layers,
    for every sentence of ``x`` (inference mode), as float32 arrays; ``None`` if a stop was asked for."""
    import keras
    import tensorflow as tf

    feat, n = features(teacher, logits=False), depth(teacher)
    used = sorted(set(mapping))
    picks = [0, *used, *[n + g for g in used]]
    model = keras.Model(feat.input, [feat.outputs[i] for i in picks])
    forward = tf.function(lambda ids: model(ids, training=False), reduce_retracing=True)  # eager: 1.7x the CPU
    out = None
    for start in range(0, len(x), batch):
        if progress is not None and progress.stop_requested:
            return None
        got = [np.asarray(a, np.float32) for a in forward(x[start:start + batch])]
        if out is None:  # filled in place: concatenating parts would hold the cache twice at its peak
            out = [np.empty((len(x), *a.shape[1:]), np.float32) for a in got]
        for whole, part in zip(out, got):
            whole[start:start + len(part)] = part
    return out


def fit_intermediate(student, teacher, data: Dataset, cfg: TextDistillConfig, progress=None,
                     cache: bool | None = None, stage: Layerwise | None = None):
    """Train the student's embeddings and encoder layers on TinyBERT's layer-wise terms (its intermediate-layer
    distillation, eq. 7 without L_pred): ``stage``'s terms, by default the ones ``cfg``'s settings describe.

    total = w_e · L_embd + Σ_w w · Σ_{hidden terms of weight w} L_hidn(m, g) + the same for L_attn, each term from
    :mod:`kdcore.losses`, student layer m against teacher layer g (:mod:`.tinybert` reads them from a recipe;
    by the settings, every weight is ``hidden_weight`` or ``attention_weight`` and g = g(m), so this is
    w_e · L_embd + w_h · Σ_m L_hidn(m) + w_a · Σ_m L_attn(m)). Each kind is drawn live: its running mean after
    every batch (series ``intermediate embedding``, ``intermediate hidden``, ``intermediate attention`` beside
    the total's ``intermediate``; a kind with no term reads 0) and its mean in every epoch's record. Returns a
    :class:`~kdcore.training.RunResult` (``score`` is None: the classifier has not been trained yet).

    The teacher's activations are **cached** (computed once, before the first
    epoch, and gathered with each batch) when the stage has two epochs or more
    and they fit in ``CACHE_BUDGET``, and otherwise computed inside every step.
    The teacher runs in inference mode, so both give the same targets.
    ``python -m kdcore bench --task text`` measures both side by side: building
    the cache costs a little more than the teacher's share of one in-step epoch,
    and a cached epoch about half an in-step one (docs/tasks/text.md). ``cache``
    forces one or the other.
    """
    import keras
    import tensorflow as tf

    from ...losses import attention_score_loss, token_mse
    from ...training import Loop, device_info

    t_shape, s_shape = shape_of(teacher), shape_of(student)
    if stage is None:  # (read checks the heads an attention term needs: the teacher's must divide by the student's)
        mapping = layer_map(cfg.layer_map, s_shape["layers"], t_shape["layers"])
        stage, _ = read(describe(cfg, mapping), s_shape, t_shape)
        if stage is None:
            raise ValueError("the intermediate stage has nothing to train: intermediate_epochs is 0 or every "
                             "layer-wise weight is 0")
    epochs = stage.epochs or cfg.epochs
    used = stage.teacher_layers
    if cache is None:  # measured: the cache pays for its building after 1.6 epochs (docs/tasks/text.md)
        cache = epochs >= 2 and cache_bytes(len(data.y_train), t_shape, used) <= CACHE_BUDGET
    s_feat, n_s = features(student, logits=False), s_shape["layers"]

    def projected(pair) -> bool:  # TinyBERT's W: always with a regressor, where the widths differ with auto
        return pair.projection == "regressor" or pair.projection == "auto" and s_shape["hidden"] != t_shape["hidden"]

    # Built in this order (embeddings, then the hidden terms' layers), as TinyBERT's projections always were,
    # so the same seed draws the same starting W's.
    proj_emb = (projection(s_shape["hidden"], t_shape["hidden"], "project_embeddings")
                if stage.embedding is not None and projected(stage.embedding) else None)
    proj_hid = [projection(s_shape["hidden"], t_shape["hidden"], f"project_layer{p.student}") if projected(p) else None
                for p in stage.hidden]
    parts = [s_feat] + [p for p in [proj_emb, *proj_hid] if p is not None]
    variables = [v for p in parts for v in p.trainable_variables]
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    optimizer.build(variables)

    def weighted(pairs, losses):
        """Σ_w w · Σ (the terms of weight w): the settings' one weight per kind multiplies one sum, as TinyBERT's does."""
        groups: dict[float, list] = {}
        for pair, loss in zip(pairs, losses):
            groups.setdefault(pair.weight, []).append(loss)
        return [w * tf.add_n(group) for w, group in groups.items()]

    def learn(x, t_emb, t_h, t_s):
        """One step of the student on the teacher's embedding output, mapped hidden states and scores."""
        mask = tf.not_equal(x, 0)
        zero = tf.constant(0.0)
        with tf.GradientTape() as tape:
            s = s_feat(x, training=True)
            s_emb, s_h, s_s = s[0], s[1:1 + n_s], s[1 + n_s:1 + 2 * n_s]
            l_emb, l_hid, l_att, terms = zero, [], [], []
            if stage.embedding is not None:
                l_emb = token_mse(t_emb, proj_emb(s_emb) if proj_emb is not None else s_emb, mask)
                terms.append(stage.embedding.weight * l_emb)
            for p, proj in zip(stage.hidden, proj_hid):
                h = s_h[p.student - 1]
                l_hid.append(token_mse(t_h[used.index(p.teacher)], proj(h) if proj is not None else h, mask))
            l_att = [attention_score_loss(t_s[used.index(p.teacher)], s_s[p.student - 1], mask)
                     for p in stage.attention]
            terms += weighted(stage.hidden, l_hid) + weighted(stage.attention, l_att)
            total = terms[0]
            for term in terms[1:]:  # left to right, as the three-term sum was always added
                total = total + term
        grads = tape.gradient(total, variables)
        optimizer.apply([tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)], variables)
        return total, l_emb, tf.add_n(l_hid) if l_hid else zero, tf.add_n(l_att) if l_att else zero

    k = len(used)
    if cache:
        @tf.function(reduce_retracing=True)
        def step(x, t):
            return learn(x, t[0], t[1:1 + k], t[1 + k:])
    else:
        t_feat, n_t = features(teacher, logits=False), t_shape["layers"]

        @tf.function(reduce_retracing=True)
        def step(x, _cached):  # nothing is cached: the teacher computes the targets here
            t = t_feat(x, training=False)
            return learn(x, t[0], [t[g] for g in used], [t[n_t + g] for g in used])

    info = device_info()
    steps = math.ceil(len(data.y_train) / cfg.batch_size)
    loop = Loop(progress, "intermediate", epochs, steps, stage="intermediate")
    series = ("intermediate", "intermediate embedding", "intermediate hidden", "intermediate attention")
    with tf.device(info["device"]), loop:
        if cache and progress is not None:
            progress.phase("teacher activations")
        targets = teacher_activations(teacher, data.x_train, used, progress) if cache else []
        cache_s = time.perf_counter() - loop.t_start
        if targets is None:
            loop.stop()
        # Batches are gathered here, by shuffled index, from the sentences and (cached) the teacher's arrays:
        # both ways see the same batches, and the cache goes when this stage returns.
        order = np.random.default_rng(cfg.seed)
        for epoch in loop.epochs():
            sums, n = np.zeros(4), 0
            shuffled = order.permutation(len(data.x_train))
            for b, start in enumerate(range(0, len(shuffled), cfg.batch_size), start=1):
                idx = shuffled[start:start + cfg.batch_size]
                values = [float(v) for v in step(tf.constant(data.x_train[idx], tf.int32),
                                                 [tf.constant(a[idx]) for a in targets])]
                sums, n = sums + values, n + 1
                loop.step(b, values[0], dict(zip(series, sums / n)))  # running means, as Keras reports
            mean = [float(v) for v in sums / max(n, 1)]
            record = dict(zip(("loss", "embedding", "hidden", "attention"), mean))
            if epoch == 0:  # how the teacher's activations were had, and what caching them cost
                record.update(teacher="cached" if cache else "in every step", cache_seconds=cache_s if cache else 0.0)
            loop.record(record)
    return loop.result(student, device=info["label"])
