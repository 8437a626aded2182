"""Shared fixtures: a private data directory per test, tiny real data, one tiny real teacher.

Everything is real: real mnist-5k digits, real Keras training, real SQLite.
The teacher is trained once per test session (a few seconds) and reused.
"""
from __future__ import annotations

import fcntl
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


def shared_tmp(tmp_path_factory) -> Path:
    """This run's temporary folder that every xdist worker sees (the workers' own are ``popen-gw0``... in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def teacher_file(tmp_path_factory, mnist5k):
    """A real CNN teacher (2 epochs on 4,000 digits, ~93 % test accuracy), saved as .keras.

    Trained once per run: the first xdist worker to ask trains it under a lock, the other loads the same file.
    Tests only read it (those that need it in a data folder copy it there).
    """
    from kdcore import storage
    from kdcore.tasks.digits import DIGITS, TeacherConfig

    shared = shared_tmp(tmp_path_factory)
    path = shared / "session-teacher" / "teacher.keras"
    with open(shared / "session-teacher.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if training fails
        if not path.exists():
            result = DIGITS.train_teacher(TeacherConfig(epochs=2, seed=0), mnist5k)
            path.parent.mkdir(exist_ok=True)
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


# The suite runs on two pytest-xdist workers (pyproject.toml: ``-n auto --dist loadfile --no-loadscope-reorder``),
# each taking whole files in collection order. The longest files go first, so that none starts last and runs
# alone on one worker at the end: measured totals on 2 cores, longest first (other files follow by name).
LONGEST_FIRST = ["test_studies", "test_export", "test_text", "test_tasks", "test_reliability", "test_e2e", "test_lm",
                 "test_experiments", "test_e2e_images", "test_e2e_recipe", "test_cli", "test_comparison",
                 "test_recipe_cli", "test_reproduce", "test_pages_training", "test_recipes", "test_lm_methods",
                 "test_ensemble", "test_e2e_text", "test_viewers", "test_images_task", "test_pages_recipe",
                 "test_training", "test_bench"]
WORKERS = 2


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` is two workers, or none when the run names a single file (no second collection to wait for)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    files = {arg.split("::")[0] for arg in config.args}
    return 0 if len(files) == 1 and files.pop().endswith(".py") else WORKERS


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rpartition(".")[2], len(rank)))  # stable: file order kept
