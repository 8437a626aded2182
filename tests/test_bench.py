"""The benchmark runs end to end on tiny data and reports every figure; speed itself is never asserted here."""
from __future__ import annotations

import json
import math

import pytest

from kdcore import bench, cli

RATIOS = ("distill_vs_scratch", "distill_vs_keras_distiller", "distill_vs_tape_loop", "fit_efficiency",
          "poll_slowdown", "live_lag_s", "predict_ms", "peak_rss_mb")


def test_quick_bench_reports_every_figure_finite(tiny, monkeypatch):
    monkeypatch.setattr(bench, "MIN_EPOCH_S", 0.0)  # tiny's epochs are far too short to time: see the next test
    result = bench.run(tiny, quick=True)

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
    assert set(result["meets_target"]) <= set(bench.TARGETS)
    assert "distill/scratch" in bench.text(result)


def test_epochs_too_short_to_time_give_no_ratios_and_say_why():
    short = {"scratch": 0.16, "distill": 0.18, "distill_polled": 0.19, "keras_distiller": 0.5, "tape_loop": 0.4}
    result = bench._ratios(short, short, 4000, 30_000.0)
    assert result == {"ratios_omitted": "epochs of 0.16 s are too short to time (under 0.5 s): ratios left out; "
                                        "measure on fashion-mnist"}
    long = {k: 10 * v for k, v in short.items()}
    result = bench._ratios(long, long, 60_000, 50_000.0)
    assert result["cpu_ratios"]["distill_vs_scratch"] == result["distill_vs_scratch"] == 1.125
    assert result["fit_efficiency"] == round(60_000 / 1.8 / 50_000, 3)
    assert bench._verdicts(result) == {"cpu_ratios.distill_vs_scratch": False, "distill_vs_keras_distiller": True,
                                       "fit_efficiency": False, "poll_slowdown": True}


def test_bench_is_a_cli_subcommand_and_refuses_a_single_epoch(tiny):
    args = cli.build_parser().parse_args(["bench", "--quick", "--json"])
    assert args.quick and args.json and not hasattr(args, "first_paint")  # a script now: scripts/first_paint.py

    with pytest.raises(ValueError, match="epochs must be >= 2"):
        bench.run(tiny, epochs=1)


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
    small = Dataset("tiny", tiny.x_train[:800], tiny.y_train[:800], tiny.x_test, tiny.y_test, "tiny")
    stopped = Progress()
    stopped.request_stop()
    run = training.fit(build_student(cfg.student), small, cfg, progress=stopped, series="s")
    assert run.status == "stopped"
    assert [step for step, _ in stopped.snapshot()["batches"]["s"]] == [4]

    overflow = Dataset("overflow", small.x_train * 0 + 3e38, small.y_train, tiny.x_test, tiny.y_test, "overflow")
    run = training.fit(build_student(cfg.student), overflow, cfg)
    assert run.status == "failed" and run.reason == "loss became NaN at epoch 1 batches 1-4"


def test_the_poller_polls_at_the_pages_fragment_interval():
    """live_lag_s means what a viewer sees only if the bench polls as often as the pages' fragments refresh."""
    import re
    from pathlib import Path

    pages = Path(__file__).resolve().parents[1] / "pages"
    intervals = {float(v) for page in pages.glob("*.py")
                 for v in re.findall(r"run_every=([0-9.]+)", page.read_text())}
    assert intervals == {bench.POLL_INTERVAL_S}
