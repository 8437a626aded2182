"""Colour images: a VGG-style teacher distilled into a small CNN or a FitNet-shaped student (issue #12).

Images of any H×W×C (C = 1 grey or 3 colour) and K classes: CIFAR-10 when
its files are on this machine, Fashion-MNIST (Debian's copy, read by
:mod:`kdcore.data`), or a user's ``.npz``. The input shape and the number of
classes come from the dataset, so the networks are built when the data is
known; the size table (no TensorFlow) is for 32×32×3 images and 10 classes.

As for digits, a network is first a list of layer specs (pure Python):
:func:`build` makes it a Keras model, :func:`stats` counts it. Every block
ends in a layer named ``block1`` … ``block5``: the FitNets stage pairs the
teacher's ``block{student_hint}`` (the hint layer) with the student's
``block{student_guided}`` (the guided layer), see :meth:`Images.hint_layers`.

CIFAR's Python batches are pickles. They are read by :class:`_ArraysOnly`,
an unpickler that can build NumPy arrays of plain numbers and nothing else;
its binary version (1 label byte + 3,072 pixel bytes per image) is read too.
"""
from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import data as datasets
from ... import params
from ...config import TrainConfig, Validated, default
from ...data import Dataset, DatasetError
from ...params import Param
from ...training import shape_text
from ..base import HINT, SOFT, Task
from .presets import PRESETS

NAME = "images"
SIZE_SHAPE = (32, 32, 3)  # what the size table assumes: CIFAR-10's images and classes
SIZE_CLASSES = 10
VGG_DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
VGG_CHANNELS = (64, 128, 256, 512, 512)
VGG_DENSE = 512
BLOCKS = len(VGG_CHANNELS)
CROP = 0.125  # random shifts of up to 4 of 32 pixels: CIFAR's pad-4-and-crop
BN_MOMENTUM = 0.9  # Keras's 0.99 leaves the moving statistics near their start after a short CPU run
MIN_SIDE, MAX_SIDE = 8, 512
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_HOME = datasets.KERAS_CACHE  # where Keras's own loader leaves it; tests point this elsewhere
CIFAR_PLACES = ("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-python.tar.gz",
                "cifar-10-batches-bin")

params.register(
    Param("variant", str, "vgg11", "VGG depth: convolutions per block 1-1-2-2-2 (11), 2-2-2-2-2 (13), 2-2-3-3-3 (16)",
          choices=tuple(VGG_DEPTHS), label="Teacher network", group="teacher", tasks=(NAME,)),
    Param("width", float, 0.25, "width multiplier of VGG's 64-128-256-512-512 channels (0.25 suits a CPU)",
          low=0.0625, high=1.0, step=0.0625, label="Width multiplier", group="teacher", tasks=(NAME,)),
    Param("batchnorm", bool, True, "BatchNorm after every convolution of the teacher", label="BatchNorm",
          group="teacher", tasks=(NAME,)),
    Param("dropout", float, 0.3, "dropout around the teacher's dense layer", low=0.0, high=0.9, step=0.05,
          group="teacher", tasks=(NAME,)),
    Param("augment", bool, False, "random horizontal flips and shifts of up to 1/8 of the image (pad and crop)",
          label="Augmentation (flip and crop)", group="teacher", tasks=(NAME,)),
    Param("student_filters", int, 8, "channels of the student's first block, doubled in each next block",
          low=1, high=256, ui_range=(2, 64), label="Channels of block 1", group="student", tasks=(NAME,)),
    Param("student_depth", int, 3, "convolutions per block (1 = a plain small CNN; more = FitNet-shaped, "
          "deeper and thinner than the teacher)", low=1, high=6, label="Convolutions per block", group="student",
          tasks=(NAME,)),
    Param("student_blocks", int, 3, "conv blocks, each ending in a 2×2 max-pool", low=1, high=BLOCKS,
          label="Blocks", group="student", tasks=(NAME,)),
    Param("student_guided", int, 2, "FitNets guided layer: the student block that learns to predict the hint",
          low=1, high=BLOCKS, label="Guided layer (student block)", group="distill", tasks=(NAME,)),
    Param("student_hint", int, 2, "FitNets hint layer: the teacher block whose output the guided layer predicts",
          low=1, high=BLOCKS, label="Hint layer (teacher block)", group="distill", tasks=(NAME,)),
)


@dataclass
class TeacherConfig(TrainConfig):
    """A VGG-style teacher: depth variant, width multiplier, BatchNorm, dropout, augmentation."""

    TASK = NAME

    variant: str = default("variant", task=NAME)
    width: float = default("width", task=NAME)
    batchnorm: bool = default("batchnorm", task=NAME)
    dropout: float = default("dropout", task=NAME)
    augment: bool = default("augment", task=NAME)
    epochs: int = default("epochs", role="teacher")


@dataclass
class StudentConfig(Validated):
    """A student of ``blocks`` blocks of ``depth`` convolutions, and the FitNets pair it is trained with."""

    TASK = NAME
    PREFIX = "student_"

    filters: int = default("student_filters", task=NAME)
    depth: int = default("student_depth", task=NAME)
    blocks: int = default("student_blocks", task=NAME)
    guided: int = default("student_guided", task=NAME)
    hint: int = default("student_hint", task=NAME)

    def validate(self, n_train: int | None = None):
        self.check_fields()
        if self.guided > self.blocks:
            raise ValueError(f"student_guided must be <= student_blocks ({self.blocks}) (got {self.guided}); "
                             "the guided layer is one of the student's own blocks")
        return self


# --- networks as layer lists ---------------------------------------------------------------------
def _conv_blocks(channels, depths, batchnorm: bool, prefix: str) -> list[tuple]:
    spec: list[tuple] = []
    for b, (c, n) in enumerate(zip(channels, depths), start=1):
        spec += [("conv", c, f"{prefix}{b}_conv{i + 1}", batchnorm) for i in range(n)]
        spec.append(("pool", f"block{b}"))
    return spec


def teacher_layers(cfg: TeacherConfig) -> list[tuple]:
    """VGG for small images (as in the CIFAR ports of VGG): 5 conv blocks, one dense layer, logits."""
    channels = [max(4, round(c * cfg.width)) for c in VGG_CHANNELS]
    spec = [("flip",), ("shift", CROP)] if cfg.augment else []
    spec += _conv_blocks(channels, VGG_DEPTHS[cfg.variant], cfg.batchnorm, "b")
    spec += [("flatten",), ("dropout", cfg.dropout), ("dense", max(16, round(VGG_DENSE * cfg.width)), "fc"),
             ("dropout", cfg.dropout), ("logits",)]
    return spec


def student_layers(cfg: StudentConfig) -> list[tuple]:
    """Blocks of ``depth`` BatchNorm convolutions (channels doubling), global average pooling, logits."""
    channels = [cfg.filters * 2 ** b for b in range(cfg.blocks)]
    return _conv_blocks(channels, [cfg.depth] * cfg.blocks, True, "s") + [("gap",), ("logits",)]


def _pooled(h: int, w: int) -> tuple[int, int, int]:
    """(pool size, h, w) after a block: 2×2 while both sides allow it, else none (28×28 inputs reach 1×1)."""
    return (2, h // 2, w // 2) if min(h, w) >= 2 else (1, h, w)


def stats(spec: list[tuple], shape=SIZE_SHAPE, classes: int = SIZE_CLASSES) -> dict:
    """Parameters, multiply-accumulates per image and float32 weight bytes, from a layer list.

    Convolutions are 3×3 with "same" padding; BatchNorm counts its four
    numbers per channel, as Keras's ``count_params`` does.
    """
    h, w, c = shape
    n_params = macs = 0
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            f, bn = layer[1], layer[3]
            n_params += 9 * c * f + (4 * f if bn else f)
            macs += h * w * f * 9 * c
            c = f
        elif kind == "pool":
            _, h, w = _pooled(h, w)
        elif kind in ("flatten", "gap"):
            c, h, w = (h * w * c if kind == "flatten" else c), 1, 1
        elif kind in ("dense", "logits"):
            n = layer[1] if kind == "dense" else classes
            n_params += c * n + n
            macs += c * n
            c = n
    return {"params": n_params, "macs": macs, "weight_bytes": 4 * n_params}


def build(spec: list[tuple], name: str, shape, classes: int, seed: int = 0):
    """A Keras functional model from a layer list; ``seed`` fixes the initial weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    h, w = shape[0], shape[1]
    x = inputs = keras.Input(tuple(shape), name="image")
    for layer in spec:
        kind = layer[0]
        if kind == "flip":
            x = layers.RandomFlip("horizontal", seed=seed, name="flip")(x)
        elif kind == "shift":
            x = layers.RandomTranslation(layer[1], layer[1], fill_mode="constant", seed=seed, name="shift")(x)
        elif kind == "conv":
            _, f, lname, bn = layer
            x = layers.Conv2D(f, 3, padding="same", use_bias=not bn, name=lname)(x)
            if bn:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{lname}_bn")(x)
            x = layers.ReLU(name=f"{lname}_relu")(x)
        elif kind == "pool":
            size, h, w = _pooled(h, w)
            x = layers.MaxPooling2D(size, name=layer[1])(x)
        elif kind == "flatten":
            x = layers.Flatten(name="flatten")(x)
        elif kind == "gap":
            x = layers.GlobalAveragePooling2D(name="gap")(x)
        elif kind == "dropout":
            x = layers.Dropout(layer[1], seed=seed)(x) if layer[1] else x
        elif kind == "dense":
            x = layers.Dense(layer[1], activation="relu", name=layer[2])(x)
        elif kind == "logits":
            x = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, x, name=name)


def build_teacher(cfg: TeacherConfig, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
    return build(teacher_layers(cfg), "teacher", shape, classes, cfg.seed)


def build_student(cfg: StudentConfig, seed: int = 0, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
    """Same ``seed`` → same initial weights: the distilled student and its baseline start equal."""
    return build(student_layers(cfg), "student", shape, classes, seed)


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
    return _make("cifar10", *parts["train"], *parts["test"], f"CIFAR-10 from {place}", CIFAR10_CLASSES)


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


def _make(name, x_train, y_train, x_test, y_test, source, classes=None) -> Dataset:
    """A checked Dataset: one image shape for both splits, labels 0..K−1 (K = len(classes) when given)."""
    x_train, x_test = _pixels(x_train, "train"), _pixels(x_test, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"x_train holds {shape_text(x_train.shape[1:])} images but x_test "
                           f"{shape_text(x_test.shape[1:])}; both splits need the same shape")
    y_train, y_test = _labels(y_train, len(x_train), "train"), _labels(y_test, len(x_test), "test")
    if not len(y_train) or not len(y_test):
        raise DatasetError(f"dataset {name!r} has an empty train or test split")
    k = len(classes) if classes else int(max(y_train.max(), y_test.max())) + 1
    for split, y in (("train", y_train), ("test", y_test)):
        if y.min() < 0 or y.max() >= k:
            raise DatasetError(f"y_{split} has labels {y.min()} to {y.max()}, outside 0..{k - 1} "
                               f"({k} classes{' named in class_names' if classes else ''})")
    if k < 2:
        raise DatasetError(f"dataset {name!r} has a single class; a classifier needs at least 2")
    return Dataset(name, x_train, y_train, x_test, y_test, source,
                   tuple(classes) if classes else tuple(str(i) for i in range(k)))


def _npz(path: Path) -> Dataset:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DatasetError(f"{path.name} lacks {', '.join(missing)}; a .npz needs {', '.join(keys)} "
                                   "(class_names is optional)")
            arrays = [z[k] for k in keys]
            names = [str(n) for n in z["class_names"].reshape(-1)] if "class_names" in z.files else None
    except DatasetError:
        raise
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path.name} is not a readable .npz of arrays (x_train, y_train, x_test, y_test, "
                           f"optional class_names as strings): {type(exc).__name__}") from None
    return _make(path.stem, *arrays, source=f"your file {path}", classes=names)


_CACHE: dict[str, Dataset] = {}


def load(name: str | None = None) -> Dataset:
    """``cifar10``, ``fashion-mnist`` or a ``.npz`` path; ``None`` is :func:`default_dataset`'s choice."""
    name = name or default_dataset()[0]
    if name in _CACHE:
        return _CACHE[name]
    if name == "cifar10":
        ds = _cifar10()
    elif name == "fashion-mnist":
        ds = datasets.load("fashion-mnist")  # 28×28 grey: VGG's blocks stop pooling at 1×1
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
    """3,000 training and 1,000 test images of Fashion-MNIST: a fixed slice that a VGG teacher learns in minutes.

    The first 3,000 and 1,000 of ``subset(6000, 2000, seed=0)`` (random, so
    about 300 and 100 of each class), the slice the README's images figures
    were measured on and the images presets use.
    """
    full = datasets.load("fashion-mnist")
    part = full.subset(6000, 2000, seed=0)
    return Dataset(SMALL, part.x_train[:3000], part.y_train[:3000], part.x_test[:1000], part.y_test[:1000],
                   f"3,000 + 1,000 images of {full.source}", full.classes)


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
                        data.y_test, data.source, data.classes)
    note = (f"{data.name} is grey and the teacher sees colour, so each grey image is given as R, G and B."
            if want == 3 else
            f"{data.name} is in colour and the teacher sees grey, so the images were made grey (ITU-R 601 luma).")
    return converted, note


# --- one photo, as a model sees it ----------------------------------------------------------------
def prepare_photo(source, shape) -> tuple[np.ndarray, str]:
    """(H×W×C float32 in [0, 1], a note) for a photo: centre-cropped to the model's aspect and resized to it.

    The photo is read by :func:`kdcore.images.load_image` (its size and format
    guards hold for colour too); transparency is laid on white. A colour photo
    given to a grey model is made grey, and a grey photo given to a colour
    model is repeated over R, G and B: the note says which, for the page to show.
    """
    from PIL import Image, ImageOps

    from ... import images as pictures

    h, w, c = (int(s) for s in shape)
    img = pictures.load_image(source)
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = np.asarray(ImageOps.fit(Image.alpha_composite(white, rgba).convert("RGB"), (w, h),
                                  Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    grey_photo = np.ptp(rgb, axis=-1).max() < 1 / 255
    if c == 1:
        note = "" if grey_photo else "This model sees grey images, so the colour photo was turned grey."
        return to_channels(rgb, 1), note
    return rgb, ("This model sees colour images; the photo is grey, so its grey is given as R, G and B."
                 if grey_photo else "")


def _shape_of(data: Dataset | None) -> tuple[tuple, int]:
    """(image shape, number of classes) of a dataset; CIFAR-10's 32×32×3 and 10 without one."""
    if data is None:
        return SIZE_SHAPE, SIZE_CLASSES
    return tuple(int(s) for s in data.x_train.shape[1:]), len(data.classes)


class Images(Task):
    name = NAME
    title = "Colour images (any H×W×C)"
    description = ("A VGG-style teacher and a small CNN or FitNet-shaped student on CIFAR-10, Fashion-MNIST "
                   "or your own .npz of images; FitNets' hint stage uses a convolutional regressor.")
    example = "image"
    presets = PRESETS
    width_setting = "student_filters"
    terms = (SOFT, HINT)
    teacher_config = TeacherConfig
    student_config = StudentConfig

    def datasets(self) -> list[dict]:
        place = cifar10_place()
        fashion = next(r for r in datasets.available() if r["name"] == "fashion-mnist")
        return [{"name": "cifar10", "available": place is not None, "train": 50000, "test": 10000,
                 "source": str(place) if place else f"not here: put cifar-10-python.tar.gz in {CIFAR_HOME}"},
                fashion,
                {"name": SMALL, "available": fashion["available"], "train": 3000, "test": 1000,
                 "source": f"a fixed slice of fashion-mnist ({fashion['source']})"}]

    def default_dataset(self) -> tuple[str, str]:
        return default_dataset()

    def load(self, name: str | None = None):
        return load(name)

    def build_teacher(self, cfg: TeacherConfig, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
        return build_teacher(cfg, shape, classes)

    def build_student(self, cfg: StudentConfig, seed: int = 0, shape=SIZE_SHAPE, classes: int = SIZE_CLASSES):
        return build_student(cfg, seed, shape, classes)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return stats(teacher_layers(cfg), *_shape_of(data))

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return stats(student_layers(cfg), *_shape_of(data))

    def describe_student(self, cfg: StudentConfig) -> str:
        shape = "plain CNN" if cfg.depth == 1 else "FitNet-shaped CNN"
        return f"{shape} ({cfg.blocks} blocks × {cfg.depth} convs, {cfg.filters} channels first)"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        extras = [f"dropout {cfg.dropout:g}"] * bool(cfg.dropout) + ["flips and shifts"] * bool(cfg.augment)
        return ", ".join([f"{cfg.variant} (width {cfg.width:g})", f"{cfg.epochs} epochs", *extras])

    def hint_layers(self, cfg) -> tuple[str, str]:
        return f"block{cfg.student.hint}", f"block{cfg.student.guided}"

    def check_model(self, model, name: str) -> None:
        in_shape, out_shape = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
        if len(in_shape) != 3 or in_shape[-1] not in (1, 3) or len(out_shape) != 1:
            raise ValueError(f"{name} takes input {in_shape} and gives {out_shape}; image models take H×W×C "
                             "images (C = 1 or 3) and give one logit per class")

    @staticmethod
    def check_fits(model, data: Dataset, who: str = "the model") -> None:
        """One line when a model was trained on images of another shape or another number of classes."""
        want, classes = tuple(data.x_train.shape[1:]), len(data.classes)
        got, out = tuple(model.input_shape[1:]), model.output_shape[-1]
        if got != want or out != classes:
            raise ValueError(f"{who} takes {shape_text(got)} images and gives {out} classes, but {data.name} has "
                             f"{shape_text(want)} images and {classes} classes")

    # The networks' input and output sizes come from the data, so the three runs build them here.
    def train_teacher(self, cfg, data, progress=None):
        from ... import training

        cfg.validate(len(data.y_train))
        net = build_teacher(cfg, data.x_train.shape[1:], len(data.classes))
        return training.fit(net, data, cfg, series="teacher", progress=progress)

    def _student(self, cfg, data):
        return build_student(cfg.student, cfg.seed, data.x_train.shape[1:], len(data.classes))

    def train_baseline(self, cfg, data, progress=None):
        from ... import training

        return training.fit_baseline(cfg, data, self._student(cfg, data), progress)

    def fit_data(self, model, data):
        return as_seen_by(model, data)

    def score(self, model, data) -> float:
        data = as_seen_by(model, data)[0]
        self.check_fits(model, data, f"the {model.name}")
        return super().score(model, data)

    def distill_student(self, cfg, teacher, data, progress=None, logits=None):
        from ... import training

        self.check_fits(teacher, data, "the teacher")
        student = self._student(cfg, data)
        if cfg.hint_epochs:
            training.hint_pair(student, teacher, cfg)  # a pair the regressor cannot map is refused before any work
        return training.fit_distilled(cfg, teacher, data, student, progress, logits)

    def prepare_image(self, source, shape):
        """A photo centre-cropped and resized to the model's input (see :func:`prepare_photo`)."""
        return prepare_photo(source, shape)[0]

    prepare_photo = staticmethod(prepare_photo)


TASK = IMAGES = Images()
