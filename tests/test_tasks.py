"""The task seam: a new kind of model is an addition, not an edit across the pages and the CLI.

A toy task (``tests/toytask/``: 3 classes of random 8-dimensional vectors, a
one-hidden-layer MLP teacher and student, its own settings in the settings
table and its own presets) is registered here by one line. With no page,
CLI or engine code written for it, the Teacher and Distill pages draw its
settings, the CLI trains and distils it, and it runs an experiment, a sweep,
a study with two workers and an export, each run landing in the run store.
"""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from kdcore import cli, params, storage, tasks
from kdcore.dataset import Dataset
from kdcore.params import Param
from kdcore.results import DistillResult, Status, verdict
from tests import toytask
from tests.toytask import ToyTeacher

_size = toytask.size


@pytest.fixture
def toy():
    yield tasks.register(toytask.TASK)
    tasks.unregister("toy")


def test_settings_come_from_the_table(toy):
    assert toy.teacher_params() == ["epochs", "batch_size", "learning_rate", "seed", "toy_hidden"]
    assert toy.student_params() == ["toy_student_hidden"]
    assert "hint_epochs" not in toy.distill_params()  # the toy task offers soft targets only
    assert "hint_epochs" in tasks.get("digits").distill_params()
    with pytest.raises(ValueError, match=r"toy_hidden must be <= 256 \(got 999\); allowed: \[4, 256\]"):
        ToyTeacher(toy_hidden=999).validate()
    cfg = toy.distill_from({"toy_student_hidden": 4, "temperature": 2.0})
    assert cfg.student.hidden == 4 and cfg.temperature == 2.0
    assert toy.flat(cfg)["toy_student_hidden"] == 4


@pytest.mark.parametrize("name", tasks.BUILTIN)
def test_a_run_belongs_to_its_own_task_and_a_config_without_a_student_is_refused(name):
    task = tasks.get(name)
    assert task.default_distill().validate().TASK == task.teacher_config.TASK == name
    with pytest.raises(ValueError, match=r"student must be a task's student config.* \(got NoneType\)"):
        task.distill_class()(student=None).validate()


def test_the_same_name_can_have_other_bounds_in_another_task():
    assert params.get("student_units", "digits").high == 4096
    params.register(Param("student_units", int, 64, "lm units", low=16, high=256, tasks=("elsewhere",)))
    try:
        assert params.get("student_units", "elsewhere").high == 256
        assert params.get("student_units", "digits").high == 4096
    finally:
        params._TABLE[:] = [p for p in params._TABLE if p.tasks != ("elsewhere",)]


def _open(page: str, task: str):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"] = task
    at.session_state["dataset"] = "blobs"
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_teacher_page_draws_a_new_tasks_settings_with_no_page_code(toy):
    at = _open("teacher", "toy")
    hidden = at.slider(key="teacher.toy_hidden")
    start = toytask.PRESETS["toy-quick"]["teacher"]["toy_hidden"]  # the page starts from the task's first preset
    assert (hidden.label, hidden.value, hidden.min, hidden.max, hidden.step) == ("Toy hidden", start, 4, 256, 4)
    assert "teacher.variant" not in [w.key for w in at.selectbox]  # digits' settings are not shown
    assert any(f"{_size(start)['params']:,} parameters" in c.value for c in at.caption)  # the task's own count


@pytest.mark.slow
def test_distill_page_draws_a_new_tasks_settings_with_no_page_code(toy, tmp_path):
    teacher = toy.train_teacher(ToyTeacher(epochs=1), toy.load())
    storage.save_model(teacher.model, storage.model_path("toy-teacher"), {"kind": "teacher", "task": "toy",
                                                                          "dataset": "blobs", "params": 331})
    at = _open("distill", "toy")
    assert at.slider(key="distill.toy_student_hidden").value == 8
    assert at.slider(key="distill.temperature").value == 4.0
    assert "distill.hint_epochs" not in [w.key for w in at.number_input]
    at.slider(key="distill.toy_student_hidden").set_value(16).run()
    assert at.query_params["toy_student_hidden"] == "16"


@pytest.mark.slow
def test_cli_trains_and_distils_a_new_task_and_records_both_runs(toy, tmp_path, capsys):
    teacher = tmp_path / "toy.keras"
    assert cli.main(["train-teacher", "--task", "toy", "--toy-hidden", "16", "--epochs", "5", "--out",
                     str(teacher), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "toy" and out["test_accuracy"] > 0.6 and out["params"] == _size(16)["params"]
    assert cli.main(["distill", "--task", "toy", "--teacher", str(teacher), "--toy-student-hidden", "4",
                     "--epochs", "3", "--baseline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"student_accuracy", "baseline_accuracy", "teacher_accuracy", "gap_recovered", "verdict"} <= set(out)
    runs = storage.run_store().runs()
    assert [r["kind"] for r in runs] == ["distill", "teacher"]
    assert all(r["status"] == "finished" for r in runs)
    assert storage.run_store().epochs(runs[0]["id"])["student"][-1]["epoch"] == 3


@pytest.mark.slow
def test_cli_refuses_a_setting_of_another_task(toy, capsys):
    assert cli.main(["train-teacher", "--task", "toy", "--variant", "cnn"]) == 2
    assert "variant is not a setting of task 'toy'" in capsys.readouterr().err
    assert cli.main(["tasks", "--json"]) == 0
    listed = {t["name"]: t for t in json.loads(capsys.readouterr().out)["tasks"]}
    assert {"digits", "toy"} <= set(listed)
    assert [s["name"] for s in listed["toy"]["settings"]["student"]] == ["toy_student_hidden"]


def test_one_verdict_rule():
    assert verdict([0.02, 0.021, 0.019]).outcome == "helped"
    assert verdict([0.02, -0.01, 0.03]).outcome == "tie"
    assert verdict([-0.02, -0.021, -0.019]).outcome == "hurt"
    assert verdict([0.02]).outcome == "unknown", "one seed needs the paired test of both models' answers"
    assert verdict([]).outcome == "unknown"
    run = DistillResult("", "d", 10000, "t", 0.97, 0.95, 0.93)
    assert run.verdict().outcome == "unknown" and run.gap_recovered == pytest.approx(0.5)
    assert Status("finished") == "finished" and Status.RUNNING.active


# --- central code asks the task ---------------------------------------------------------------------
def test_each_builtin_task_fills_in_the_protocol_of_its_example_kind():
    from kdcore.tasks.base import EXAMPLES

    for name in tasks.BUILTIN:
        task = tasks.get(name)
        assert isinstance(task, EXAMPLES[task.example]), (name, task.example)
    assert not isinstance(tasks.get("digits"), EXAMPLES["sentence"])


@pytest.mark.slow
@pytest.mark.parametrize("name", tasks.BUILTIN)
def test_the_experiments_page_describes_each_preset_by_its_task(name):
    from streamlit.testing.v1 import AppTest

    from kdcore import presets
    from tests.conftest import ROOT

    task = tasks.get(name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"] = name
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.selectbox(key="experiments.preset").value
    teacher, distill = presets.configs(shown)
    recipe = next(m.value for m in at.markdown if presets.get(shown)["description"] in m.value)
    assert f"teacher {task.describe_teacher(teacher)} · student {task.describe_student(distill.student)}" in recipe


@pytest.mark.slow
def test_a_sweep_over_an_images_preset_ranges_over_the_tasks_width_setting():
    """The sweep used to guess the width field (``units`` or else ``hidden``) and raised AttributeError here."""
    from kdcore import experiments

    rng = np.random.default_rng(0)
    y = np.arange(160) % 2
    x = (rng.normal(0.5, 0.1, (160, 16, 16, 3)) + 0.3 * y[:, None, None, None]).astype("float32")
    data = Dataset("stripes", x[:120], y[:120], x[120:], y[120:], "generated", ("dark", "light"))
    preset = {"name": "tiny-images", "task": "images", "dataset": "stripes",
              "teacher": {"variant": "vgg11", "width": 0.125, "epochs": 1, "batch_size": 32},
              "distill": {"student": {"filters": 4, "depth": 1, "blocks": 2, "guided": 1, "hint": 1}, "epochs": 1,
                          "batch_size": 32}}
    frame = experiments.sweep(preset, [2.0, 4.0], [0.5, 0.9], data=data, record=False)
    assert tasks.get("images").width_setting == "student_filters"
    assert len(frame) == 4 and set(frame["units"]) == {4}


@pytest.mark.slow
def test_a_text_study_without_widths_ranges_over_the_presets_own_student(tmp_path):
    """The study read ``cfg.student.units``, which a transformer student does not have."""
    from kdcore import studies

    task = tasks.get("text")
    rows = [(f"{'good fine great' if i % 2 else 'bad dull poor'} film number w{i}", "pos" if i % 2 else "neg")
            for i in range(80)]
    csv = tmp_path / "tiny.csv"
    csv.write_text("text,label\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    data = task.load(str(csv))
    teacher_cfg = task.teacher_config(layers=1, hidden=64, heads=2)
    teacher = tmp_path / "text-teacher.keras"
    storage.save_model(task.build_teacher(teacher_cfg, data.tokenizer.size, len(data.classes)), teacher,
                       {"kind": "teacher", "task": "text", "dataset": str(csv)})
    preset = {"name": "tiny-text", "task": "text", "dataset": str(csv), "teacher": {"layers": 1, "hidden": 64,
                                                                                     "heads": 2},
              "distill": {"student": {"layers": 1, "hidden": 64, "heads": 2}, "epochs": 1, "batch_size": 16}}
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    made = studies.create_grid_study("text-grid", url, preset, [2.0], [0.5, 0.9], teacher=str(teacher))
    assert made["trials"] == 2
    assert studies.study_view("text-grid", url)["spec"]["space"]["units"] == [64]


# --- the toy task goes all the way: nothing written for it outside tests/toytask/ -------------------
@pytest.mark.slow
def test_the_toy_task_runs_an_experiment_a_sweep_and_an_export(toy):
    from kdcore import experiments, export, presets

    assert presets.demo("toy") == "toy-quick" and presets.names("toy") == ["toy-quick"]
    result = experiments.run_experiment("toy-quick", seeds=2)
    assert result["status"] == "finished" and result["task"] == "toy"
    assert [r["seed"] for r in result["runs"]] == [0, 1] and result["teacher_accuracy"] > 0.6
    runs = storage.run_store().runs()
    assert [(r["kind"], r["status"]) for r in runs] == [("experiment", "finished")]

    frame = experiments.sweep("toy-quick", [2.0, 4.0], [0.5, 0.9])
    assert len(frame) == 4 and set(frame["units"]) == {4}  # the preset's student, by the task's width setting
    assert frame["student"].between(0, 1).all()
    assert frame["teacher"].iloc[0] == pytest.approx(result["teacher_accuracy"])  # the experiment's teacher, reused

    record = export.export(result["teacher_model"], "int8", time_keras=False)
    assert record["dataset"] == "blobs" and record["test_images"] == 300 and record["input_shape"] == [8]
    assert abs(record["accuracy_change"]) < 0.05 and record["accuracy"] > 0.6


@pytest.mark.slow
def test_the_toy_task_runs_a_study_with_two_workers_on_sqlite(toy):
    """Both workers run in this process, where the toy task is registered (a worker process would not know it)."""
    from kdcore import studies

    url = f"sqlite:///{storage.home() / 'studies.db'}"
    made = studies.create_grid_study("toy-grid", url, "toy-quick", [2.0, 4.0], [0.5, 0.9], epochs=1)
    assert made["trials"] == 4
    answers = []
    workers = [threading.Thread(target=lambda: answers.append(studies.run_worker("toy-grid", url, heartbeat=2)))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert len(answers) == 2 and sum(a["completed"] for a in answers) == 4
    view = studies.study_view("toy-grid", url)
    assert view["done"] and view["states"]["complete"] == 4
    assert sorted((c["units"], c["temperature"], c["alpha"]) for c in view["cells"]) == [
        (4, t, a) for t in (2.0, 4.0) for a in (0.5, 0.9)]


def test_predict_and_bench_ask_the_task_and_refuse_what_it_lacks_in_one_line(toy, capsys):
    assert cli.main(["predict", "--task", "toy", "--model", "nowhere.keras"]) == 2
    assert "task 'toy' has no example to predict (its example kind is 'none')" in capsys.readouterr().err
    assert cli.main(["bench", "--task", "toy"]) == 2
    err = capsys.readouterr().err
    assert "task 'toy' has no benchmark of its own" in err and len(err.strip().splitlines()) == 1
