"""Presets are data, not code paths: a run is "defaults + preset + what the user changed".

Each preset names a task (default ``digits``), a dataset, a teacher recipe
and a distillation recipe, in the fields of the task's teacher config and of
:class:`~kdcore.config.DistillConfig`. ``omit_class`` (optional) removes one
digit from the distillation transfer set (Hinton et al. 2015, section 3).

Why these values (measured with ``python -m kdcore experiment``, 3 seeds,
mnist-5k; docs/results.md has the table):

- Teacher: the seed tutorial's CNN with dropout 0.3 and random shifts, 15
  epochs (97.6 %). Regularised, it generalises better than the student can,
  which is what leaves a gap worth distilling.
- Student: a 128-unit MLP, 40 epochs. The baseline fits its 4,000 labels
  perfectly by epoch ~15 and stops improving; the distilled student keeps
  learning from the soft targets (at 20 epochs the gain covered 34 % of the
  gap, at 40 epochs 43 %).
- ``default`` uses learning rate 3e-3, chosen for the *baseline*: at 1e-3 the
  baseline was a point weaker and the gain looked larger but noisier.
- ``quick``: with a plain 3-epoch teacher (94.8 %) and 15 student epochs
  distillation *hurt* (−1.2 ± 1.1 points); a 4-epoch regularised teacher and
  25 epochs at 3e-3 make it help (+1.2 ± 0.4) in about the same minute.
- T and alpha barely matter on mnist-5k (T 2-8 × alpha 0.7-1 all within half
  a point); ``omit-3`` uses T = 20 (Hinton's value), which taught the unseen
  class better than T = 8 (83 % vs 75 % of the 3s after the bias fix, seed 0).
- ``fmnist-mlp``: an unaugmented teacher (90.6 %) and T = 2, alpha = 0.5, the
  best cell of a T × alpha sweep. With all 60,000 labels it is still a tie:
  the teacher is only ~1.5 points above the baseline. With labels for 5 % of
  the images (``--labels-fraction 0.05``) distillation gains ~5 points.

The language-model presets (task ``lm``; docs/tasks/lm.md has
what was measured of them):

- ``lm-quick`` is the Home demo: ptb-small (60k words), a 1×128 teacher
  for 2 epochs and a 1×32 student for 2, all at Adam 1e-2, T = 1. Measured
  (3 seeds, docs/tasks/lm.md): teacher 412 test perplexity, distilled
  465 ± 8, scratch 476 ± 7, a tie. Within a minute's budget on 60k words a
  2×128 teacher did no better than a 1×32 student from scratch; a 1×128
  learns faster per step. Its best validation epoch is the 2nd; later ones
  over-fit.
- ``lm-ptb`` is the language model's headline: a 2×256 teacher on full PTB, batch
  32 × 35, Adam 5e-3 decaying ×0.6 each epoch, dropout 0.2, 2 epochs (what
  took 16 min 21 s on 2 quiet cores, test perplexity 121.5), then a
  1×64 student for 1 epoch at T = 1: with the cache's rest in the student's
  proportions, T = 1 makes the soft and hard terms share one softmax, so a
  cache step costs what a scratch step does.
"""
from __future__ import annotations

from . import tasks
from .config import DistillConfig, from_dict

# The mnist-5k presets share one teacher recipe, so experiments train that teacher once and reuse it.
REGULARISED_TEACHER = {"epochs": 15, "dropout": 0.3, "augment": True}
IMAGES_TEACHER = {"variant": "vgg11", "width": 0.25, "dropout": 0.3, "epochs": 4}
IMAGES_STUDENT = {"student": {"filters": 4, "depth": 3, "blocks": 3, "guided": 2, "hint": 2}, "temperature": 4.0,
                  "alpha": 0.9, "epochs": 4, "batch_size": 64, "learning_rate": 0.001}
TEXT_TEACHER = {"epochs": 4}  # the text task's default encoder (4 layers, hidden 128, 4 heads)

PRESETS: dict[str, dict] = {
    "quick": {
        "demo": True,  # the Home page's one-click demo for this task
        "description": "About a minute on 2 CPU cores: a short regularised teacher, a 64-unit MLP student, "
                       "and its baseline.",
        "dataset": "mnist-5k",
        "teacher": {"epochs": 4, "dropout": 0.3, "augment": True},
        "distill": {"student": {"filters": 0, "units": 64, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 25, "learning_rate": 0.003},
    },
    "default": {
        "description": "What the dashboard starts with: an augmented, regularised CNN teacher and a 128-unit MLP student; distillation gains about 2 points.",
        "dataset": "mnist-5k",
        "teacher": REGULARISED_TEACHER,
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 40, "learning_rate": 0.003},
    },
    "hinton-mlp": {
        "description": "Hinton-style: a tiny MLP student taught at a high temperature.",
        "dataset": "mnist-5k",
        "teacher": REGULARISED_TEACHER,
        "distill": {"student": {"filters": 0, "units": 32, "layers": 1}, "temperature": 8.0, "alpha": 0.9,
                    "epochs": 40},
    },
    "few-labels": {
        "description": "The student sees labels for only 500 of the 4,000 training digits; the teacher labels the rest softly.",
        "dataset": "mnist-5k",
        "teacher": REGULARISED_TEACHER,
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 4.0, "alpha": 0.9,
                    "epochs": 40, "labels_fraction": 0.125},
    },
    "omit-3": {
        "description": "The student never sees a 3 during distillation, yet learns it from the teacher's soft targets.",
        "dataset": "mnist-5k",
        "teacher": REGULARISED_TEACHER,
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 20.0, "alpha": 1.0,
                    "epochs": 40},
        "omit_class": 3,
    },
    "fmnist-mlp": {
        "description": "Fashion-MNIST (all 60,000 images) with a 128-unit MLP student: a case where distillation barely helps.",
        "dataset": "fashion-mnist",
        "teacher": {"epochs": 10, "dropout": 0.3},
        "distill": {"student": {"filters": 0, "units": 128, "layers": 1}, "temperature": 2.0, "alpha": 0.5,
                    "epochs": 20},
    },
    # Colour-image task: docs/tasks/images.md's recipe on the fixed 3,000-image slice of Fashion-MNIST.
    "images-kd": {
        "task": "images",
        "demo": True,
        "description": "A VGG-11 teacher (width 0.25) and an 8,030-parameter FitNet-shaped student on 3,000 "
                       "Fashion-MNIST images; at this budget KD did not beat the baseline (docs/tasks/images.md).",
        "dataset": "fashion-mnist-3k",
        "teacher": IMAGES_TEACHER,
        "distill": IMAGES_STUDENT,
    },
    "images-fitnets": {
        "task": "images",
        "description": "The same student with FitNets first: 2 hint epochs (student block 2 learns teacher block 2 "
                       "through a 1×1 regressor), then KD.",
        "dataset": "fashion-mnist-3k",
        "teacher": IMAGES_TEACHER,
        "distill": {**IMAGES_STUDENT, "hint_epochs": 2},
    },
    # --- language models (task lm); docs/tasks/lm.md has the measurements ---
    "lm-quick": {
        "task": "lm",
        "demo": True,
        "description": "About a minute on 2 CPU cores: a 1×128 LSTM teacher on a 60,000-word slice of the Penn "
                       "Treebank, a 1×32 student from its top-32 cache, and the student from scratch.",
        "dataset": "ptb-small",
        "teacher": {"epochs": 2, "units": 128, "layers": 1, "dropout": 0.3, "learning_rate": 0.01},
        "distill": {"student": {"units": 32, "layers": 1}, "temperature": 1.0, "alpha": 0.5, "epochs": 2,
                    "learning_rate": 0.01},
    },
    "lm-ptb": {
        "task": "lm",
        "description": "The full Penn Treebank (929k words): a 2×256 LSTM teacher, then a 1×64 student distilled "
                       "from its top-32 cache beside the same student from scratch. Tens of minutes on 2 cores.",
        "dataset": "ptb",
        "teacher": {"epochs": 2, "units": 256, "layers": 2, "dropout": 0.2, "batch_size": 32,
                    "learning_rate": 0.005, "lr_decay": 0.6},
        "distill": {"student": {"units": 64, "layers": 1}, "temperature": 1.0, "alpha": 0.5, "epochs": 1,
                    "batch_size": 32, "learning_rate": 0.005},
    },
    # Text (TinyBERT): one teacher recipe; the students differ only in the intermediate stage, so
    # text-logits and text-tinybert are the two arms of docs/tasks/text.md's comparison (same seeds, same baselines).
    "text-quick": {
        "task": "text", "demo": True,
        "description": "A few minutes on 2 CPU cores: a 2-epoch BERT-style teacher, then a 2-layer student with "
                       "one epoch of layer-wise distillation and two of prediction-layer distillation, and its "
                       "baseline.",
        "dataset": "rotten-tomatoes",
        "teacher": {"epochs": 2},
        "distill": {"student": {"layers": 2, "hidden": 64, "heads": 4}, "intermediate_epochs": 1, "epochs": 2,
                    "temperature": 2.0, "alpha": 0.9},
    },
    "text-tinybert": {
        "task": "text",
        "description": "TinyBERT's recipe: intermediate-layer epochs (embeddings, hidden states, attention), "
                       "then prediction-layer epochs at T.",
        "dataset": "rotten-tomatoes",
        "teacher": TEXT_TEACHER,
        "distill": {"student": {"layers": 2, "hidden": 64, "heads": 4}, "intermediate_epochs": 3, "epochs": 3,
                    "temperature": 2.0, "alpha": 0.9},
    },
    "text-logits": {
        "task": "text",
        "description": "The same student and teacher, logits-only distillation (no intermediate stage): what "
                       "the layer-wise terms are measured against.",
        "dataset": "rotten-tomatoes",
        "teacher": TEXT_TEACHER,
        "distill": {"student": {"layers": 2, "hidden": 64, "heads": 4}, "intermediate_epochs": 0, "epochs": 3,
                    "temperature": 2.0, "alpha": 0.9},
    },
}


def get(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def names(task: str | None = None) -> list[str]:
    """Preset names, of one task when given."""
    return [n for n, p in PRESETS.items() if task is None or p.get("task", tasks.DEFAULT) == task]


def demo(task: str = tasks.DEFAULT) -> str | None:
    """The preset the Home page's quick demo runs for ``task`` (the one marked ``"demo": True``)."""
    return next((n for n, p in PRESETS.items() if p.get("demo") and p.get("task", tasks.DEFAULT) == task), None)


def configs(name: str, **overrides) -> tuple[object, DistillConfig]:
    """(teacher config, distill config) for a preset; ``overrides`` replace distill fields."""
    preset = get(name)
    task = tasks.get(preset.get("task"))
    teacher = from_dict(task.teacher_config, preset["teacher"])
    distill = from_dict(task.distill_class(), {**preset["distill"], **overrides}, task)
    return teacher, distill
