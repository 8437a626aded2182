"""Shared fixtures: a private data directory per test, tiny real data, one tiny real teacher.

Everything is real: real mnist-5k digits, real Keras training, real SQLite.
The teacher is trained once per test session (a few seconds) and reused.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def kd_home(tmp_path, monkeypatch):
    """Each test gets its own KDSTUDIO_HOME: models and the run store never leak between tests."""
    home = tmp_path / "kdhome"
    monkeypatch.setenv("KDSTUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def mnist5k():
    from kdcore.tasks.digits import data

    return data.load("mnist-5k")


@pytest.fixture(scope="session")
def tiny(mnist5k):
    """800 training and 300 test digits: enough to learn well above chance in a second or two."""
    return mnist5k.subset(800, 300, seed=1)


@pytest.fixture(scope="session")
def teacher_file(tmp_path_factory, mnist5k):
    """A real CNN teacher (2 epochs on 4,000 digits, ~93 % test accuracy), saved as .keras."""
    from kdcore import storage
    from kdcore.tasks.digits import DIGITS, TeacherConfig

    cfg = TeacherConfig(epochs=2, seed=0)
    result = DIGITS.train_teacher(cfg, mnist5k)
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    storage.save_model(result.model, path, {"kind": "teacher", "dataset": "mnist-5k",
                                            "test_accuracy": result.score})
    return path


@pytest.fixture(scope="session")
def toy_text(tmp_path_factory):
    """600 sentences (~3,300 words) of subject-verb-object: a grammar an LSTM learns in seconds (task lm)."""
    import numpy as np

    subjects, verbs = ["the cat", "a dog", "the bird", "my friend"], ["sees", "likes", "eats", "finds"]
    objects = ["the fish", "a ball", "the seed", "some bread"]
    rng = np.random.default_rng(0)
    lines = [f"{subjects[i]} {verbs[j]} {objects[(i + j) % 4]}" + (" today" if j % 2 else "")
             for i, j in rng.integers(0, 4, (600, 2))]
    path = tmp_path_factory.mktemp("text") / "toy.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


# Markers, in one place: whole modules whose tests train for real, run subprocesses or start a browser are
# ``slow``; a few slow tests elsewhere carry ``@pytest.mark.slow`` themselves. ``-m "not slow"`` is the
# edit-test loop (about a minute); the README's full command runs everything.
SLOW_MODULES = {"test_e2e", "test_e2e_lm", "test_e2e_text", "test_pages_training", "test_experiments", "test_cli",
                "test_jobs", "test_bench", "test_reliability", "test_export", "test_studies"}
BROWSER_MODULES = {"test_e2e", "test_e2e_lm", "test_e2e_text"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
