"""The methods comparison: real (tiny) trainings of several recipes against one shared scratch student.

The digits ``tiny`` split (800 train / 300 test), a one-epoch teacher and one-epoch 32-unit MLP students,
with one- or two-value grids so the real run stays within seconds.
"""
from __future__ import annotations

import numpy as np
import pytest

from kdcore import cli, comparison, figures, presets, stats, storage

TINY = {"name": "tiny", "dataset": "mnist-5k", "teacher": {"epochs": 1},
        "distill": {"student": {"units": 32}, "epochs": 1, "temperature": 4.0, "alpha": 0.9}}


def test_method_list_puts_kd_first_and_refuses_an_unknown_method_by_name():
    assert comparison.method_list("dkd,kd,at") == ["kd", "dkd", "at"]
    assert comparison.method_list(["rkd"]) == ["kd", "rkd"]
    with pytest.raises(ValueError, match="unknown method 'nope'; shipped methods: at, dist, dkd"):
        comparison.method_list("kd,nope")


def test_a_grid_value_scales_the_teacher_terms_or_sets_the_setting():
    cfg = presets.configs("quick")[1]
    terms = comparison.method_config(cfg, "rkd", "weight", 2.0).recipe["stages"][0]["terms"]
    assert [t["weight"] for t in terms] == [1.0, 50.0, 100.0]  # labels kept; distance 25 and angle 50 doubled
    assert comparison.method_config(cfg, "kd", "temperature", 8.0).temperature == 8.0
    assert comparison.method_config(cfg, "fitnets", "hint_epochs", 2).hint_epochs == 2
    with pytest.raises(ValueError, match="scales its terms' weights, but one is the setting 'alpha'"):
        comparison.method_config(cfg, "kd", "weight", 2.0)


@pytest.mark.parametrize("argv, message", [
    (["experiment", "--preset", "quick", "--methods", "kd,nope"], "unknown method 'nope'; shipped methods: at,"),
    (["experiment", "--preset", "quick", "--student-filters", "4"], "apply to a methods comparison (--methods) only"),
    (["experiment", "--preset", "quick", "--methods", "at", "--omit-class", "3"], "apply to a plain experiment"),
])
def test_cli_refuses_a_bad_comparison_in_one_line(capsys, argv, message):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_methods_share_each_seeds_scratch_student_and_choose_on_valid(tiny):
    """kd (one T), dkd (two weights: the better valid one is kept), at (no feature map on an MLP): 2 seeds."""
    result = comparison.run_methods(TINY, "dkd,at", seeds=2, data=tiny,
                                    grids={"kd": ("temperature", (4.0,)), "dkd": ("weight", (0.5, 2.0))})
    assert result["status"] == "finished" and result["methods"] == ["kd", "dkd", "at"]
    table = {row["method"]: row for row in result["table"]}
    assert not table["at"]["applicable"] and "@attention" in table["at"]["reason"]

    dkd = table["dkd"]
    best = max(dkd["grid"], key=lambda g: g["valid"])
    assert dkd["value"] == best["value"] and set(best) == {"value", "valid"}  # the grid kept valid scores only
    runs = result["runs"]
    assert [(r["seed"], r["method"]) for r in runs] == [(0, "kd"), (0, "dkd"), (1, "kd"), (1, "dkd")]
    assert {r["value"] for r in runs if r["method"] == "dkd"} == {best["value"]}  # seed 0's choice, every seed
    for seed in (0, 1):
        mine = {r["method"]: r for r in runs if r["seed"] == seed}
        assert mine["kd"]["scratch"] == mine["dkd"]["scratch"] == result["scratch"]["values"][seed]
        assert mine["dkd"]["gain_vs_kd"] == pytest.approx(mine["dkd"]["accuracy"] - mine["kd"]["accuracy"])
    gains = [r["gain_vs_kd"] for r in runs if r["method"] == "dkd"]
    interval = stats.seeds(gains)
    assert dkd["gain_vs_kd"]["mean"] == pytest.approx(np.mean(gains))
    assert dkd["gain_vs_kd"]["ci95"] == pytest.approx([interval.low, interval.high])
    assert dkd["verdict_vs_kd"] == comparison.VS_KD[interval.outcome]
    assert "gain_vs_kd" not in table["kd"] and table["kd"]["seconds"] > 0

    text = comparison.table_text(result)
    assert "at: not applicable: " in text and "(reference)" in text and dkd["verdict_vs_kd"] in text
    assert "| `at` |  | not applicable |  | stage 'distil', term 2: " in comparison.table_markdown(result)
    bars = figures.methods_bars(result).to_dict()["data"][0]
    assert list(bars["x"]) == ["kd", "dkd"] and bars["error_y"]["arrayminus"] is not None
    row = storage.run_store().runs()[0]
    assert row["kind"] == "methods" and row["status"] == "finished"


@pytest.mark.slow
def test_page_compares_methods_in_the_background_and_draws_their_intervals(monkeypatch, tmp_path, tiny):
    from streamlit.testing.v1 import AppTest

    from kdcore.jobs import runner
    from tests.conftest import ROOT

    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    monkeypatch.setitem(presets.PRESETS, "quick", dict(TINY, dataset=str(npz), description="tiny"))
    monkeypatch.setitem(comparison.GRIDS, "kd", ("temperature", (4.0,)))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="experiments.preset").select("quick").run()
    at.multiselect(key="experiments.methods").set_value(["at"]).run()
    at.number_input(key="experiments.methods.seeds").set_value(1).run()
    next(b for b in at.button if b.label == "Compare methods").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = runner().get(at.session_state["methods_job"])
    assert job.kind == "methods" and job.wait(240) and job.status == "finished", job.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Gain over the scratch student, 1 seed(s), 95 % CI" in at.get("plotly_chart")[-1].proto.spec
    shown = next(d.value for d in at.dataframe if "vs kd" in d.value)
    assert list(shown["method"]) == ["kd", "at"] and shown["vs kd"].iloc[1].startswith("stage 'distil'")
