"""The Metric value object: how a score reads, compares and closes a gap, and that a third metric needs no edit.

The last two tests are the bugs a metric that was only a name left behind: the
CLI's distil summary and the Runs page read accuracy keys only, so a language
model's run showed "n/a" and an empty chart.
"""
from __future__ import annotations

import pytest

from kdcore import metric, results
from kdcore.metric import ACCURACY, PERPLEXITY, Metric
from kdcore.results import DistillResult

# A made-up third metric, scored like accuracy but not binomial: it must work everywhere with no other edit.
F1 = Metric("f1", "Test F1", "points", percent=True)


def test_scores_and_changes_read_in_the_metrics_own_units():
    assert ACCURACY.format(0.9734) == "97.3%" and PERPLEXITY.format(121.54) == "121.5"
    assert ACCURACY.format(None) == PERPLEXITY.format(None) == "n/a"
    assert ACCURACY.format_change(0.012) == "+1.2 points"
    assert PERPLEXITY.format_change(-7.9) == "-7.9 ppl"
    assert PERPLEXITY.format_gain(7.9) == "-7.9 ppl", "a perplexity gain is a drop"
    assert ACCURACY.label == "Test accuracy" and PERPLEXITY.label == "Perplexity"


def test_a_gain_is_positive_when_the_student_is_better_whichever_way_better_points():
    assert ACCURACY.gain(0.95, 0.93) == pytest.approx(0.02) and ACCURACY.better(0.95, 0.93)
    assert PERPLEXITY.gain(120.0, 130.0) == pytest.approx(10.0) and PERPLEXITY.better(120.0, 130.0)
    assert PERPLEXITY.gain(130.0, 120.0) < 0 and not PERPLEXITY.better(130.0, 120.0)
    assert ACCURACY.gain(None, 0.9) is None


def test_the_gap_of_a_perplexity_is_closed_in_log_space():
    assert ACCURACY.gap_recovered(0.9, 0.8, 1.0) == pytest.approx(0.5)
    # 400 → 100 is a factor 4; 200 is half of that factor (a factor 2), not two thirds of the 300 points
    assert PERPLEXITY.gap_recovered(200.0, 400.0, 100.0) == pytest.approx(0.5)
    assert PERPLEXITY.gap_recovered(200.0, 400.0, 100.0) != pytest.approx((200 - 400) / (100 - 400))
    assert PERPLEXITY.gap_recovered(200.0, 100.0, 120.0) is None, "a teacher worse than the baseline leaves no gap"
    assert ACCURACY.gap_recovered(None, 0.8, 1.0) is None


def test_an_interval_reads_in_the_metrics_own_units():
    assert ACCURACY.format_interval(0.012, 0.028) == "+1.2 to +2.8 points"
    assert PERPLEXITY.format_interval(-12.04, -3.1) == "-12.0 to -3.1 ppl"


def test_records_resolve_to_their_metric_by_name_or_by_their_keys():
    assert metric.get("perplexity") is PERPLEXITY and metric.get(None) is ACCURACY
    with pytest.raises(ValueError, match="unknown metric 'bleu'; known: accuracy, perplexity"):
        metric.get("bleu")
    assert metric.of_record({"student_perplexity": 120.0}) is PERPLEXITY  # a record from before "metric" was kept
    assert metric.of_record({"metric": "f1", "student_f1": 0.8}) is F1
    assert metric.of_record({"student_accuracy": 0.9}) is metric.of_record({}) is ACCURACY
    assert metric.of_epochs({"student": [{"epoch": 1, "perplexity": 9.0, "valid_perplexity": 11.0}]}) is PERPLEXITY


def test_the_task_registry_still_hands_out_metric_objects():
    from kdcore import tasks
    from kdcore.tasks.base import Metric as FromBase

    assert tasks.Metric is FromBase is Metric
    assert tasks.get("lm").metric is PERPLEXITY and tasks.get("digits").metric is ACCURACY


def test_a_third_metric_works_through_the_verdict_and_the_json_with_no_other_edit():
    run = DistillResult("s.keras", "d", 500, "t.keras", 0.90, 0.85, 0.80, metric=F1, task="toy")
    out = run.to_json()
    assert {"teacher_f1", "student_f1", "baseline_f1"} <= set(out) and out["metric"] == "f1"
    assert out["gap_recovered"] == pytest.approx(0.5)
    assert out["verdict"] == "unknown", "a result made without its models has no paired test: one run cannot tell"
    assert "gain_ci95" not in out and "p_value" not in out
    v = results.verdict([0.05, 0.051, 0.049], F1)
    assert v.outcome == "helped" and v.why.endswith("in f1).") and "+4.8 to +5.2 points" in v.why
    assert F1.format(0.85) == "85.0%" and F1.format_gain(0.05) == "+5.0 points"


def test_perplexity_verdicts_read_a_negative_change_as_help():
    assert results.verdict([-5.0, -5.2, -4.9], PERPLEXITY).outcome == "helped"
    assert results.verdict([5.0, 5.2, 4.9], PERPLEXITY).outcome == "hurt"
    v = results.verdict([-5.0, -5.2, -4.9], PERPLEXITY)
    assert v.ci95[0] < v.gain < v.ci95[1] < 0, "the interval is in the gain's sign: below zero is good"
    assert "lies below zero" in v.why and v.headline(PERPLEXITY).startswith("helped: -5.0 ppl (95 % CI -5.")
    out = DistillResult("s", "ptb", 8000, "t", 100.0, 200.0, 400.0, metric=PERPLEXITY, task="lm").to_json()
    assert out["gap_recovered"] == pytest.approx(0.5) and out["gain"] == -200.0
    assert out["test_examples"] == out["test_images"] == 8000, "the old key stays for its readers"


@pytest.mark.slow
def test_the_cli_summarises_a_language_models_distillation_in_perplexity_with_baseline_and_verdict(
        toy_text, tmp_path, capsys):
    from kdcore import cli

    teacher, student = tmp_path / "t.keras", tmp_path / "s.keras"
    common = ["--task", "lm", "--dataset", str(toy_text), "--epochs", "1", "--batch-size", "8", "--seq-len", "10"]
    assert cli.main(["train-teacher", *common, "--units", "16", "--out", str(teacher)]) == 0
    assert "test perplexity" in capsys.readouterr().out
    assert cli.main(["distill", *common, "--teacher", str(teacher), "--student-units", "16", "--baseline",
                     "--out", str(student)]) == 0
    out = capsys.readouterr().out
    record = storage_record("distill")
    scores = {who: PERPLEXITY.format(record[f"{who}_perplexity"]) for who in ("student", "teacher", "baseline")}
    assert f"test perplexity {scores['student']} (teacher {scores['teacher']})" in out, out
    assert f"Baseline from scratch {scores['baseline']}" in out, out
    assert record["verdict_method"].startswith("paired bootstrap over") and len(record["gain_ci95"]) == 2
    assert record["verdict"] in ("helped", "tie", "hurt") and "p_value" not in record
    assert f"Verdict: {record['verdict']}: {PERPLEXITY.format_change(record['gain'])} (95 % CI " in out, out
    assert out.count("Verdict:") == 1, out
    assert "test accuracy" not in out and "n/a (teacher n/a)" not in out, out


def storage_record(kind: str) -> dict:
    """The results of the one run of ``kind`` in the run store."""
    from kdcore import storage

    (run,) = storage.run_store().runs(kind)
    return run["results"]


def test_the_runs_page_draws_a_language_models_own_metric_and_its_verdict():
    from streamlit.testing.v1 import AppTest

    from kdcore import storage
    from tests.conftest import ROOT

    from kdcore.stats import Interval

    method = "paired bootstrap over 300 test sentences (2,000 resamples)"
    run = DistillResult("s.keras", "toy.txt", 3000, "t.keras", 20.0, 25.0, 32.0, metric=PERPLEXITY, task="lm",
                        paired=Interval(7.0, 3.0, 12.0, method))  # positive = better, as kdcore.stats has it
    epochs = [(who, {"epoch": e, "loss": 3.0 / e, "perplexity": 40.0 / e, "valid_perplexity": 45.0 / e,
                     **({"test_perplexity": score} if e == 2 else {})})
              for who, score in (("student", 25.0), ("baseline", 32.0)) for e in (1, 2)]
    storage.run_store().add_run("distill", "Distil an LSTM", {"task": "lm"}, "toy.txt", status="finished",
                                results=run.to_json(), epochs=epochs)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value["results"][0]
    assert "student 25.0" in shown and "baseline 32.0" in shown and "gap recovered 53%" in shown
    assert f"helped: -7.0 ppl (95 % CI -12.0 to -3.0 ppl, {method})" in shown, shown
    chart = at.get("plotly_chart")[0].proto.spec
    assert "no epochs recorded" not in chart
    assert "Perplexity per epoch" in chart and '"type":"log"' in chart.replace(" ", "")
    assert chart.count("valid_perplexity") == 0 and "[45.0,22.5]" in chart.replace(" ", ""), chart[:2000]


def test_a_running_language_models_curves_are_in_perplexity_with_its_teacher_as_the_reference():
    from kdcore import figures
    from kdcore.progress import Progress

    progress = Progress("lm")
    progress.result(teacher_perplexity=15.0)
    progress.epoch("student", {"epoch": 1, "loss": 3.0, "perplexity": 40.0, "valid_perplexity": 45.0})
    scores, _ = figures.live_curves("lm-job", progress)
    assert scores.layout.yaxis.type == "log" and scores.layout.title.text == "Perplexity per epoch (lower is better)"
    assert [s.y0 for s in scores.layout.shapes] == [15.0]
    assert scores.layout.annotations[0].text == "teacher 15.0"
