"""The many-viewers load test (lab/viewers.py) and the shared live figures it led to (figures.live_curves).

The slow test is a real, small run of the load test: the dashboard as a
subprocess, a short distillation started through the Distill page, and two
viewer sessions speaking Streamlit's protocol. It checks that the protocol
works (sessions connect, draw their page, follow the fragments and receive
the progress) and that nothing fails; it asserts no speed, which is the
measurement on a quiet machine in docs/benchmarks.md.
"""
from __future__ import annotations

import time

import pytest

from kdcore import figures
from kdcore.progress import Progress
from lab import viewers


def _running(epochs_done: int = 0) -> Progress:
    progress = Progress("test")
    progress.start()
    progress.phase("student", epochs=5, steps=10)
    for epoch in range(1, epochs_done + 1):
        progress.epoch("student", {"epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5, "test_accuracy": 0.5})
    return progress


def test_live_curves_are_built_once_and_shared_until_the_job_writes():
    progress = _running(1)
    first = figures.live_curves("job-a", progress)
    assert figures.live_curves("job-a", progress) is first  # a second session, nothing written: the same figures


def test_live_curves_hold_batch_losses_briefly_but_never_an_epoch():
    progress = _running(1)
    first = figures.live_curves("job-b", progress, max_age_s=60)
    progress.batch("student", 1, 0.9)
    assert figures.live_curves("job-b", progress, max_age_s=60) is first  # a batch only: within max age, shared
    assert figures.live_curves("job-b", progress, max_age_s=0) is not first  # older than max age: rebuilt
    held = figures.live_curves("job-b", progress, max_age_s=60)
    progress.epoch("student", {"epoch": 2, "loss": 0.4, "accuracy": 0.6, "test_accuracy": 0.6})
    accuracy, _ = figures.live_curves("job-b", progress, max_age_s=60)
    assert accuracy is not held[0]
    assert list(accuracy.data[0].x) == [1, 2]  # the new epoch's point is in at once


def test_light_snapshot_leaves_the_curves_out():
    progress = _running(2)
    progress.batch("student", 3, 0.5)
    light = progress.snapshot(curves=False)
    assert light["series"] == {} and light["batches"] == {}
    assert light["epoch"] == 2 and light["fraction"] == progress.snapshot()["fraction"]


def test_load_test_refuses_bad_counts():
    with pytest.raises(ValueError, match="viewers must be"):
        viewers.run([0])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_viewers_watch_a_distillation_over_streamlits_protocol(teacher_file):
    t0 = time.time()
    result = viewers.run([2], dataset="mnist-5k", measure=1, batch_size=16, teacher=teacher_file,
                         timeout_s=800)
    assert result["viewers"] == 2
    watched = next(w for w in result["windows"] if w["viewers"] == 2)
    assert watched["epochs"] == 1
    assert result["viewer_errors"] == 0, watched["error_examples"]
    assert watched["viewer_missed_points"] == 0
    assert result["viewer_lag_s"] is not None and 0 <= result["viewer_lag_median_s"] <= result["viewer_lag_s"]
    assert result["viewer_lag_s"] < 30  # received while the run went on, not at its end
    assert result["server_errors"] == []
    assert result["viewer_slowdown"] > 0 and result["server_mb_per_viewer"] is not None
    assert result["seconds"] <= time.time() - t0 + 1
