"""The text task's settings: one row per setting (``params``), its distillation terms, configs and layer mapping.

The layer mapping lives here because it is a setting (``layer_map``): its
form is checked with the other settings, and the teacher's depth only once
a teacher is known (:func:`layer_map` with ``teacher_layers``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import params
from ...config import DistillConfig, TrainConfig, Validated, default
from ...params import Param
from ...recipes import from_dict, resolve
from ..base import Term
from .tinybert import read

NAME = "text"

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

    @property
    def shape(self) -> dict:
        """``{"layers", "hidden", "heads"}``, as :func:`.model.shape_of` gives a built network's."""
        return {"layers": self.layers, "hidden": self.hidden, "heads": self.heads}


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
        if self.recipe is not None:  # its shape, now (super() read it); the teacher's layers when it is known
            read(resolve(from_dict(self.recipe), self), self.student.shape)
        return self


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
