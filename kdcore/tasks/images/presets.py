"""The colour-image task's presets: docs/tasks/images.md's recipe on the fixed 3,000-image slice of
Fashion-MNIST, with and without FitNets' hint stage (plain data; :mod:`kdcore.presets` collects them).

``images-demo`` (the Home demo) keeps those students but gives them labels for 10 % of the slice, and a
teacher (VGG-11 at width 0.125, one epoch: about 30 s) that read all 60,000 Fashion-MNIST training images,
whose test split holds the slice's. On the same 3,000 images the teacher is barely better than the students
and distillation hurt (``images-kd``); a teacher that saw 20 times more, teaching students with few labels,
gave +10.5 ± 1.4 points over 3 seeds (docs/results.md).
"""

TEACHER = {"variant": "vgg11", "width": 0.25, "dropout": 0.3, "epochs": 4}
STUDENT = {"student": {"filters": 4, "depth": 3, "blocks": 3, "guided": 2, "hint": 2}, "temperature": 4.0,
           "alpha": 0.9, "epochs": 4, "batch_size": 64, "learning_rate": 0.001}

PRESETS: dict[str, dict] = {
    "images-demo": {
        "demo": True,
        "description": "The teacher, a slim VGG-11, looks once at all 60,000 Fashion-MNIST training images; the "
                       "8,030-parameter students get 3,000 of them with a label on only 300. The distilled one "
                       "learns the teacher's soft answers on all 3,000, so the 2,700 unlabelled images teach it "
                       "too; the student from scratch learns from its 300 labels alone. A teacher that saw more, "
                       "students with few labels: where distillation helps.",
        "dataset": "fashion-mnist-3k",
        "teacher_dataset": "fashion-mnist",
        "teacher": {"variant": "vgg11", "width": 0.125, "epochs": 1},
        "distill": {**STUDENT, "labels_fraction": 0.1},
    },
    "images-kd": {
        "headline": True,
        "description": "Teacher and students on the same 3,000 Fashion-MNIST images: a VGG-11 teacher (width "
                       "0.25) and an 8,030-parameter FitNet-shaped student. Measured over 3 seeds, distillation "
                       "hurt: −8.6 ± 2.4 points against the student from scratch (docs/results.md).",
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
