"""The language model's training loop: truncated back-propagation through time, distilling or not.

**Training** is truncated back-propagation through time: the training text is
cut into ``batch_size`` contiguous streams, read ``seq_len`` words at a time,
and the state left by one batch is the starting state of the next (gradients
stop at the batch boundary). The state is reset to zero at each epoch.

The soft term is, per token, the KL at temperature T (Hinton et al. 2015),
the reverse KL or GKD's generalised JSD (setting ``loss``); the hard term is
the next word's cross-entropy; ``alpha`` mixes them, and T and alpha may
follow a schedule over the epochs. Soft targets come from the teacher run in
the step or from its top-k cache (:mod:`.cache`). Stop, NaN, progress and epoch records are
:class:`kdcore.training.Loop`'s.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ...dataset import Dataset
from .cache import _kept_cache, cached_terms, online_terms
from .data import streams
from .model import perplexity, vocab_size, zero_state

CLIP_NORM = 5.0  # LSTM gradients explode now and then; clipping the global norm is the usual cure


def _per_epoch(value, epochs: int) -> list[float]:
    """One value per epoch: a number repeated, or a schedule's list (:meth:`.settings.LMDistillConfig.per_epoch`)."""
    values = [float(value)] * epochs if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != epochs:
        raise ValueError(f"a schedule needs one value per epoch ({epochs}), got {len(values)}")
    return values


def fit(net, data: Dataset, cfg, *, series: str, progress=None, teacher=None, temperature=1.0, alpha=0.0,
        soft_targets: str = "online", top_k: int = 32, cache_rest: str = "student", loss: str = "kl",
        gkd_beta: float = 0.5):
    """Train ``net`` by truncated BPTT on ``data``; with a ``teacher`` and alpha > 0 it distils.

    The state of the student (and of an online teacher) is carried from one
    batch to the next along each stream; see the module docstring.
    ``temperature`` and ``alpha`` are one number, or one per epoch (a
    schedule's); a distilling run's epoch records say which were used. The
    step is traced once per distinct (T, alpha) pair, so a schedule costs
    one trace per epoch (seconds), and with the cache a new T rebuilds it
    (one teacher pass). ``loss`` is one of :data:`.settings.LOSSES`
    (:func:`.cache.online_terms`; the cache serves ``kl`` only).
    Returns a :class:`kdcore.training.RunResult` whose ``score``
    holds the test perplexity.
    """
    import keras
    import tensorflow as tf

    from ...training import Loop, device_info

    info = device_info()
    xs, ys = streams(data.x_train, data.y_train, cfg.batch_size, cfg.seq_len)
    temperatures, alphas = _per_epoch(temperature, cfg.epochs), _per_epoch(alpha, cfg.epochs)
    distil = teacher is not None and max(alphas) > 0
    vocab = vocab_size(net)
    cache = None
    if distil and soft_targets == "cache":  # loss kl only: LMDistillConfig.validate refuses the others
        if progress is not None:
            progress.phase("teacher top-k cache")
        cache = _kept_cache(teacher, data, cfg.batch_size, cfg.seq_len, temperatures[0], top_k)
    variables = net.trainable_variables
    optimizer = keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=CLIP_NORM)
    optimizer.build(variables)
    online = distil and cache is None

    def make_step(temperature: float, alpha: float):
        @tf.function(reduce_retracing=True)
        def step(x, y, state, t_state, c_probs, c_ids):
            if online:
                t_out = teacher([x, *t_state], training=False)
                t_logits, t_state = tf.stop_gradient(tf.reshape(t_out[0], (-1, vocab))), t_out[1:]
            else:
                t_logits = None
            with tf.GradientTape() as tape:
                out = net([x, *state], training=True)
                logits = tf.reshape(out[0], (-1, vocab))
                if distil and not online:  # alpha · soft + (1 − alpha) · hard, as distillation_terms has it
                    total, soft, hard = cached_terms(y, logits, c_probs, c_ids, temperature, alpha, cache_rest)
                else:
                    total, soft, hard = online_terms(tf.reshape(y, (-1,)), logits, t_logits, temperature,
                                                     alpha if distil else 0.0, loss, gkd_beta)
            optimizer.apply(tape.gradient(total, variables), variables)
            return total, soft, hard, [tf.stop_gradient(s) for s in out[1:]], t_state
        return step

    steps: dict = {}
    loop = Loop(progress, series, cfg.epochs, len(xs))
    empty = tf.zeros((0,))
    with tf.device(info["device"]), loop:
        for epoch in loop.epochs():
            cpu0 = time.process_time()
            t_now, a_now = temperatures[epoch], alphas[epoch]
            if cache is not None:  # the same cache while T stays; a new T is a new teacher pass
                cache = _kept_cache(teacher, data, cfg.batch_size, cfg.seq_len, t_now, top_k)
            if (t_now, a_now) not in steps:
                steps[(t_now, a_now)] = make_step(t_now, a_now)
            step = steps[(t_now, a_now)]
            optimizer.learning_rate.assign(cfg.learning_rate * cfg.lr_decay ** epoch)
            state = [tf.constant(s) for s in zero_state(net, cfg.batch_size)]
            t_state = [tf.constant(s) for s in zero_state(teacher, cfg.batch_size)] if online else []
            sums = np.zeros(3)
            for t in range(len(xs)):
                c = (tf.constant(cache[0][t]), tf.constant(cache[1][t].astype("int32"))) if cache else (empty, empty)
                total, soft, hard, state, t_state = step(tf.constant(xs[t]), tf.constant(ys[t]), state, t_state, *c)
                loss_value = float(total)
                sums += (loss_value, float(soft), float(hard))
                loop.step(t + 1, loss_value)
            mean = sums / max(len(xs), 1)
            record = {"loss": float(mean[0]), "soft": float(mean[1]), "hard": float(mean[2]),
                      "perplexity": math.exp(min(mean[2], 50.0)),
                      "valid_perplexity": perplexity(net, data.x_valid, data.y_valid, cfg.seq_len)}
            if distil:
                record.update(temperature=t_now, alpha=a_now)
            record["cpu_seconds"] = time.process_time() - cpu0  # this process's CPU: what other programs' load barely moves
            loop.record(record)
    return loop.scored(net, "perplexity", lambda: perplexity(net, data.x_test, data.y_test, cfg.seq_len),
                       info["label"])
