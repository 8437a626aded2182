"""The text task's presets (TinyBERT; plain data, collected by :mod:`kdcore.presets`).

One teacher recipe; the students differ only in the intermediate stage, so
``text-logits`` and ``text-tinybert`` are the two arms of docs/tasks/text.md's
comparison (same seeds, same baselines).

``text-demo`` (the Home demo) is ``text-quick`` with labels for 10 % of the
sentences: with all of them a 2-layer student from scratch ties the
teacher's distillation; with 1,020 the teacher's soft verdicts on the other
9,181 carry what the student lacks (3 seeds: docs/results.md). Its teacher
reads the sentences once, not twice as ``text-quick``'s: on a quiet machine the
2-epoch teacher took 113 s, which put the Home demo (teacher and one seed) at
212 s, over its 3-minute budget; the 1-epoch teacher scored 76.0 % against
77.3 % and the student it taught scored as well (docs/results.md).
"""

TEACHER = {"epochs": 4}  # the default encoder (4 layers, hidden 128, 4 heads)
STUDENT = {"layers": 2, "hidden": 64, "heads": 4}

QUICK_STUDENT = {"student": STUDENT, "intermediate_epochs": 1, "epochs": 2, "temperature": 2.0, "alpha": 0.9}

PRESETS: dict[str, dict] = {
    "text-demo": {
        "demo": True,
        "description": "The teacher, a 4-layer BERT-style encoder, reads all 10,201 labelled film reviews once; "
                       "the 2-layer students see the label of only one review in ten. The distilled one reads the "
                       "teacher's soft verdict on every review, so the nine in ten without a label still teach it; "
                       "the student from scratch learns from its 1,020 labels alone. Few labels and many unlabelled "
                       "sentences: the regime where distillation helps.",
        "dataset": "rotten-tomatoes",
        "teacher": {"epochs": 1},
        "distill": {**QUICK_STUDENT, "labels_fraction": 0.1},
    },
    "text-quick": {
        "headline": True,
        "description": "Teacher and students on the same labels: a 2-epoch BERT-style teacher, then a 2-layer "
                       "student with one epoch of layer-wise distillation and two of prediction-layer "
                       "distillation, and its baseline. A few minutes on 2 cores. Measured over 3 seeds, a tie: "
                       "+0.9 ± 1.6 points (docs/results.md).",
        "dataset": "rotten-tomatoes",
        "teacher": {"epochs": 2},
        "distill": QUICK_STUDENT,
    },
    "text-tinybert": {
        "description": "TinyBERT's recipe: intermediate-layer epochs (embeddings, hidden states, attention), "
                       "then prediction-layer epochs at T.",
        "dataset": "rotten-tomatoes",
        "teacher": TEACHER,
        "distill": {"student": STUDENT, "intermediate_epochs": 3, "epochs": 3, "temperature": 2.0, "alpha": 0.9},
    },
    "text-logits": {
        "description": "The same student and teacher, logits-only distillation (no intermediate stage): what "
                       "the layer-wise terms are measured against.",
        "dataset": "rotten-tomatoes",
        "teacher": TEACHER,
        "distill": {"student": STUDENT, "intermediate_epochs": 0, "epochs": 3, "temperature": 2.0, "alpha": 0.9},
    },
}
