"""The text task's presets (TinyBERT; plain data, collected by :mod:`kdcore.presets`).

One teacher recipe; the students differ only in the intermediate stage, so
``text-logits`` and ``text-tinybert`` are the two arms of docs/tasks/text.md's
comparison (same seeds, same baselines).
"""

TEACHER = {"epochs": 4}  # the default encoder (4 layers, hidden 128, 4 heads)
STUDENT = {"layers": 2, "hidden": 64, "heads": 4}

PRESETS: dict[str, dict] = {
    "text-quick": {
        "demo": True,
        "description": "A few minutes on 2 CPU cores: a 2-epoch BERT-style teacher, then a 2-layer student with "
                       "one epoch of layer-wise distillation and two of prediction-layer distillation, and its "
                       "baseline.",
        "dataset": "rotten-tomatoes",
        "teacher": {"epochs": 2},
        "distill": {"student": STUDENT, "intermediate_epochs": 1, "epochs": 2, "temperature": 2.0, "alpha": 0.9},
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
