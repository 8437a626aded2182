"""The language model's settings: one row per setting (``params``), and the three configs built from them.

A batch of ``batch_size`` streams read ``seq_len`` words at a time must fit
in the training text: that check needs the text's length, so it runs in
``validate(n_train)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import params
from ...config import DistillConfig, TrainConfig, Validated, default
from ...params import Param

SOFT_TARGETS = ("online", "cache")
CACHE_REST = ("student", "even")

params.register(
    Param("epochs", int, 3, "passes over the training text", low=1, high=1000, widget="number", tasks=("lm",)),
    Param("batch_size", int, 32, "parallel text streams per step", low=1, high=1024, widget="number",
          tasks=("lm",)),
    # 5e-3: with the unigram start, a 2x256 teacher at 5e-3 reached valid perplexity 279 after 300 steps on full
    # PTB, and a 1x128 model's first epoch (batch 20) ended at 246 with 3e-3 and 212 with 1e-2 (docs/tasks/lm.md).
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
