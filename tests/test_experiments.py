"""Experiments over seeds: real (tiny) trainings, real run store.

Every test uses the ``tiny`` digits (800 train / 300 test) and a teacher of
one epoch, so the whole file stays within a few tens of seconds.
"""
from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdcore import experiments, figures, presets, storage, tasks
from kdcore.tasks.digits import TeacherConfig


TINY_TEACHER = {"epochs": 1}


def tiny_preset(**distill) -> dict:
    return {"name": "tiny", "dataset": "mnist-5k", "teacher": TINY_TEACHER,
            "distill": {"student": {"units": 32}, "epochs": 2, "temperature": 4.0, "alpha": 0.9, **distill}}


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory, tiny):
    """The tiny preset's teacher, trained once for this file (a real experiment caches it the same way)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDSTUDIO_HOME", str(tmp_path_factory.mktemp("teacher-home")))
        return Path(experiments.cached_teacher(TeacherConfig(**TINY_TEACHER), tiny)["path"])


@pytest.fixture
def seeded_teacher(kd_home, trained_teacher):
    """This test's data directory already holds the cached teacher, as after an earlier experiment."""
    for source in (trained_teacher, storage.sidecar_path(trained_teacher)):
        shutil.copy(source, storage.models_dir() / source.name)


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_is_a_valid_config(name):
    spec = presets.get(name)
    teacher, distill = presets.configs(name)
    teacher.validate()
    distill.validate()
    task = tasks.get(spec.get("task"))
    assert spec["description"] and spec["dataset"] in {row["name"] for row in task.datasets()}
    assert spec.get("omit_class") is None or 0 <= spec["omit_class"] <= 9


def test_experiment_shape_twins_and_run_store(tiny, seeded_teacher):
    """alpha = 0 makes the 'distilled' student its baseline's exact twin: same initial weights, same batches."""
    result = experiments.run_experiment(tiny_preset(alpha=0.0), seeds=2, data=tiny)
    assert result["status"] == "finished" and result["seeds"] == [0, 1] and result["teacher_cached"]
    for key in ("student_accuracy", "baseline_accuracy", "gain", "gap_recovered"):
        assert set(result[key]) == {"mean", "std", "values"}
    students = result["student_accuracy"]["values"]
    assert len(students) == 2
    assert result["student_accuracy"]["mean"] == pytest.approx(np.mean(students))
    assert result["student_accuracy"]["std"] == pytest.approx(np.std(students, ddof=1))
    assert students == result["baseline_accuracy"]["values"]  # identical twins per seed
    assert result["gain"]["values"] == [0.0, 0.0]
    assert 0.5 < result["teacher_accuracy"] <= 1.0 and result["seconds"] > 0

    runs = storage.run_store().runs("experiment")
    assert len(runs) == 1 and runs[0]["status"] == "finished"
    assert runs[0]["results"]["student_accuracy"]["values"] == students
    assert {"student s0", "baseline s0", "student s1", "baseline s1"} <= set(
        storage.run_store().epochs(runs[0]["id"]))


def test_two_seeds_give_the_t_interval_of_their_paired_gains(tiny, seeded_teacher):
    from scipy import stats as scipy_stats

    result = experiments.run_experiment(tiny_preset(), seeds=2, data=tiny, record=False)
    gains = result["gain"]["values"]
    half = scipy_stats.t.ppf(0.975, 1) * np.std(gains, ddof=1) / np.sqrt(2)
    assert result["gain_ci95"] == pytest.approx([np.mean(gains) - half, np.mean(gains) + half])
    assert result["verdict_method"] == "95 % t-interval over 2 seeds" and "p_value" not in result
    low, high = result["gain_ci95"]
    assert result["verdict"] == ("helped" if low > 0 else "hurt" if high < 0 else "tie")
    assert result["verdict_method"] in result["verdict_reason"]


def test_one_seed_is_judged_by_mcnemars_test_on_both_models_answers(tiny, seeded_teacher):
    result = experiments.run_experiment(tiny_preset(), seeds=1, data=tiny, record=False)
    won, lost = map(int, re.search(r"over 300 test examples \((\d+) won, (\d+) lost\)",
                                   result["verdict_method"]).groups())
    assert (won - lost) / 300 == pytest.approx(result["gain"]["mean"], abs=1e-6), "the paired gain is the accuracy gain"
    k, n = min(won, lost), won + lost
    hand = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)  # exact two-sided, Bin(n, 1/2)
    assert result["p_value"] == pytest.approx(hand)
    low, high = result["gain_ci95"]
    assert low <= result["gain"]["mean"] <= high
    assert result["verdict"] == ("helped" if low > 0 else "hurt" if high < 0 else "tie")
    assert f"p = {hand:.2g}" in result["verdict_reason"]

    twins = experiments.run_experiment(tiny_preset(alpha=0.0), seeds=1, data=tiny, record=False)
    assert twins["verdict"] == "tie" and twins["gain_ci95"] == [0.0, 0.0] and twins["p_value"] == 1.0
    assert "no disagreements" in twins["verdict_method"]


def test_teacher_is_trained_once_per_recipe_and_dataset(tiny):
    cfg = TeacherConfig(epochs=1)
    first = experiments.cached_teacher(cfg, tiny)
    again = experiments.cached_teacher(cfg, tiny)
    assert not first["cached"] and again["cached"]
    assert again["path"] == first["path"] and again["accuracy"] == pytest.approx(first["accuracy"])
    assert storage.read_sidecar(first["path"])["config"] == dataclasses.asdict(cfg)
    other_recipe = experiments._fingerprint(dataclasses.replace(cfg, dropout=0.2), tiny)
    other_data = experiments._fingerprint(cfg, tiny.subset(700, seed=2))
    assert len({Path(first["path"]).stem, f"teacher-{other_recipe}", f"teacher-{other_data}"}) == 3


def test_transfer_set_without_a_class_keeps_logit_rows_aligned(tiny):
    logits = np.arange(len(tiny.y_train) * 10, dtype="float32").reshape(-1, 10)
    transfer, rows = experiments.without_class(tiny, logits, 3)
    assert 3 not in transfer.y_train and len(transfer.y_train) == len(rows) == (tiny.y_train != 3).sum()
    kept = np.flatnonzero(tiny.y_train != 3)
    assert np.array_equal(rows[:, 0] // 10, kept) and np.array_equal(transfer.x_train, tiny.x_train[kept])
    assert transfer.x_test is tiny.x_test


def test_class_bias_matches_the_class_share_on_training_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 10))
    logits[:, 3] -= 5.0  # a class the model has learnt to avoid
    bias = experiments.class_bias(logits, 3, 0.1)
    shifted = logits.copy()
    shifted[:, 3] += bias
    assert bias > 0 and (shifted.argmax(-1) == 3).mean() == pytest.approx(0.1, abs=0.002)


def test_omit_class_reports_per_class_accuracy_with_a_bias_chosen_on_training_data(tiny, seeded_teacher):
    preset = dict(tiny_preset(alpha=1.0, temperature=8.0), omit_class=3)
    result = experiments.run_experiment(preset, seeds=1, data=tiny)
    shuffled = dataclasses.replace(tiny, y_test=np.random.default_rng(0).permutation(tiny.y_test))
    again = experiments.run_experiment(preset, seeds=1, data=shuffled)
    omit = result["omit"]
    assert result["omit_class"] == 3 and len(omit["per_class"]["student"]) == 10
    assert omit["baseline_class"]["mean"] == 0.0  # the baseline never saw a 3 and has no teacher
    assert 0.0 <= omit["student_class"]["mean"] <= omit["student_class_after_bias"]["mean"] <= 1.0
    assert again["omit"]["bias"]["values"] == omit["bias"]["values"]  # test labels play no part


def test_sweep_has_one_row_per_cell_and_a_heatmap(tiny, seeded_teacher):
    frame = experiments.sweep(tiny_preset(), temperatures=[1, 4], alphas=[0.5], seeds=1, data=tiny)
    assert list(frame[["temperature", "alpha", "units"]].itertuples(index=False, name=None)) == [
        (1.0, 0.5, 32), (4.0, 0.5, 32)]
    assert frame["gain"].to_numpy() == pytest.approx((frame["student"] - frame["baseline"]).to_numpy())
    assert frame["baseline"].nunique() == 1  # one baseline per width, shared by its cells
    heat = figures.sweep_heatmap(frame)
    assert np.asarray(heat.data[0].z).shape == (1, 2)
    assert storage.run_store().runs("sweep")[0]["results"]["cells"] == frame.to_dict("records")


def test_no_choice_of_a_sweep_reads_the_test_split(tiny, seeded_teacher):
    """The same sweep with every test label wrong: its test columns move, its valid columns and its pick do not.

    Then the pick is handed the cells with their test gains reversed against
    the valid ones: a best cell chosen by test would change.
    """
    poisoned = dataclasses.replace(tiny, y_test=(tiny.y_test + 1) % 10)
    grid = dict(temperatures=[1, 8], alphas=[0.2, 0.9], seeds=1, record=False)
    real = experiments.sweep(tiny_preset(epochs=1), data=tiny, **grid)
    again = experiments.sweep(tiny_preset(epochs=1), data=poisoned, **grid)
    valid = ["valid_student", "valid_baseline", "valid_gain"]
    np.testing.assert_array_equal(real[valid].to_numpy(), again[valid].to_numpy())
    assert (again["student"] < real["student"]).all()  # the poison reached the test split
    cells, poisoned_cells = real.to_dict("records"), again.to_dict("records")
    assert real["valid_gain"].nunique() > 1  # else any pick would do
    best = experiments.best_cell(cells)
    assert best["valid_gain"] == real["valid_gain"].max()
    pick = ("units", "temperature", "alpha")
    assert [experiments.best_cell(poisoned_cells)[k] for k in pick] == [best[k] for k in pick]
    reversed_test = [dict(c, gain=-c["valid_gain"], student=-c["valid_student"]) for c in cells]
    assert [experiments.best_cell(reversed_test)[k] for k in pick] == [best[k] for k in pick]


def test_bad_values_are_refused_by_name(tiny):
    with pytest.raises(ValueError, match="unknown preset"):
        experiments.run_experiment("nope", seeds=1)
    with pytest.raises(ValueError, match="seeds"):
        experiments.run_experiment("quick", seeds=0)
    with pytest.raises(ValueError, match="omit_class"):
        experiments.run_experiment(tiny_preset(), seeds=1, omit_class=12, data=tiny)
    with pytest.raises(ValueError, match="temperature"):
        experiments.sweep(tiny_preset(), temperatures=[0], alphas=[0.5], data=tiny)
    assert storage.run_store().runs() == []  # refused before anything was queued or trained


def test_page_runs_an_experiment_in_the_background_and_draws_the_seed_spread(monkeypatch, tmp_path, tiny):
    from streamlit.testing.v1 import AppTest

    from kdcore.jobs import runner
    from tests.conftest import ROOT

    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    monkeypatch.setitem(presets.PRESETS, "quick", dict(tiny_preset(epochs=1), dataset=str(npz),
                                                       description="tiny"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    preset = at.selectbox(key="experiments.preset")
    assert preset.options == presets.names("digits") and preset.value == "default"
    preset.select("omit-3").run()
    assert "no 3 in the transfer set" in " ".join(str(m.value) for m in at.markdown)
    assert at.selectbox(key="experiments.omit-3.omit").value == 3

    at.selectbox(key="experiments.preset").select("quick").run()
    at.number_input(key="experiments.quick.seeds").set_value(2).run()
    next(b for b in at.button if b.label == "Run experiment").click().run()
    job = runner().get(at.session_state["experiment_job"])
    assert job.wait(240) and job.status == "finished", job.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"Gain of distillation", "Gap recovered"} <= {m.label for m in at.metric}
    low, high = job.result["gain_ci95"]
    shown = " ".join(str(m.value) for m in at.markdown)
    assert f"(95 % CI {100 * low:+.1f} to {100 * high:+.1f} points, 95 % t-interval over 2 seeds)" in shown, shown
    bars = at.get("plotly_chart")[-1].proto.spec
    assert "Distilled student" in bars and "Baseline (from scratch)" in bars and "error_y" in bars
    assert list(at.dataframe[0].value["seed"]) == [0, 1]
    row = storage.run_store().get(job.run_id)
    assert row["kind"] == "experiment" and row["status"] == "finished"
    assert row["results"]["student_accuracy"]["values"] == job.result["student_accuracy"]["values"]
    assert {"student s0", "baseline s1"} <= set(storage.run_store().epochs(job.run_id))

    at.multiselect(key="experiments.sweep.T").set_value([4.0]).run()
    at.multiselect(key="experiments.sweep.alpha").set_value([0.9]).run()
    next(b for b in at.button if b.label == "Run sweep").click().run()
    sweep_job = runner().get(at.session_state["sweep_job"])
    assert sweep_job.wait(240) and sweep_job.status == "finished", sweep_job.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "32-unit student: valid gain over the baseline" in at.get("plotly_chart")[-1].proto.spec
    assert any("Best cell, picked on the valid split: width 32, T=4" in c.value for c in at.caption)
    assert len(at.dataframe[-1].value) == 1

    at.switch_page("pages/runs.py").run()  # the Runs page lists it with its seed spread
    assert not at.exception, [e.value for e in at.exception]
    student = job.result["student_accuracy"]
    summaries = " ".join(at.dataframe[0].value["results"])
    assert f"student {student['mean']:.1%} ± {student['std']:.1%}" in summaries
    assert f"{job.result['verdict']}: {100 * job.result['gain']['mean']:+.1f} points (95 % CI" in summaries


@pytest.mark.parametrize("argv, message", [
    (["experiment", "--preset", "nope", "--json"], "unknown preset 'nope'"),
    (["experiment", "--preset", "quick", "--seeds", "0"], "seeds must be between 1 and 20"),
    (["experiment", "--preset", "quick", "--labels-fraction", "0"], "labels_fraction must be > 0.0"),
    (["sweep", "--preset", "quick", "--temperatures", "1,x", "--alphas", "0.5"], "comma-separated numbers"),
    (["sweep", "--preset", "quick", "--temperatures", "-1", "--alphas", "0.5"], "temperature must be > 0.0"),
])
def test_cli_refuses_bad_values_in_one_line(capsys, argv, message):
    from kdcore import cli

    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1

