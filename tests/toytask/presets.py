"""The toy task's presets: a few seconds each on 2 cores (plain data, collected by :mod:`kdcore.presets`)."""

PRESETS: dict[str, dict] = {
    "toy-quick": {
        "demo": True,
        "description": "A 16-unit teacher and a 4-unit student on the blobs, a few epochs each.",
        "dataset": "blobs",
        "teacher": {"toy_hidden": 16, "epochs": 3, "batch_size": 32},
        "distill": {"student": {"hidden": 4}, "temperature": 4.0, "alpha": 0.9, "epochs": 2, "batch_size": 32},
    },
}
