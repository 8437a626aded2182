"""The images task's settings: one row per setting (``params``), and the teacher's and student's configs.

VGG's depths and channels are here because the settings offer them: the
teacher's ``variant`` is one of :data:`VGG_DEPTHS`, and a student has at most
:data:`BLOCKS` blocks, as many as the teacher has to pair a hint with.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import params
from ...config import TrainConfig, Validated, default
from ...params import Param

NAME = "images"
VGG_DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
VGG_CHANNELS = (64, 128, 256, 512, 512)
BLOCKS = len(VGG_CHANNELS)

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
