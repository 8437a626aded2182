"""The language model's networks: build one, start it at the unigram model, run it, score it by perplexity.

**Models.** Embedding → LSTM × layers → Dense(vocabulary) logits. The
recurrent state is an input and an output of the model (``[tokens, h1, c1,
h2, c2…] → [logits, h1', c1', …]``), not hidden in a stateful layer: a
stateful Keras layer fixes the batch size in the saved file, while this way
one saved model trains on 32 streams, scores on 16 and completes a prompt
on 1, and built from standard layers only, it loads in safe mode.

**Start.** A new network's output bias is set to the log of each word's
frequency in the training text (:func:`unigram_bias`), so it starts at the
unigram model instead of the uniform one. Without that, a 2 × 256 LSTM under
Adam spent its first epochs learning word frequencies through the bias and
stayed at or above the unigram level (valid perplexity 1,330 after 300 steps
at 5e-3; 279 with the bias set, the same run otherwise).

**Perplexity** is exp(mean cross-entropy over all tokens of the split,
``<eos>`` included).
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from .data import EOS, streams

EVAL_STREAMS = 16


def stats(vocab: int, units: int, layers: int) -> dict:
    """Parameters, multiply-adds per word and float32 bytes of Embedding(units) → LSTM(units) × layers → Dense."""
    lstm = 4 * (units * (units + units) + units)  # kernel (in × 4u), recurrent (u × 4u), bias (4u); in = units
    n = vocab * units + layers * lstm + units * vocab + vocab
    macs = layers * 4 * units * 2 * units + units * vocab
    return {"params": n, "macs": macs, "weight_bytes": 4 * n}


def build(vocab: int, units: int, layers: int, dropout: float, name: str, seed: int = 0):
    """``[tokens, h1, c1, …] → [logits, h1', c1', …]``: the state goes in and out (see the module docstring)."""
    import keras
    from keras import layers as kl

    keras.utils.set_random_seed(seed)
    words = keras.Input((None,), dtype="int32", name="tokens")
    state_in = [keras.Input((units,), name=f"{hc}{i + 1}") for i in range(layers) for hc in ("h", "c")]
    x = kl.Embedding(vocab, units, name="embedding")(words)
    state_out = []
    for i in range(layers):
        if dropout:
            x = kl.Dropout(dropout, seed=seed + i)(x)
        x, h, c = kl.LSTM(units, return_sequences=True, return_state=True, name=f"lstm{i + 1}")(
            x, initial_state=state_in[2 * i: 2 * i + 2])
        state_out += [h, c]
    if dropout:
        x = kl.Dropout(dropout, seed=seed + layers)(x)
    logits = kl.Dense(vocab, name="logits")(x)
    return keras.Model([words, *state_in], [logits, *state_out], name=name)


def unigram_bias(net, y_train: np.ndarray):
    """Set ``net``'s output bias to log(word frequency in ``y_train``), add-one smoothed; returns ``net``.

    A softmax over 10,000 words with zero bias starts uniform (9.2 nats a word
    where the unigram model has 6.5). Adam then spends the first hundreds of
    steps moving the bias, and the LSTM weights with it, towards the word
    frequencies: a 2-layer LSTM sat at or above the unigram level for two
    full-PTB epochs that way. Starting at the unigram model, every step goes
    to context. Teacher, student and baseline all start so, so the comparison
    stays fair.
    """
    counts = np.bincount(np.asarray(y_train), minlength=vocab_size(net)).astype("float64") + 1.0
    layer = net.get_layer("logits")
    kernel, _ = layer.get_weights()
    layer.set_weights([kernel, np.log(counts / counts.sum()).astype(kernel.dtype)])
    return net


def zero_state(model, batch: int) -> list:
    return [np.zeros((batch, shape[-1]), "float32") for shape in model.input_shape[1:]]


def vocab_size(model) -> int:
    return int(model.output_shape[0][-1])



_RUNNERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _runner(model):
    """A compiled forward pass (tokens, state) → (logits, state), traced once per model and input shape.

    Kept per model (dropped with it): tracing an LSTM costs seconds, and each
    epoch scores the validation text with the same shapes again.
    """
    import tensorflow as tf

    if model not in _RUNNERS:
        @tf.function(reduce_retracing=True)
        def run(x, state):
            out = model([x, *state], training=False)
            return out[0], out[1:]

        _RUNNERS[model] = run
    return _RUNNERS[model]


def token_nll(model, x: np.ndarray, y: np.ndarray, seq_len: int = 35, n: int = EVAL_STREAMS) -> np.ndarray:
    """Each word's next-word cross-entropy (nats) over (x, y), in text order, state carried along each stream."""
    import tensorflow as tf

    n = max(1, min(n, len(y)))
    xs, ys = streams(x, y, n, seq_len, pad=True)
    run = _runner(model)
    state = [tf.constant(s) for s in zero_state(model, n)]
    nll = np.zeros(ys.shape)
    for t, (xc, yc) in enumerate(zip(xs, ys)):
        logits, state = run(tf.constant(xc), state)
        log_p = tf.nn.log_softmax(logits, axis=-1).numpy()
        nll[t] = -np.take_along_axis(log_p, np.maximum(yc, 0)[..., None], -1)[..., 0]
    return nll.transpose(1, 0, 2).reshape(-1)[: len(y)]  # streams' (chunk, stream, word) back to the text's order


def perplexity(model, x: np.ndarray, y: np.ndarray, seq_len: int = 35, n: int = EVAL_STREAMS) -> float:
    """exp(mean next-word cross-entropy over every word of (x, y)), state carried along each stream."""
    return math.exp(float(token_nll(model, x, y, seq_len, n).mean())) if len(y) else 1.0


def sentence_nll(model, data, seq_len: int = 35) -> tuple[np.ndarray, np.ndarray]:
    """(summed cross-entropy, words) of each test sentence, its ``<eos>`` included; a tail without one counts too."""
    nll = token_nll(model, data.x_test, data.y_test, seq_len)
    ends = np.flatnonzero(np.asarray(data.y_test) == data.classes.index(EOS)) + 1
    starts = np.concatenate([[0], ends[ends < len(nll)]])
    return np.add.reduceat(nll, starts), np.diff(np.append(starts, len(nll)))
