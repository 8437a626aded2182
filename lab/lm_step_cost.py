"""Where does a language model's cache step spend its time? CPU per training step, loss by loss.

    .venv/bin/python -m lab.lm_step_cost            # UNITS=64 STEPS=15 ONLY="scratch|cached_terms"

One 1-layer student (UNITS, default 64) on a 10,000-word vocabulary, batch 64 × 35 words of random ids, a random
top-32 cache, alpha 0.5; each variant is one tf.function training step, timed over STEPS steps after 3 warm-up
ones. ``old hard`` and ``old soft`` are the losses as they were before the fused versions (a log-softmax and a
gather, differentiated automatically), kept here only to compare with. CPU seconds are this process's, which
other programs' load moves less than wall seconds. docs/tasks/lm.md quotes its output.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np
import tensorflow as tf
from keras import ops
from kdcore.tasks import lm
from kdcore.losses import hard_label_loss

V, UNITS, B, L, K, T, A = 10_000, int(os.environ.get("UNITS", 64)), 64, 35, 32, 1.0, 0.5
rng = np.random.default_rng(0)
x = tf.constant(rng.integers(0, V, (B, L)).astype("int32"))
y = tf.constant(rng.integers(0, V, (B, L)).astype("int32"))
p = rng.dirichlet(np.ones(K) * 0.3, B * L) * 0.8
probs = tf.constant(np.sort(p, -1)[:, ::-1].astype("float16"))
ids = tf.constant(np.stack([rng.choice(V, K, replace=False) for _ in range(B * L)]).astype("int32"))


def old_hard(labels, logits):
    yy = ops.cast(ops.reshape(labels, (-1,)), "int32")
    log_p = ops.log_softmax(logits, axis=-1)
    return -ops.mean(ops.take_along_axis(log_p, ops.expand_dims(yy, -1), axis=-1)[:, 0])


def old_cached(probs, ids, s, temperature):  # the committed version before this branch: autodiff, even rest
    vocab = s.shape[-1]
    pp = tf.cast(probs, "float32")
    k = pp.shape[-1]
    b = tf.maximum(1.0 - tf.reduce_sum(pp, -1), 0.0) / (vocab - k) + 1e-12
    log_q = tf.nn.log_softmax(s / temperature, axis=-1)
    log_q_top = tf.gather(log_q, ids, batch_dims=1)
    kl = (tf.reduce_sum(pp * tf.math.log(tf.maximum(pp, 1e-12)), -1) + (vocab - k) * b * tf.math.log(b)
          - tf.reduce_sum(pp * log_q_top, -1) - b * (tf.reduce_sum(log_q, -1) - tf.reduce_sum(log_q_top, -1)))
    return temperature ** 2 * tf.reduce_mean(kl)


VARIANTS = {
    "scratch, old hard": lambda s: old_hard(y, s),
    "scratch, fused hard": lambda s: hard_label_loss(y, s),
    "cache even, old soft + old hard": lambda s: A * old_cached(probs, ids, s, T) + (1 - A) * old_hard(y, s),
    "cache even, new soft + fused hard": lambda s: A * lm.cached_soft_loss(probs, ids, s, T, "even") + (1 - A) * hard_label_loss(y, s),
    "cache student, new soft + fused hard": lambda s: A * lm.cached_soft_loss(probs, ids, s, T, "student") + (1 - A) * hard_label_loss(y, s),
    "cache student, cached_terms T=1": lambda s: lm.cached_terms(y, s, probs, ids, 1.0, A, "student")[0],
    "cache student, cached_terms T=2": lambda s: lm.cached_terms(y, s, probs, ids, 2.0, A, "student")[0],
    "cache even, cached_terms T=1": lambda s: lm.cached_terms(y, s, probs, ids, 1.0, A, "even")[0],
}
ONLY = os.environ.get("ONLY")
if ONLY:
    VARIANTS = {k: v for k, v in VARIANTS.items() if any(o in k for o in ONLY.split("|"))}
net = lm.build(V, UNITS, 1, 0.0, "s")
state = [tf.constant(z) for z in lm.zero_state(net, B)]
opt = keras.optimizers.Adam(1e-3)
opt.build(net.trainable_variables)
results = {}
for name, loss_fn in VARIANTS.items():
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = net([x, *state], training=True)
            loss = loss_fn(tf.reshape(out[0], (-1, V)))
        opt.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
        return loss
    for _ in range(3):
        float(step())
    w, c = time.perf_counter(), time.process_time()
    n = int(os.environ.get("STEPS", 15))
    for _ in range(n):
        float(step())
    results[name] = ((time.perf_counter() - w) / n, (time.process_time() - c) / n)
    print(f"{name:<40} wall {results[name][0]*1000:7.1f} ms  cpu {results[name][1]*1000:7.1f} ms", flush=True)
print("load", os.getloadavg())
