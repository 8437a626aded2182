"""MNIST's file format, and Fashion-MNIST, which two tasks read: digits as it is, images as grey pictures.

MNIST and Fashion-MNIST are distributed as IDX files (Debian's
``dataset-fashion-mnist`` installs them); Keras's loaders download the same
arrays. Everything here returns raw arrays, ``((x_train, y_train), (x_test,
y_test))`` as Keras's loaders do: each task checks and scales them into its
own :class:`~kdcore.dataset.Dataset`, so no task package imports another.
"""
from __future__ import annotations

import gzip
import socket
from pathlib import Path

import numpy as np

from ..dataset import KERAS_CACHE, DatasetError

FASHION_IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 10
FASHION = "fashion-mnist"
FASHION_VALID = 5000  # of Fashion-MNIST's 60,000 training images, carved once for validation, as is customary
FASHION_SIZES = (55000, FASHION_VALID, 10000)  # train, valid, test
FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped): the format MNIST is distributed in."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # EOFError: a gzip file cut short
        raise DatasetError(f"cannot read IDX file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path} is truncated: its header is cut short")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def idx_folder(folder: Path) -> tuple:
    """The four MNIST-style IDX files of ``folder`` (each may be gzipped), as Keras's loaders return them."""
    parts = {}
    for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                      ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        found = [folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).exists()]
        if not found:
            raise DatasetError(f"{folder} has no {stem}[.gz]; an IDX folder needs the four MNIST-style files")
        parts[key] = read_idx(found[0])
    return (parts["x_train"], parts["y_train"]), (parts["x_test"], parts["y_test"])


def keras_download(name: str):
    """Keras's own loader (downloads once into ~/.keras/datasets), with a short timeout."""
    import keras  # noqa: deferred: TensorFlow's import is slow

    loader = {"mnist": keras.datasets.mnist, FASHION: keras.datasets.fashion_mnist}[name]
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return loader.load_data()
    except Exception as exc:
        raise DatasetError(f"{name} is not on this machine and could not be downloaded ({type(exc).__name__}); "
                           "use mnist-5k, which works offline") from exc
    finally:
        socket.setdefaulttimeout(old)


def fashion_on_disk() -> bool:
    return (FASHION_IDX_DIR / "train-images-idx3-ubyte.gz").exists() or (KERAS_CACHE / "fashion-mnist").exists()


def fashion_mnist() -> tuple:
    """(Fashion-MNIST's arrays as :func:`idx_folder` returns them, a sentence saying where they came from)."""
    if FASHION_IDX_DIR.exists():
        return idx_folder(FASHION_IDX_DIR), "full Fashion-MNIST from Debian's dataset-fashion-mnist"
    return keras_download(FASHION), "full Fashion-MNIST via Keras's loader"


def fashion_entry() -> dict:
    """Fashion-MNIST's row in a task's list of datasets: whether it is here and where it comes from."""
    ok = fashion_on_disk()
    src = ("Debian dataset-fashion-mnist" if FASHION_IDX_DIR.exists() else
           "Keras cache" if ok else "needs a download (Keras loader)")
    return {"name": FASHION, "available": ok, "source": src, **dict(zip(("train", "valid", "test"), FASHION_SIZES))}
