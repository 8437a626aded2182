"""Colour images: a VGG-style teacher distilled into a small CNN or a FitNet-shaped student.

The package reads in this order:

- ``settings.py``: the task's settings and its teacher's and student's configs;
- ``model.py``: the networks as layer lists, their sizes and their Keras models;
- ``data.py``: CIFAR-10, Fashion-MNIST or a user's ``.npz``, and grey ↔ colour;
- ``inspection.py``: one photo as a model sees it;
- here: the :class:`~kdcore.tasks.base.Task` that ties them together, and every public name of the package.
"""
from __future__ import annotations

from ...dataset import Dataset
from ...recipes import shape_text
from ..base import HINT, SOFT, Task
from ..idx import fashion_entry
from ...pictures import load_image
from .data import (CIFAR10_CLASSES, CIFAR_PLACES, LUMA, MAX_SIDE, MIN_SIDE, SMALL, _make, as_seen_by, cifar10_entry,
                   cifar10_place, default_dataset, load, read_cifar_batch, read_cifar_binary, to_channels)
from .inspection import prepare_photo
from .photo import match_background
from .presets import PRESETS
from .model import (BN_MOMENTUM, CROP, SIZE_CLASSES, SIZE_SHAPE, VGG_DENSE, _shape_of, build, build_student,
                    build_teacher, stats, student_layers, teacher_layers)
from .settings import BLOCKS, NAME, VGG_CHANNELS, VGG_DEPTHS, StudentConfig, TeacherConfig


class Images(Task):
    name = NAME
    title = "Colour images (any H×W×C)"
    description = ("A VGG-style teacher and a small CNN or FitNet-shaped student on CIFAR-10, Fashion-MNIST "
                   "or your own .npz of images; FitNets' hint stage uses a convolutional regressor.")
    example = "image"
    example_noun = "image"
    soft_targets_story = ("The teacher's softened probabilities (a shirt that looks a little like a T-shirt, a "
                          "sneaker a little like an ankle boot) carry what it learnt about which clothes look alike.")
    presets = PRESETS
    quick_datasets = (SMALL,)
    width_setting = "student_filters"
    terms = (SOFT, HINT)
    teacher_config = TeacherConfig
    student_config = StudentConfig

    def datasets(self) -> list[dict]:
        fashion = fashion_entry()
        return [cifar10_entry(),
                fashion,
                {"name": SMALL, "available": fashion["available"], "train": 3000, "valid": 300,
                 "test": 1000,
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

    student_for = _student

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
        from ... import stages

        self.check_fits(teacher, data, "the teacher")
        student = self._student(cfg, data)  # an unmappable layer pair is refused (stages.prepare) before any work
        return stages.fit_distilled(cfg, teacher, data, student, progress, logits, self.hint_layers(cfg))

    def check_image(self, source) -> None:
        load_image(source)

    def prepare_image(self, source, shape):
        """A photo centre-cropped and resized to the model's input (see :func:`prepare_photo`)."""
        return prepare_photo(source, shape)[0]

    prepare_photo = staticmethod(prepare_photo)

    @staticmethod
    def match_background(image, data):
        """A photo flipped to the dataset's background convention, and a note saying so (see :mod:`.photo`)."""
        return match_background(image, data)


TASK = IMAGES = Images()
