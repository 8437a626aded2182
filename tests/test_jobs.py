"""Background jobs: real tiny trainings in the runner's thread, watched through Progress and the run store."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from kdcore.tasks.digits import DIGITS

from kdcore import training
from kdcore.tasks import digits as models
from kdcore.config import DistillConfig
from kdcore.tasks.digits import StudentConfig, TeacherConfig
from kdcore.jobs import JobRunner
from kdcore.storage import run_store

HANG_GUARD_S = 180  # only stops a broken test from hanging; never a speed requirement


def baseline_work(data, **overrides):
    """A job that trains a small from-scratch student, reporting into the job's Progress."""
    cfg = DistillConfig(**{"student": StudentConfig(units=16), "epochs": 2, "batch_size": 32, **overrides})

    def work(job):
        run = DIGITS.train_baseline(cfg, data, job.progress)
        return {"status": run.status, "reason": run.reason, "accuracy": run.valid_score}
    return work


def last_step(snapshot) -> int:
    points = snapshot["batches"].get("baseline", [])
    return points[-1][0] if points else 0


def poll(job, until, interval=0.01):
    """Snapshots taken while ``until(snapshot)`` is false and the job is not done."""
    seen = []
    while not job.done.is_set():
        snap = job.progress.snapshot()
        seen.append(snap)
        if until(snap):
            break
        time.sleep(interval)
    return seen


@pytest.fixture
def jobs():
    return JobRunner()


def test_job_runs_in_background_and_its_progress_grows(jobs, tiny):
    job = jobs.submit("baseline", "grows", baseline_work(tiny, epochs=3, batch_size=16))
    assert job.status in ("queued", "running")  # submit returned before the training ended
    running = [s for s in poll(job, until=lambda s: False) if s["status"] == "running"]
    assert job.wait(HANG_GUARD_S) and job.status == "finished"

    steps = [last_step(s) for s in running]
    epochs = [s["epoch"] for s in running]
    assert steps == sorted(steps) and len(set(steps)) >= 3
    assert epochs == sorted(epochs) and max(epochs) >= 1
    assert any(0 < s["fraction"] < 1 for s in running)

    final = job.progress.snapshot()
    assert [r["epoch"] for r in final["series"]["baseline"]] == [1, 2, 3]
    assert final["results"]["accuracy"] == final["series"]["baseline"][-1]["valid_accuracy"]
    assert final["device"] == training.device_info()["label"] and final["fraction"] == 1.0
    row = run_store().get(job.run_id)
    assert row["status"] == "finished" and row["results"]["accuracy"] == final["results"]["accuracy"]
    assert len(run_store().epochs(job.run_id)["baseline"]) == 3


def test_stop_ends_training_within_a_batch_and_keeps_its_epochs(jobs, tiny):
    job = jobs.submit("baseline", "to stop", baseline_work(tiny, epochs=200, batch_size=16))
    poll(job, until=lambda s: s["epoch"] >= 1 and last_step(s) > 0)
    job.stop()
    at_stop = last_step(job.progress.snapshot())  # read after the request: at least the step it came at
    assert job.wait(HANG_GUARD_S)

    snap = job.progress.snapshot()
    assert snap["status"] == "stopped" and snap["reason"] == "stopped by user"
    assert last_step(snap) - at_stop <= 1  # the batch running when asked may finish, no other
    assert len(snap["series"]["baseline"]) < 10
    row = run_store().get(job.run_id)
    assert row["status"] == "stopped" and row["reason"] == "stopped by user"
    assert [r["epoch"] for r in run_store().epochs(job.run_id)["baseline"]] == \
        [r["epoch"] for r in snap["series"]["baseline"]]


def test_error_in_work_fails_the_job_and_the_runner_goes_on(jobs):
    def broken(job):
        raise ValueError("teacher file is damaged\nsecond line of detail")

    failed = jobs.submit("distill", "broken", broken)
    after = jobs.submit("distill", "after", lambda job: {"answer": 42})
    assert failed.wait(HANG_GUARD_S) and after.wait(HANG_GUARD_S)

    assert failed.status == "failed"
    assert failed.progress.snapshot()["reason"] == "ValueError: teacher file is damaged"
    assert "Traceback" in failed.error
    row = run_store().get(failed.run_id)
    assert row["status"] == "failed" and row["reason"] == "ValueError: teacher file is damaged"
    assert after.status == "finished" and run_store().get(after.run_id)["results"] == {"answer": 42}


def test_two_jobs_queue_and_keep_their_curves_apart(jobs, tiny):
    first = jobs.submit("baseline", "first", baseline_work(tiny, epochs=2, batch_size=16))
    second = jobs.submit("baseline", "second", baseline_work(tiny, epochs=1, batch_size=64, seed=1))
    saw_queued_behind_running = False
    while not first.done.is_set():
        second_status, first_status = second.status, first.status  # second read first: no race
        if first_status == "running":
            assert second_status == "queued"
            saw_queued_behind_running = True
        time.sleep(0.01)
    assert saw_queued_behind_running
    assert first.wait(HANG_GUARD_S) and second.wait(HANG_GUARD_S)
    assert first.status == second.status == "finished"
    assert second.progress.snapshot()["started"] >= first.progress.snapshot()["ended"]

    for job, epochs, steps_per_epoch in ((first, 2, 50), (second, 1, 13)):
        snap = job.progress.snapshot()
        assert [r["epoch"] for r in snap["series"]["baseline"]] == list(range(1, epochs + 1))
        assert snap["steps"] == steps_per_epoch and last_step(snap) == epochs * steps_per_epoch
        stored = run_store().epochs(job.run_id)["baseline"]
        assert [r["loss"] for r in stored] == [r["loss"] for r in snap["series"]["baseline"]]
    assert {first.run_id, second.run_id} <= {r["id"] for r in run_store().runs()}
    assert {j.id for j in jobs.jobs()} == {first.id, second.id} and jobs.active() == []


def test_stopping_a_queued_job_means_it_never_starts(jobs):
    release, started = threading.Event(), []
    blocker = jobs.submit("teacher", "blocker", lambda job: release.wait(HANG_GUARD_S) and {})
    waiting = jobs.submit("teacher", "waiting", lambda job: started.append(1) or {})
    waiting.stop()
    release.set()
    assert blocker.wait(HANG_GUARD_S) and waiting.wait(HANG_GUARD_S)
    assert waiting.status == "stopped" and started == []
    assert run_store().get(waiting.run_id)["status"] == "stopped"
    assert jobs.find_run(waiting.run_id) is waiting and jobs.get(blocker.id) is blocker


def test_loss_that_becomes_nan_fails_the_job(jobs, tiny):
    """A teacher whose own training diverged (NaN weights) makes the student's loss NaN on its first batch.

    NaN pixels would not do: TensorFlow's ReLU turns NaN into 0, so such a run
    "finishes" at chance level; the loaders refuse NaN pixels for that reason.
    """
    teacher = models.build_teacher(TeacherConfig())
    logits_layer = teacher.get_layer("logits")
    kernel, bias = logits_layer.get_weights()
    logits_layer.set_weights([np.full_like(kernel, np.nan), bias])
    cfg = DistillConfig(student=StudentConfig(units=16), epochs=3, batch_size=32)

    def work(job):
        run = DIGITS.distill_student(cfg, teacher, tiny, job.progress)
        return {"status": run.status, "reason": run.reason}

    job = jobs.submit("distill", "nan", work)
    assert job.wait(HANG_GUARD_S)
    assert job.status == "failed"
    assert job.progress.snapshot()["reason"] == "loss became NaN at epoch 1 batch 1"
    row = run_store().get(job.run_id)
    assert row["status"] == "failed" and row["reason"] == "loss became NaN at epoch 1 batch 1"
    assert len(job.progress.snapshot()["batches"]["student"]) == 1  # it stopped at once, not after 3 epochs
    assert run_store().epochs(job.run_id) == {}  # the cut-short epoch is not recorded as a finished one
