"""The demos' regimes and ``reproduce``: a teacher may read more data than its students, and every task's results
table is written by the command that measured it (real tiny trainings, the toy task for ``reproduce``)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kdcore import cli, experiments, presets, reproduce, storage, tasks
from tests import toytask


@pytest.fixture
def toy():
    yield tasks.register(toytask.TASK)
    tasks.unregister("toy")


def test_every_task_names_its_demo_and_a_same_data_preset_beside_it(capsys):
    assert cli.main(["tasks", "--json"]) == 0
    named = {t["name"]: t["demo_preset"] for t in json.loads(capsys.readouterr().out)["tasks"]}
    assert named == {name: presets.demo(name) for name in tasks.BUILTIN}
    for name, demo in named.items():
        spec = presets.get(demo)
        assert spec["task"] == name and len(spec["description"]) > 200  # a paragraph on its regime, not a line
        same_data = [n for n in reproduce.headline(name) if n != demo]
        assert same_data and all("teacher_dataset" not in presets.get(n) for n in same_data)
        assert "teacher_dataset" in spec or spec["distill"].get("labels_fraction", 1.0) < 1.0


@pytest.mark.slow  # trains a teacher, a student and a baseline: ~5 s on 2 quiet cores
def test_a_teacher_reads_its_own_dataset_and_is_scored_on_the_students_test_split(tiny, tmp_path):
    npz = tmp_path / "teacher-digits.npz"
    np.savez(npz, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    students = dataclasses.replace(tiny.subset(200, 100, seed=2), name="few-digits")
    preset = {"name": "tiny-wide", "dataset": "unused", "teacher_dataset": str(npz), "teacher": {"epochs": 1},
              "distill": {"student": {"units": 16}, "epochs": 1, "labels_fraction": 0.5}}
    result = experiments.run_experiment(preset, seeds=1, data=students)
    assert result["status"] == "finished" and result["dataset"] == "few-digits"
    assert result["teacher_dataset"] == result["config"]["teacher_dataset"] != "few-digits"
    sidecar = storage.read_sidecar(result["teacher_model"])
    assert sidecar["dataset"] == result["teacher_dataset"]  # trained on the teacher's data...
    teacher = storage.load_model(result["teacher_model"])
    assert result["teacher_accuracy"] == pytest.approx(tasks.get("digits").score(teacher, students))  # ...on theirs


def test_a_teacher_dataset_with_other_classes_is_refused_in_one_line(tiny):
    digits = tasks.get("digits")
    letters = dataclasses.replace(tiny, name="letters", classes=tuple("abcdefghij"))
    with pytest.raises(ValueError, match="teacher dataset letters does not fit students on") as err:
        digits.compatible(letters, tiny)
    assert "\n" not in str(err.value) and "same classes" in str(err.value)
    digits.compatible(tiny.subset(100), tiny)  # fewer examples of the same digits: fine


@pytest.mark.slow
def test_reproduce_writes_the_tasks_table_between_its_markers_and_reads_given_results(toy, tmp_path, capsys):
    out = tmp_path / "results.md"
    out.write_text("# Results\n\n<!-- reproduce:toy -->\nan old table\n<!-- /reproduce:toy -->\n\nProse after.\n")
    assert cli.main(["reproduce", "--task", "toy", "--seeds", "2", "--out", str(out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    result = answer["experiments"][0]
    text = out.read_text()
    assert text.startswith("# Results\n\n<!-- reproduce:toy -->\n") and text.endswith("\n\nProse after.\n")
    assert "an old table" not in text and text.count("<!-- reproduce:toy -->") == 1
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 1 and rows[0].startswith("| `toy-quick` | blobs | ")
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    m = tasks.get("toy").metric
    assert cells[2:5] == [m.format(result["teacher_accuracy"]), m.format_spread(result["student_accuracy"]),
                          m.format_spread(result["baseline_accuracy"])]
    assert "cores" in cells[9] and "load" in cells[9]
    assert cells[10] == "`python -m kdcore experiment --task toy --preset toy-quick --seeds 2`"

    saved = tmp_path / "toy-quick.json"
    saved.write_text(json.dumps(dict(result, student_accuracy={"mean": 0.5, "std": 0.0, "values": [0.5, 0.5]})))
    assert cli.main(["reproduce", "--task", "toy", "--from", str(saved), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    again = out.read_text()
    assert "| 50.0% ± 0.0% |" in again and again.count("| `toy-quick`") == 1 and again.endswith("Prose after.\n")


def test_reproduce_refuses_a_file_that_is_no_experiment_of_the_task(toy, tmp_path, capsys):
    wrong = tmp_path / "other.json"
    wrong.write_text(json.dumps({"preset": "quick", "task": "digits", "runs": []}))
    assert cli.main(["reproduce", "--task", "toy", "--from", str(wrong), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err
    assert "is preset 'quick' of task 'digits'; reproduce --task toy takes toy-quick" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r.md").exists()


@pytest.mark.slow
def test_the_home_demo_trains_its_teacher_on_the_teacher_dataset_and_the_students_on_theirs(tiny, tmp_path):
    from kdcore import pipeline
    from kdcore.tasks.digits import TeacherConfig

    wide, few = tmp_path / "wide.npz", tmp_path / "few.npz"
    np.savez(wide, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    part = tiny.subset(200, 100, seed=3)
    np.savez(few, x_train=part.x_train, y_train=part.y_train, x_test=part.x_test, y_test=part.y_test)
    distill = tasks.get("digits").distill_from({"student_units": 16, "epochs": 1, "labels_fraction": 0.5})
    job = pipeline.start_demo(TeacherConfig(epochs=1), distill, str(few), teacher_dataset=str(wide))
    job.wait(240)
    assert job.status == "finished", job.error
    assert storage.read_sidecar(job.result.teacher_model)["dataset"] == "wide"
    assert job.result.dataset == "few" and job.result.baseline_score is not None
