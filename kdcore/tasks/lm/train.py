"""The language model's training loop: truncated back-propagation through time, distilling or not.

**Training** is truncated back-propagation through time: the training text is
cut into ``batch_size`` contiguous streams, read ``seq_len`` words at a time,
and the state left by one batch is the starting state of the next (gradients
stop at the batch boundary). The state is reset to zero at each epoch.

The soft term is KL at temperature T, per token (Hinton et al. 2015); the
hard term is the next word's cross-entropy; ``alpha`` mixes them. Soft
targets come from the teacher run in the step or from its top-k cache
(:mod:`.cache`). Stop, NaN, progress and epoch records are
:class:`kdcore.training.Loop`'s.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ...dataset import Dataset
from .cache import _kept_cache, cached_terms
from .data import streams
from .model import perplexity, vocab_size, zero_state

CLIP_NORM = 5.0  # LSTM gradients explode now and then; clipping the global norm is the usual cure


def fit(net, data: Dataset, cfg, *, series: str, progress=None, teacher=None, temperature: float = 1.0,
        alpha: float = 0.0, soft_targets: str = "online", top_k: int = 32, cache_rest: str = "student"):
    """Train ``net`` by truncated BPTT on ``data``; with a ``teacher`` and alpha > 0 it distils.

    The state of the student (and of an online teacher) is carried from one
    batch to the next along each stream; see the module docstring.
    Returns a :class:`kdcore.training.RunResult` whose ``score``
    holds the test perplexity.
    """
    import keras
    import tensorflow as tf

    from ...losses import distillation_terms
    from ...training import Loop, device_info

    info = device_info()
    xs, ys = streams(data.x_train, data.y_train, cfg.batch_size, cfg.seq_len)
    distil = teacher is not None and alpha > 0
    vocab = vocab_size(net)
    cache = None
    if distil and soft_targets == "cache":
        if progress is not None:
            progress.phase("teacher top-k cache")
        cache = _kept_cache(teacher, data, cfg.batch_size, cfg.seq_len, temperature, top_k)
    variables = net.trainable_variables
    optimizer = keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=CLIP_NORM)
    optimizer.build(variables)
    online = distil and cache is None

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
                total, soft, hard = distillation_terms(tf.reshape(y, (-1,)), logits, t_logits, temperature,
                                                       alpha if distil else 0.0, "kl")
        optimizer.apply(tape.gradient(total, variables), variables)
        return total, soft, hard, [tf.stop_gradient(s) for s in out[1:]], t_state

    loop = Loop(progress, series, cfg.epochs, len(xs))
    empty = tf.zeros((0,))
    with tf.device(info["device"]), loop:
        for epoch in loop.epochs():
            cpu0 = time.process_time()
            optimizer.learning_rate.assign(cfg.learning_rate * cfg.lr_decay ** epoch)
            state = [tf.constant(s) for s in zero_state(net, cfg.batch_size)]
            t_state = [tf.constant(s) for s in zero_state(teacher, cfg.batch_size)] if online else []
            sums = np.zeros(3)
            for t in range(len(xs)):
                c = (tf.constant(cache[0][t]), tf.constant(cache[1][t].astype("int32"))) if cache else (empty, empty)
                total, soft, hard, state, t_state = step(tf.constant(xs[t]), tf.constant(ys[t]), state, t_state, *c)
                loss = float(total)
                sums += (loss, float(soft), float(hard))
                loop.step(t + 1, loss)
            mean = sums / max(len(xs), 1)
            record = {"loss": float(mean[0]), "soft": float(mean[1]), "hard": float(mean[2]),
                      "perplexity": math.exp(min(mean[2], 50.0)),
                      "valid_perplexity": perplexity(net, data.x_valid, data.y_valid, cfg.seq_len)}
            record["cpu_seconds"] = time.process_time() - cpu0  # this process's CPU: what other programs' load barely moves
            loop.record(record)
    return loop.scored(net, "perplexity", lambda: perplexity(net, data.x_test, data.y_test, cfg.seq_len),
                       info["label"])
