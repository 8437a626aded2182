"""The benchmark runs end to end on tiny data and reports every figure; speed itself is never asserted here."""
from __future__ import annotations

import json
import math

import pytest

from kdcore import bench, cli

RATIOS = ("distill_vs_scratch", "distill_vs_keras_distiller", "distill_vs_tape_loop", "fit_efficiency",
          "poll_slowdown", "live_lag_s", "predict_ms", "peak_rss_mb")


def test_quick_bench_reports_every_figure_finite(tiny):
    result = bench.run(tiny, quick=True)

    assert json.loads(json.dumps(result, allow_nan=False)) == result
    for key in RATIOS:
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert set(result["epoch_s"]) == {"scratch", "distill", "distill_polled", "keras_distiller", "tape_loop"}
    assert all(seconds > 0 for seconds in result["epoch_s"].values())
    assert result["train_images"] == len(tiny.y_train) and result["epochs"] == 2
    assert result["teacher_logits_s"] > 0 and result["raw_step_samples_per_s"] > 0
    assert result["retracing_warnings"] == 0
    assert set(result["meets_target"]) <= set(bench.TARGETS)
    assert "distill/scratch" in bench.text(result)


def test_bench_is_a_cli_subcommand_and_refuses_a_single_epoch(tiny):
    args = cli.build_parser().parse_args(["bench", "--quick", "--json"])
    assert args.quick and args.json and not args.first_paint

    with pytest.raises(ValueError, match="epochs must be >= 2"):
        bench.run(tiny, epochs=1)
