"""``python -m kdcore``: the JSON contract scripts depend on, run as real subprocesses.

Each subprocess pays TensorFlow's import (~5 s), so the successful commands
run as subprocesses (that is where stdout hygiene matters: stdout must parse
as exactly one JSON object) and the refusals call ``cli.main(argv)`` in this
process, which is what ``python -m kdcore`` runs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from kdcore import cli
from kdcore.progress import Progress


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDSTUDIO_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kdcore", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def json_out(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)  # the whole of stdout is one JSON object


@pytest.fixture(scope="module")
def cli_teacher(tmp_path_factory):
    """A teacher trained by ``train-teacher`` itself (1 epoch on mnist-5k), with its JSON answer."""
    folder = tmp_path_factory.mktemp("cli-teacher")
    path = folder / "teacher.keras"
    proc = run_cli("train-teacher", "--dataset", "mnist-5k", "--epochs", 1, "--seed", 0, "--out", path, "--json",
                   home=folder)
    return json_out(proc), path, proc.stderr


@pytest.fixture
def digit_png(tmp_path, mnist5k, teacher_file):
    """A PNG of a real test digit that the fixture teacher gets right, and its label."""
    from kdcore import storage
    from kdcore.training import predict_logits

    teacher = storage.load_model(teacher_file)
    right = np.flatnonzero(predict_logits(teacher, mnist5k.x_test[:50]).argmax(-1) == mnist5k.y_test[:50])
    index = int(right[0])
    path = tmp_path / "digit.png"
    Image.fromarray((mnist5k.x_test[index, :, :, 0] * 255).astype("uint8")).save(path)
    return path, int(mnist5k.y_test[index])


def test_datasets_json_lists_builtins_and_default(tmp_path):
    out = json_out(run_cli("datasets", "--json", home=tmp_path))
    assert {row["name"] for row in out["datasets"]} >= {"mnist", "mnist-5k", "fashion-mnist"}
    for row in out["datasets"]:
        assert set(row) == {"name", "available", "source", "train", "valid", "test"}
    five_k = next(row for row in out["datasets"] if row["name"] == "mnist-5k")
    assert five_k["available"] and (five_k["train"], five_k["valid"], five_k["test"]) == (3500, 500, 1000)
    assert out["default"] in {row["name"] for row in out["datasets"]}


def test_train_teacher_json_saves_a_model_and_reports_progress(cli_teacher):
    out, path, stderr = cli_teacher
    assert out["model"] == str(path) and path.is_file()
    assert 0.5 < out["test_accuracy"] <= 1.0
    assert out["params"] == 225_034 and out["seconds"] > 0 and out["device"]
    assert [h["epoch"] for h in out["history"]] == [1]
    assert "teacher epoch 1/1: loss" in stderr


def test_distill_with_baseline_prints_every_field(tmp_path, teacher_file):
    out_path = tmp_path / "student.keras"
    proc = run_cli("distill", "--teacher", teacher_file, "--dataset", "mnist-5k", "--temperature", 4,
                   "--alpha", 0.9, "--loss", "kl", "--student-filters", 0, "--student-units", 64,
                   "--epochs", 1, "--seed", 0, "--baseline", "--out", out_path, "--json", home=tmp_path)
    out = json_out(proc)
    assert out["model"] == str(out_path) and out_path.is_file()
    assert out["student_accuracy"] > 0.5 and out["baseline_accuracy"] > 0.5 and out["teacher_accuracy"] > 0.8
    s, b, t = out["student_accuracy"], out["baseline_accuracy"], out["teacher_accuracy"]
    assert out["gap_recovered"] == pytest.approx((s - b) / (t - b))
    assert out["params"] == {"teacher": 225_034, "student": 784 * 64 + 64 + 64 * 10 + 10}
    assert out["seconds"] > 0 and out["device"]
    assert set(out["history"]) == {"student", "baseline"}
    won, lost = map(int, re.fullmatch(r"McNemar's exact test over 1,000 test examples \((\d+) won, (\d+) lost\)",
                                      out["verdict_method"]).groups())
    assert (won - lost) / 1000 == pytest.approx(out["gain"], abs=1e-6), "one seed: both models' answers, paired"
    low, high = out["gain_ci95"]
    assert low <= out["gain"] <= high and 0 < out["p_value"] <= 1
    assert out["verdict"] == ("helped" if low > 0 else "hurt" if high < 0 else "tie")
    lines = proc.stderr.splitlines()
    assert any(line.startswith("student epoch 1/1: loss") for line in lines)
    assert any(line.startswith("baseline epoch 1/1: loss") for line in lines)
    assert "Traceback" not in proc.stderr


def test_predict_with_two_models(tmp_path, teacher_file, cli_teacher, digit_png):
    image, label = digit_png
    out = json_out(run_cli("predict", "--model", teacher_file, "--model", cli_teacher[1], "--image", image,
                           "--temperature", 2, "--json", home=tmp_path))
    preds = out["predictions"]
    assert [p["model"] for p in preds] == [str(teacher_file), str(cli_teacher[1])]
    for p in preds:
        assert len(p["probabilities"]) == 10 and sum(p["probabilities"]) == pytest.approx(1.0)
        assert p["label"] == int(np.argmax(p["probabilities"]))
    assert preds[0]["label"] == label


def test_evaluate_confusion_matches_accuracy(tmp_path, cli_teacher):
    trained, path, _ = cli_teacher
    out = json_out(run_cli("evaluate", "--model", path, "--dataset", "mnist-5k", "--json", home=tmp_path))
    confusion = np.array(out["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 1000
    assert confusion.sum(axis=1).tolist() == [100] * 10  # mnist-5k's test split: 100 of each digit
    assert out["test_accuracy"] == pytest.approx(np.trace(confusion) / 1000)
    assert out["test_accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("argv, problem", [
    (["distill", "--teacher", "t.keras", "--temperature", "0"], "temperature must be > 0"),
    (["distill", "--teacher", "t.keras", "--alpha", "1.5"], "alpha must be <= 1.0"),
    (["distill", "--teacher", "t.keras", "--loss", "hinge"], "loss must be one of kl, soft-ce"),
    (["train-teacher", "--epochs", "two"], "epochs must be a whole number (got 'two'); allowed: [1, 1000]"),
    (["train-teacher", "--dataset", "no-such-set", "--epochs", "1"], "unknown dataset 'no-such-set'"),
    (["evaluate", "--model", "missing.keras", "--dataset", "mnist-5k"], "no model file at missing.keras"),
    (["predict", "--model", "missing.keras", "--image", "{not_image}"], "not an image"),
    (["predict", "--model", "{teacher}", "--image", "{blank}"], "no digit found"),
])
def test_refusals_exit_2_with_one_line(argv, problem, capsys, tmp_path, teacher_file):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("this is not a picture\n")
    blank = tmp_path / "blank.png"
    Image.new("L", (28, 28), 0).save(blank)
    argv = [a.format(not_image=not_image, blank=blank, teacher=teacher_file) for a in argv] + ["--json"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and problem in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_prints_its_help(name, capsys):
    """argparse %-formats help text: one setting's "10 %" once broke ``train-teacher --help`` for every task."""
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and f"kdcore {name}" in out


def test_progress_bar_line_shows_phase_epoch_and_batches():
    progress = Progress()
    progress.phase("student", epochs=3, steps=10)
    progress.batch("student", 5, 0.4)
    assert cli.bar_line(progress.snapshot()) == "student epoch 1/3 [" + "#" * 15 + "." * 15 + "] 5/10"
