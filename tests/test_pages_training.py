"""The Home, Teacher, Distill and Runs screens, driven through the real app with Streamlit's AppTest.

Jobs are real Keras trainings, one epoch on the ``tiny`` digits (800 train,
300 test) saved as a .npz file, which is what the sidebar accepts. The job
runner is process-wide, so every test waits for the jobs it started before it
ends. AppTest never fires a fragment's ``run_every``: after a job ends, a test
reruns the page, as the fragment would in a browser. AppTest runs a page file
on its own (the ``pages/`` folder puts it in Streamlit's folder mode), so the
sidebar of app.py is not part of these tests; the browser tests cover it.
"""
import shutil

import numpy as np
import pytest

from kdcore import presets, storage
from kdcore.tasks.digits import StudentConfig, TeacherConfig
from kdcore.jobs import runner
from kdcore.tasks.digits import student_stats
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
TIMEOUT = 120  # a first run imports TensorFlow (for the sidebar's device line); on 2 busy cores that is slow


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, tiny):
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    return str(path)


def open_page(page: str, dataset: str | None = None, **query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    if dataset:
        at.session_state["dataset"] = dataset
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at, label: str):
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    buttons[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_jobs() -> None:
    for job in runner().jobs():
        assert job.wait(240), f"{job.title} did not end"


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.fixture
def teacher(kd_home, teacher_file):
    """The session's real teacher, copied (model and sidecar) into this test's data directory."""
    dest = storage.models_dir() / "fixture-teacher.keras"
    shutil.copy(teacher_file, dest)
    shutil.copy(storage.sidecar_path(teacher_file), storage.sidecar_path(dest))
    return dest


def test_pages_render_and_point_to_the_teacher_when_there_is_none():
    at = open_page("home")
    assert [b.label for b in at.button] == ["Run quick demo"]
    assert "Knowledge distillation" in texts(at.markdown)
    at.switch_page("pages/teacher.py").run()
    assert not at.exception
    assert {"Train teacher"} <= {b.label for b in at.button}
    assert at.selectbox(key="teacher.variant").value == "cnn"
    at.switch_page("pages/distill.py").run()
    assert not at.exception
    assert "no teacher yet" in texts(at.info)
    assert not at.button  # nothing to start without a teacher
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    assert "No runs yet" in texts(at.info)


def test_distill_sliders_update_the_size_table_and_the_url(teacher):
    at = open_page("distill", student_units="32", temperature="8.0")
    assert at.slider(key="distill.student_units").value == 32, "a link's settings are read at start"
    assert at.slider(key="distill.temperature").value == 8.0

    def student_params():
        return at.dataframe[0].value.loc["Parameters", "Student"]

    assert student_params() == f"{student_stats(StudentConfig(units=32))['params']:,}"
    at.slider(key="distill.student_units").set_value(256).run()
    assert student_params() == f"{student_stats(StudentConfig(units=256))['params']:,}"
    assert at.query_params["student_units"] == "256", "the URL follows the sliders"
    at.slider(key="distill.student_filters").set_value(8).run()
    assert student_params() == f"{student_stats(StudentConfig(filters=8, units=256))['params']:,}"

    at.selectbox(key="distill.preset").select("hinton-mlp").run()
    _, hinton = presets.configs("hinton-mlp")
    assert at.slider(key="distill.student_units").value == hinton.student.units
    assert at.slider(key="distill.temperature").value == hinton.temperature
    assert at.query_params["student_units"] == str(hinton.student.units)

    at.selectbox(key="distill.loss").select("logit-mse").run()
    assert "temperature has no effect" in texts(at.warning), "pipeline.notes are shown before starting"


def test_a_bad_link_is_named_and_the_defaults_are_used(teacher):
    at = open_page("distill", loss="nope", student_units="4096")
    assert "loss must be one of" in texts(at.warning)
    assert at.selectbox(key="distill.loss").value == "kl"
    at = open_page("distill", student_units="4096")
    assert "outside the slider's range" in texts(at.warning)
    assert at.slider(key="distill.student_units").value == 1024


def short_teacher_form(data: str):
    """The Teacher page on ``data`` set for a short run: no augmentation, 1 epoch, batches of 100."""
    at = open_page("teacher", data)
    at.checkbox(key="teacher.augment").uncheck()
    at.number_input(key="teacher.epochs").set_value(1)
    at.number_input(key="teacher.batch_size").set_value(100)
    return at


def test_teacher_page_trains_a_teacher_that_becomes_active(tiny_npz):
    at = short_teacher_form(tiny_npz)
    at.slider(key="teacher.dropout").set_value(0.0).run()
    click(at, "Train teacher")
    job = runner().get(at.session_state["teacher_job"])
    assert job.kind == "teacher" and job.config["epochs"] == 1
    wait_for_jobs()
    assert job.status == "finished", job.error
    at.run()
    assert [m.value for m in at.metric if m.label == "Teacher test accuracy"] == [f"{job.result.score:.1%}"]
    assert "finished" in texts(at.success)
    assert at.session_state["teacher_path"] == job.result.model
    assert [b.value for b in at.selectbox if b.label == "Active teacher"] == [job.result.model]


def test_distill_stop_queue_and_discard(teacher, tiny_npz):
    from kdcore import pipeline

    blocker = pipeline.start_teacher(TeacherConfig(epochs=200), tiny_npz)  # stopped below, never finishes
    at = open_page("distill", tiny_npz)
    at.number_input(key="distill.epochs").set_value(1).run()
    click(at, "Distil student")
    job = runner().get(at.session_state["distill_job"])
    assert "Queued behind Teacher cnn on tiny" in texts(at.info)
    click(at, "Stop training")
    blocker.stop()
    wait_for_jobs()
    assert job.status == "stopped"
    at.run()
    assert "stopped" in texts(at.warning)
    assert {"Run again", "Discard"} <= {b.label for b in at.button}
    click(at, "Run again")
    again = runner().get(at.session_state["distill_job"])
    assert again is not job and again.config == job.config
    again.stop()
    wait_for_jobs()
    at.run()
    click(at, "Discard")
    assert storage.run_store().get(again.run_id) is None
    assert "Discard" not in {b.label for b in at.button}


def test_distill_run_reports_results_and_runs_page_lists_and_deletes_it(teacher, tiny_npz):
    at = open_page("distill", tiny_npz)
    at.slider(key="distill.student_units").set_value(32)
    at.number_input(key="distill.epochs").set_value(1)
    at.number_input(key="distill.batch_size").set_value(100).run()
    click(at, "Distil student")
    job = runner().get(at.session_state["distill_job"])
    wait_for_jobs()
    assert job.status == "finished", job.error
    at.run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Distilled student"] == f"{job.result.student_score:.1%}"
    assert shown["Baseline (no teacher)"] == f"{job.result.baseline_score:.1%}"
    assert shown["Teacher"] == f"{job.result.teacher_score:.1%}"
    verdict = texts(at.markdown)
    assert "gap" in verdict or "did not help" in verdict
    low, high = job.result.verdict().ci95
    assert f"(95 % CI {100 * low:+.1f} to {100 * high:+.1f} points, McNemar's exact test over" in verdict, verdict
    assert at.session_state["student_path"] == job.result.model

    at.switch_page("pages/runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["kind"]) == ["distill"] and list(table["status"]) == ["finished"]
    assert f"student {job.result.student_score:.1%}" in table["results"][0]
    assert at.multiselect[0].value == [job.run_id]
    chart = at.get("plotly_chart")[0]
    assert "student" in chart.proto.spec and "baseline" in chart.proto.spec
    click(at, "Delete run…")
    assert "cannot be undone" in texts(at.warning)
    click(at, "Yes, delete")
    assert storage.run_store().runs() == []
    assert "No runs yet" in texts(at.info)


def test_home_demo_runs_teacher_then_student_and_baseline(monkeypatch, tiny_npz):
    monkeypatch.setitem(presets.PRESETS["quick"], "dataset", tiny_npz)
    monkeypatch.setitem(presets.PRESETS["quick"], "teacher", {"epochs": 1, "batch_size": 100})
    monkeypatch.setitem(presets.PRESETS["quick"], "distill",
                        {"student": {"units": 32}, "epochs": 1, "batch_size": 100})
    at = open_page("home")
    click(at, "Run quick demo")
    job = runner().get(at.session_state["demo_job"])
    wait_for_jobs()
    assert job.status == "finished", job.error
    assert set(job.progress.snapshot()["series"]) == {"teacher", "student", "baseline"}
    at.run()
    assert {"Distilled student", "Baseline (no teacher)", "Teacher"} <= {m.label for m in at.metric}
    assert at.session_state["teacher_path"] == job.result.teacher_model
    assert at.session_state["student_path"] == job.result.model
    assert "none yet" not in texts(at.caption), "both models are shown at a glance"


def test_curve_figures_draw_what_the_progress_holds():
    from kdcore import figures

    record = {"epoch": 1, "loss": 0.9, "soft": 0.4, "hard": 1.1, "accuracy": 0.7, "valid_accuracy": 0.8}
    series = {"student": [record], "baseline": [dict(record, soft=0.0)]}
    loss = figures.loss_curves(series, {"student": [(1, 2.0), (2, 1.5)]})
    assert {t.name for t in loss.data} == {"student (batch)", "student total", "student soft", "student hard",
                                           "baseline total", "baseline hard"}, "a soft term that is all zero is left out"
    accuracy = figures.score_curves(series, teacher_score=0.95)
    assert {t.name for t in accuracy.data} == {"student valid", "student train", "baseline valid", "baseline train"}
    assert [s.y0 for s in accuracy.layout.shapes] == [0.95], "the teacher is a horizontal reference line"
    old = {key.replace("valid_", "test_"): value for key, value in record.items()}  # kept before the valid split
    overlay = figures.runs_overlay({"run a": series, "run b": {"teacher": [old]}})
    assert [t.name for t in overlay.data] == ["run a · student valid", "run a · baseline valid", "run b · teacher test"]
    assert overlay.data[2].y == (0.8,)  # an old run's test curve is still drawn beside new valid ones
