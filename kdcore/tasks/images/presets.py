"""The colour-image task's presets: docs/tasks/images.md's recipe on the fixed 3,000-image slice of
Fashion-MNIST, with and without FitNets' hint stage (plain data; :mod:`kdcore.presets` collects them)."""

TEACHER = {"variant": "vgg11", "width": 0.25, "dropout": 0.3, "epochs": 4}
STUDENT = {"student": {"filters": 4, "depth": 3, "blocks": 3, "guided": 2, "hint": 2}, "temperature": 4.0,
           "alpha": 0.9, "epochs": 4, "batch_size": 64, "learning_rate": 0.001}

PRESETS: dict[str, dict] = {
    "images-kd": {
        "demo": True,
        "description": "A VGG-11 teacher (width 0.25) and an 8,030-parameter FitNet-shaped student on 3,000 "
                       "Fashion-MNIST images; at this budget KD did not beat the baseline (docs/tasks/images.md).",
        "dataset": "fashion-mnist-3k",
        "teacher": TEACHER,
        "distill": STUDENT,
    },
    "images-fitnets": {
        "description": "The same student with FitNets first: 2 hint epochs (student block 2 learns teacher block 2 "
                       "through a 1×1 regressor), then KD.",
        "dataset": "fashion-mnist-3k",
        "teacher": TEACHER,
        "distill": {**STUDENT, "hint_epochs": 2},
    },
}
