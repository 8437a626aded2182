"""The language model's settings: one row per setting (``params``), and the three configs built from them.

A batch of ``batch_size`` streams read ``seq_len`` words at a time must fit
in the training text: that check needs the text's length, so it runs in
``validate(n_train)``.

The soft losses (``loss``) are the forward KL of Hinton et al. (the
default), the reverse KL and GKD's generalised Jensen–Shannon divergence
(Agarwal et al. 2024), whose formulas and reasons are in
:mod:`kdcore.losses`. The two new ones need the teacher's probability of
every word the student may say, which a top-k cache does not keep: they
need ``soft_targets`` online.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import params
from ...config import DistillConfig, TrainConfig, Validated, default
from ...params import Param

SOFT_TARGETS = ("online", "cache")
LOSSES = ("kl", "reverse-kl", "gjsd")
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
    Param("loss", str, "kl", "how the student's next-word distribution is compared with the teacher's: kl, the "
          "forward KL (cover every word the teacher might say); reverse-kl (put mass only where the teacher "
          "does: mode seeking); gjsd, GKD's generalised Jensen–Shannon divergence between the two (gkd_beta); "
          "the last two need soft_targets online", choices=LOSSES, label="Soft loss", group="distill",
          tasks=("lm",)),
    Param("gkd_beta", float, 0.5, "GKD's beta for loss gjsd, the teacher's weight in the mixture "
          "m = beta · p_teacher + (1 − beta) · p_student: towards 0 the loss acts as the forward KL, towards 1 as "
          "the reverse KL (both ends excluded: reverse-kl is beta = 1)", low=0.0, high=1.0, low_open=True,
          high_open=True, step=0.05, label="GKD beta", group="distill", tasks=("lm",)),
    Param("sequence_kd_words", int, 0, "sequence-level KD (Kim & Rush 2016): the teacher writes this many words "
          "(sampled at T = 1, seeded by the run's seed) and the student reads them after the training text, "
          "labelled by the words themselves; 0 = off", low=0, high=5_000_000, widget="number",
          label="Teacher-written words (sequence-level KD)", group="distill", tasks=("lm",)),
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
    loss: str = default("loss", task="lm")
    gkd_beta: float = default("gkd_beta", task="lm")
    sequence_kd_words: int = default("sequence_kd_words", task="lm")

    def validate(self, n_train: int | None = None):
        super().validate(n_train)
        _check_sequences(self.batch_size, self.seq_len, n_train)
        if self.loss != "kl" and self.soft_targets == "cache":
            raise ValueError(f"loss {self.loss} needs soft_targets online: it reads the teacher's probability of "
                             f"every word, and soft_targets cache keeps only the top {self.top_k}")
        if self.labels_fraction != 1.0 or self.hint_epochs:
            raise ValueError("labels_fraction and hint_epochs are not settings of task 'lm'")
        return self

    def per_epoch(self, name: str) -> list[float]:
        """``temperature`` or ``alpha`` on each epoch, moved by its schedule to its ``_end`` value on the last."""
        from ...losses import schedule

        start, end, kind = getattr(self, name), getattr(self, f"{name}_end"), getattr(self, f"{name}_schedule")
        return [schedule(kind, start, end, e, self.epochs) for e in range(self.epochs)]
