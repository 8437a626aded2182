"""The benchmark runs end to end on tiny data and reports every figure; speed itself is never asserted here."""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from kdcore import bench, cli
from kdcore.tasks.digits import bench as digits_bench

RATIOS = ("distill_vs_scratch", "distill_vs_keras_distiller", "distill_vs_tape_loop", "fit_efficiency",
          "poll_slowdown", "live_lag_s", "predict_ms", "peak_rss_mb")


def test_quick_bench_reports_every_figure_finite(tiny, monkeypatch):
    monkeypatch.setattr(digits_bench, "MIN_EPOCH_S", 0.0)  # tiny's epochs are far too short to time: see the next test
    result = digits_bench.run(tiny, epochs=2, repeats=1, quick=True)

    assert json.loads(json.dumps(result, allow_nan=False)) == result
    for key in RATIOS:
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert set(result["epoch_s"]) == set(result["epoch_cpu_s"]) == {"scratch", "distill", "distill_polled",
                                                                  "keras_distiller", "tape_loop"}
    assert all(math.isfinite(r) and r > 0 for r in result["cpu_ratios"].values())
    assert all(seconds > 0 for seconds in result["epoch_s"].values())
    assert result["train_images"] == len(tiny.y_train) and result["epochs"] == 2
    assert result["teacher_logits_s"] > 0 and result["raw_step_samples_per_s"] > 0
    assert result["retracing_warnings"] == 0
    assert set(result["meets_target"]) <= set(digits_bench.TARGETS)
    assert "distill/scratch" in bench.text(result)


def test_epochs_too_short_to_time_give_no_ratios_and_say_why():
    short = {"scratch": 0.16, "distill": 0.18, "distill_polled": 0.19, "keras_distiller": 0.5, "tape_loop": 0.4}
    result = digits_bench._ratios(short, short, 4000, 30_000.0)
    assert result == {"ratios_omitted": "epochs of 0.16 s are too short to time (under 0.5 s): ratios left out; "
                                        "measure on fashion-mnist"}
    long = {k: 10 * v for k, v in short.items()}
    result = digits_bench._ratios(long, long, 60_000, 50_000.0)
    assert result["cpu_ratios"]["distill_vs_scratch"] == result["distill_vs_scratch"] == 1.125
    assert result["fit_efficiency"] == round(60_000 / 1.8 / 50_000, 3)
    assert bench._verdicts(result, digits_bench.TARGETS) == {
        "cpu_ratios.distill_vs_scratch": False, "distill_vs_keras_distiller": True, "fit_efficiency": False,
        "poll_slowdown": True}


def test_bench_is_a_cli_subcommand_and_refuses_a_single_epoch(tiny):
    args = cli.build_parser().parse_args(["bench", "--quick", "--json"])
    assert args.quick and args.json and not hasattr(args, "first_paint")  # a probe now: lab/first_paint.py

    with pytest.raises(ValueError, match="epochs must be >= 2"):
        digits_bench.run(tiny, epochs=1)


def test_long_epochs_run_several_steps_per_call_and_still_stop_and_catch_nan(tiny):
    """The speed-up's price, kept small: with N steps per call, stop and NaN checks come every N batches."""
    from kdcore import training
    from kdcore.dataset import Dataset
    from kdcore.config import DistillConfig
    from kdcore.tasks.digits import StudentConfig
    from kdcore.tasks.digits import build_student
    from kdcore.progress import Progress

    assert [training.steps_per_execution(s) for s in (63, 199, 200, 450, 938, 10_000)] == [1, 1, 2, 4, 8, 8]
    cfg = DistillConfig(epochs=2, batch_size=2, student=StudentConfig(units=16))  # 400 batches an epoch: N = 4
    small = Dataset("tiny", tiny.x_train[:800], tiny.y_train[:800], tiny.x_test, tiny.y_test, "tiny",
                    x_valid=tiny.x_valid, y_valid=tiny.y_valid)  # all 800 train: no valid carved out of them
    stopped = Progress()
    stopped.request_stop()
    run = training.fit(build_student(cfg.student), small, cfg, progress=stopped, series="s")
    assert run.status == "stopped"
    assert [step for step, _ in stopped.snapshot()["batches"]["s"]] == [4]

    overflow = Dataset("overflow", small.x_train * 0 + 3e38, small.y_train, tiny.x_test, tiny.y_test, "overflow",
                       x_valid=tiny.x_valid, y_valid=tiny.y_valid)
    run = training.fit(build_student(cfg.student), overflow, cfg)
    assert run.status == "failed" and run.reason == "loss became NaN at epoch 1 batches 1-4"


SLOWER_POLLERS = {"JOBS_EVERY_S": 3.0,  # the sidebar's status line: a bar, no curves to keep live
                  "STUDY_EVERY_S": 2.0}  # a study's table, read from its SQLite database


def _module_constants(tree) -> dict:
    """The numbers a page binds to module-level names (``JOBS_EVERY_S = 3.0``)."""
    return {t.id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for t in node.targets if isinstance(t, ast.Name)}


def _pollers() -> list[tuple[str, str, float]]:
    """(where, the constant's name or "", seconds) for every ``run_every`` in app.py and pages/.

    A conditional interval (``1.0 if live else None``) counts its number; an
    interval the test cannot resolve fails here instead of going unchecked.
    """
    root = Path(__file__).resolve().parents[1]
    out = []
    for path in sorted((root / "pages").glob("*.py")) + [root / "app.py"]:
        tree = ast.parse(path.read_text())
        constants = _module_constants(tree)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            for kw in (k for k in call.keywords if k.arg == "run_every"):
                where = f"{path.relative_to(root)}:{kw.value.lineno}"
                branches = [kw.value.body, kw.value.orelse] if isinstance(kw.value, ast.IfExp) else [kw.value]
                for expr in branches:
                    if isinstance(expr, ast.Constant) and expr.value is None:
                        continue  # that branch does not poll
                    name = expr.id if isinstance(expr, ast.Name) else ""
                    value = constants.get(name) if name else expr.value if isinstance(expr, ast.Constant) else None
                    assert isinstance(value, (int, float)), f"{where}: run_every={ast.unparse(expr)} is not resolved"
                    out.append((where, name, float(value)))
    return out


def test_every_page_poller_runs_at_the_interval_it_is_meant_to():
    """live_lag_s means what a viewer sees only if the bench polls as often as the live panels refresh.

    Every other poller is named in SLOWER_POLLERS with its interval, so a
    changed constant is caught as surely as a changed literal.
    """
    pollers = _pollers()
    assert {name for _, name, _ in pollers} >= set(SLOWER_POLLERS)
    assert any(name == "" for _, name, _ in pollers)  # the live panels' literal 1.0
    wrong = [(where, name, seconds) for where, name, seconds in pollers
             if seconds != SLOWER_POLLERS.get(name, bench.POLL_INTERVAL_S)]
    assert wrong == []
