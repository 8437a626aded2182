"""Where the images task's images come from: CIFAR-10, Fashion-MNIST or a user's ``.npz``, and grey ↔ colour.

Images of any H×W×C (C = 1 grey or 3 colour) and K classes: CIFAR-10 when
its files are on this machine, Fashion-MNIST (Debian's copy, read by
:mod:`kdcore.tasks.idx`), or a user's ``.npz``.

CIFAR's Python batches are pickles. They are read by :class:`_ArraysOnly`,
an unpickler that can build NumPy arrays of plain numbers and nothing else;
its binary version (1 label byte + 3,072 pixel bytes per image) is read too.

Splits (train / valid / test): CIFAR-10 45,000 / 5,000 / 10,000;
Fashion-MNIST 55,000 / 5,000 / 10,000 (as the digits task loads it);
``fashion-mnist-3k`` 3,000 / 300 / 1,000; a user's ``.npz`` its own
``x_valid``/``y_valid`` when present, else 10 % of its training split. A valid
split not in the source is carved from training once
(:func:`kdcore.dataset.carve_valid`: stratified, seeded).
"""
from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from ...dataset import KERAS_CACHE, VALID_FRACTION, Dataset, DatasetError, carve_valid
from ..idx import FASHION, FASHION_CLASSES, FASHION_VALID, fashion_mnist
from ...recipes import shape_text

MIN_SIDE, MAX_SIDE = 8, 512
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_VALID = 0.1  # of CIFAR-10's training images: 5,000 of 50,000, as is customary
CIFAR_HOME = KERAS_CACHE  # where Keras's own loader leaves it; tests point this elsewhere
CIFAR_PLACES = ("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-python.tar.gz",
                "cifar-10-batches-bin")


# --- CIFAR-10, read without a network and without running a pickle's code ---------------------------
def _reconstruct(subtype, shape, dtype):
    """Stands in for ``numpy.core.multiarray._reconstruct``: an empty plain ndarray, its bytes come next."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refusing an ndarray subclass in a CIFAR batch")
    return np.ndarray(shape, _dtype(dtype))


def _dtype(*args):
    """``numpy.dtype``, for plain numbers only: an object dtype would let the pickle build arbitrary objects."""
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("refusing an object array in a CIFAR batch")
    return dt


def _latin1(text, encoding):
    """``_codecs.encode``: how a protocol-2 pickle written by Python 3 spells a bytes object."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing a codec call in a CIFAR batch")
    return text.encode("latin1")


class _ArraysOnly(pickle.Unpickler):
    """An unpickler for CIFAR's batches: dicts, lists, strings and NumPy arrays of numbers, nothing else.

    A pickle is a program: ``pickle.load`` calls any function the file names.
    A CIFAR batch needs three (numpy's array rebuilder, ``dtype`` and, when
    the file was written by Python 3, ``_codecs.encode``); each is replaced
    by a checked stand-in above, and every other name is refused.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype, ("_codecs", "encode"): _latin1}

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR batch holds only arrays, "
                                         "lists and strings") from None


def read_cifar_batch(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N×32×32×3, labels int64) from one batch of CIFAR-10's Python version."""
    try:
        batch = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()  # latin1: numpy's rule for Python 2 pickles
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise DatasetError(f"{name} is not a CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{name} is not a CIFAR-10 batch (no dict inside)")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    pixels, labels = batch.get("data"), np.asarray(batch.get("labels", []))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072 \
            or labels.shape != (len(pixels),):
        raise DatasetError(f"{name} is not a CIFAR-10 batch: it needs 'data' (N×3072 bytes) and N 'labels'")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype("int64")


def read_cifar_binary(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """The same from CIFAR's binary version: each record is 1 label byte, then 1,024 R, 1,024 G, 1,024 B bytes."""
    if not raw or len(raw) % 3073:
        raise DatasetError(f"{name} is not a CIFAR-10 binary batch ({len(raw)} bytes is not a multiple of 3,073)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0].astype("int64")


def cifar10_place() -> Path | None:
    """Where CIFAR-10 is on this machine, if anywhere (a folder of batches or Keras's archive)."""
    return next((CIFAR_HOME / p for p in CIFAR_PLACES if (CIFAR_HOME / p).exists()), None)


def _cifar_files(place: Path) -> dict[str, bytes]:
    """The batch files by name, from a folder or straight out of the .tar.gz (nothing is extracted to disk)."""
    if place.is_dir():
        return {p.name: p.read_bytes() for p in place.iterdir() if "batch" in p.name and p.is_file()}
    try:
        with tarfile.open(place, "r:gz") as tar:
            return {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()
                    if m.isfile() and "batch" in Path(m.name).name}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {place}: {exc}") from None


def cifar10_entry() -> dict:
    """CIFAR-10's row in the task's list of datasets: whether it is here, and where it is or should be put."""
    place = cifar10_place()
    return {"name": "cifar10", "available": place is not None, "train": 45000, "valid": 5000, "test": 10000,
            "source": str(place) if place else f"not here: put cifar-10-python.tar.gz in {CIFAR_HOME}"}


def _cifar10() -> Dataset:
    place = cifar10_place()
    if place is None:
        raise DatasetError(f"cifar10 is not on this machine: put cifar-10-python.tar.gz (or its "
                           f"cifar-10-batches-py folder) in {CIFAR_HOME}")
    files = _cifar_files(place)
    binary = place.name == "cifar-10-batches-bin"
    reader, suffix = (read_cifar_binary, ".bin") if binary else (read_cifar_batch, "")
    parts = {}
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        missing = [n + suffix for n in names if n + suffix not in files]
        if missing:
            raise DatasetError(f"{place} lacks {', '.join(missing)}; CIFAR-10 has data_batch_1-5 and test_batch")
        batches = [reader(files[n + suffix], n + suffix) for n in names]
        parts[split] = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    return _make("cifar10", *parts["train"], *parts["test"], f"CIFAR-10 from {place}", CIFAR10_CLASSES,
                 CIFAR_VALID)


# --- a user's .npz, and the checks every colour dataset passes ------------------------------------
def _pixels(x, split: str) -> np.ndarray:
    """H×W or H×W×C images (C = 1 or 3), 0-255 or 0-1 → float32 N×H×W×C in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not MIN_SIDE <= min(x.shape[1:3]) <= max(x.shape[1:3]) <= MAX_SIDE:
        raise DatasetError(f"x_{split} must hold N×H×W×C images with C = 1 or 3 and sides {MIN_SIDE}-{MAX_SIDE} "
                           f"(got shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"x_{split} must hold numbers (got dtype {x.dtype})")
    x = x.astype("float32")
    if not np.isfinite(x).all() or (x.size and (x.min() < 0 or x.max() > 255)):
        raise DatasetError(f"x_{split} pixel values must be finite, 0-255 or 0-1")
    return x / 255.0 if x.size and x.max() > 1.0 else x


def _labels(y, n: int, split: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1) if np.ndim(y) == 2 and np.shape(y)[1:] == (1,) else np.asarray(y)  # Keras's N×1
    if y.shape != (n,) or not (np.issubdtype(y.dtype, np.integer) or
                               (np.issubdtype(y.dtype, np.floating) and np.array_equal(y, np.round(y)))):
        raise DatasetError(f"y_{split} must hold one whole number per image ({n}) (got shape {y.shape}, "
                           f"dtype {y.dtype})")
    return y.astype("int64")


def _make(name, x_train, y_train, x_test, y_test, source, classes=None, valid=VALID_FRACTION) -> Dataset:
    """A checked Dataset: one image shape for every split, labels 0..K−1 (K = len(classes) when given).

    ``valid`` is the source's own (x, y) valid split, or how much of train to carve for it.
    """
    x_train, x_test = _pixels(x_train, "train"), _pixels(x_test, "test")
    x_valid = _pixels(valid[0], "valid") if isinstance(valid, tuple) else x_train
    for split, x in (("test", x_test), ("valid", x_valid)):
        if x_train.shape[1:] != x.shape[1:]:
            raise DatasetError(f"x_train holds {shape_text(x_train.shape[1:])} images but x_{split} "
                               f"{shape_text(x.shape[1:])}; every split needs the same shape")
    y_train, y_test = _labels(y_train, len(x_train), "train"), _labels(y_test, len(x_test), "test")
    if not len(y_train) or not len(y_test):
        raise DatasetError(f"dataset {name!r} has an empty train or test split")
    if isinstance(valid, tuple):
        y_valid = _labels(valid[1], len(x_valid), "valid")
    else:
        x_train, y_train, x_valid, y_valid = carve_valid(x_train, y_train, valid)
    k = len(classes) if classes else int(max(y_train.max(), y_valid.max(), y_test.max())) + 1
    for split, y in (("train", y_train), ("valid", y_valid), ("test", y_test)):
        if y.min() < 0 or y.max() >= k:
            raise DatasetError(f"y_{split} has labels {y.min()} to {y.max()}, outside 0..{k - 1} "
                               f"({k} classes{' named in class_names' if classes else ''})")
    if k < 2:
        raise DatasetError(f"dataset {name!r} has a single class; a classifier needs at least 2")
    return Dataset(name, x_train, y_train, x_test, y_test, source,
                   tuple(classes) if classes else tuple(str(i) for i in range(k)), x_valid, y_valid)


def _npz(path: Path) -> Dataset:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DatasetError(f"{path.name} lacks {', '.join(missing)}; a .npz needs {', '.join(keys)} "
                                   "(class_names is optional)")
            arrays = [z[k] for k in keys]
            valid = (z["x_valid"], z["y_valid"]) if {"x_valid", "y_valid"} <= set(z.files) else VALID_FRACTION
            names = [str(n) for n in z["class_names"].reshape(-1)] if "class_names" in z.files else None
    except DatasetError:
        raise
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path.name} is not a readable .npz of arrays (x_train, y_train, x_test, y_test, "
                           f"optional class_names as strings): {type(exc).__name__}") from None
    return _make(path.stem, *arrays, source=f"your file {path}", classes=names, valid=valid)


_CACHE: dict[str, Dataset] = {}


def load(name: str | None = None) -> Dataset:
    """``cifar10``, ``fashion-mnist`` or a ``.npz`` path; ``None`` is :func:`default_dataset`'s choice."""
    name = name or default_dataset()[0]
    if name in _CACHE:
        return _CACHE[name]
    if name == "cifar10":
        ds = _cifar10()
    elif name == FASHION:  # 28×28 grey: VGG's blocks stop pooling at 1×1
        ((x_train, y_train), (x_test, y_test)), source = fashion_mnist()
        ds = _make(FASHION, x_train, y_train, x_test, y_test, source, FASHION_CLASSES, FASHION_VALID)
    elif name == SMALL:
        ds = _fashion_small()
    else:
        path = Path(name).expanduser()
        if path.suffix != ".npz" or not path.is_file():
            raise DatasetError(f"unknown dataset {name!r}: use cifar10, fashion-mnist, {SMALL} or a .npz file "
                               "(x_train, y_train, x_test, y_test, optional class_names)")
        ds = _npz(path)
    _CACHE[name] = ds
    return ds


SMALL = "fashion-mnist-3k"


def _fashion_small() -> Dataset:
    """3,000 training, 300 valid and 1,000 test images of Fashion-MNIST: a fixed slice a VGG teacher learns in minutes.

    The first 3,000, 300 and 1,000 of ``subset(6000, 2000, seed=0, n_valid=300)``
    (random, so about 300, 30 and 100 of each class). The valid images come
    from Fashion-MNIST's own valid split, so train keeps its 3,000 images.
    Since Fashion-MNIST has a valid split, its training images are 55,000, so
    this slice's training images are not the ones docs/tasks/images.md's
    figures were measured on before that (same size, same test images).
    """
    full = load(FASHION)
    part = full.subset(6000, 2000, seed=0, n_valid=300)
    return Dataset(SMALL, part.x_train[:3000], part.y_train[:3000], part.x_test[:1000], part.y_test[:1000],
                   f"3,000 + 300 + 1,000 images of {full.source}", full.classes, part.x_valid, part.y_valid)


def default_dataset() -> tuple[str, str]:
    if cifar10_place() is not None:
        return "cifar10", "CIFAR-10 found in Keras's cache"
    return "fashion-mnist", "CIFAR-10 is not on this machine, so Fashion-MNIST (real, grey) is used"


# --- grey ↔ colour ---------------------------------------------------------------------------------
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's "L" mode


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Images (…×H×W×C, C = 1 or 3) with ``channels`` channels: grey is repeated as R, G and B, colour is made grey."""
    have = x.shape[-1]
    if have == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    return (x @ LUMA[:, None]).astype(np.float32)


def as_seen_by(model, data: Dataset) -> tuple[Dataset, str]:
    """(the dataset in ``model``'s channels, a sentence saying so or "") — grey data for a colour model, or the reverse.

    Only the channels are converted: another image size or another number of
    classes is still refused by :meth:`Images.check_fits`, since no
    conversion of those keeps what the teacher learnt.
    """
    want = int(model.input_shape[-1])
    have = int(data.x_train.shape[-1])
    if want == have or want not in (1, 3) or tuple(model.input_shape[1:3]) != tuple(data.x_train.shape[1:3]):
        return data, ""
    converted = Dataset(data.name, to_channels(data.x_train, want), data.y_train, to_channels(data.x_test, want),
                        data.y_test, data.source, data.classes, to_channels(data.x_valid, want), data.y_valid)
    note = (f"{data.name} is grey and the teacher sees colour, so each grey image is given as R, G and B."
            if want == 3 else
            f"{data.name} is in colour and the teacher sees grey, so the images were made grey (ITU-R 601 luma).")
    return converted, note
