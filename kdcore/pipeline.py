"""The whole story of a run, top to bottom: dataset → teacher → logits → student → saved model + record.

The CLI calls these functions directly; the dashboard calls the ``start_*``
versions, which validate first (so a bad slider value is refused at once, with
its field named) and then hand the same function to the background job runner.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import data as datasets
from . import storage, training
from .config import DistillConfig, TeacherConfig, to_dict
from .jobs import Job, runner
from .models import student_stats, teacher_stats
from .progress import Progress


def _save(result: training.RunResult, out, default_name: str, meta: dict) -> str:
    """Save a finished model; a stopped or failed run keeps its record but saves no model."""
    if result.status != "finished":
        return ""
    path = Path(out) if out else storage.model_path(f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        return str(storage.save_model(result.model, path, meta))
    except storage.StorageError as exc:
        exc.unsaved = (result.model, meta)  # minutes of training survive a full disk: the job keeps them
        raise


def save_unsaved(job: Job) -> str:
    """Save again a model whose first save failed (disk full, read-only folder) once there is room.

    Raises :class:`~kdcore.storage.StorageError` again if it still cannot be written; the model stays on the job.
    """
    model, meta = job.unsaved
    path = str(storage.save_model(model, storage.model_path(f"{meta['kind']}-{time.strftime('%Y%m%d-%H%M%S')}"),
                                  meta))
    job.unsaved = None
    job.result = dict(job.result or {}, model=path)
    storage.run_store().update(job.run_id, model_path=path)
    return path


def train_teacher(cfg: TeacherConfig, dataset: str | None = None, out=None,
                  progress: Progress | None = None) -> dict:
    ds = datasets.load(dataset)
    cfg.validate(len(ds.y_train))
    res = training.train_teacher(cfg, ds, progress)
    params = teacher_stats(cfg)["params"]
    meta = {"kind": "teacher", "dataset": ds.name, "config": to_dict(cfg), "test_accuracy": res.test_accuracy,
            "params": params, "device": res.device, "seconds": res.seconds}
    path = _save(res, out, "teacher", meta)
    return {"model": path, "dataset": ds.name, "params": params, **res.summary()}


def distill(cfg: DistillConfig, teacher_path, dataset: str | None = None, out=None,
            progress: Progress | None = None) -> dict:
    """Distil a student from a saved teacher and, when ``cfg.baseline``, train its from-scratch twin."""
    ds = datasets.load(dataset)
    cfg.validate(len(ds.y_train))
    teacher = storage.load_model(teacher_path)
    teacher_meta = storage.read_sidecar(teacher_path)
    teacher_acc = training.accuracy(teacher, ds.x_test, ds.y_test)
    if progress is not None:
        progress.result(teacher_accuracy=teacher_acc)
    student = training.distill_student(cfg, teacher, ds, progress)
    results = {"dataset": ds.name, "test_images": len(ds.y_test), "teacher": str(teacher_path),
               "teacher_accuracy": teacher_acc,
               "student_accuracy": student.test_accuracy,
               "params": {"teacher": int(teacher.count_params()), "student": student_stats(cfg.student)["params"]},
               "history": {"student": student.history}, "device": student.device,
               "status": student.status, "reason": student.reason}
    seconds = student.seconds
    if cfg.baseline and student.status == "finished":
        if progress is not None:
            progress.result(student_accuracy=student.test_accuracy)
        base = training.train_baseline(cfg, ds, progress)
        seconds += base.seconds
        results.update(baseline_accuracy=base.test_accuracy, status=base.status, reason=base.reason)
        results["history"]["baseline"] = base.history
        if base.status == "finished":
            results["gain"] = student.test_accuracy - base.test_accuracy
            results["gap_recovered"] = training.gap_recovered(student.test_accuracy, base.test_accuracy, teacher_acc)
    meta = {"kind": "student", "dataset": ds.name, "config": to_dict(cfg), "test_accuracy": student.test_accuracy,
            "teacher": str(teacher_path), "teacher_name": teacher_meta.get("name", Path(teacher_path).stem),
            "params": results["params"]["student"], "device": student.device,
            "baseline_accuracy": results.get("baseline_accuracy")}
    results["model"] = _save(student, out, "student", meta) if results["status"] == "finished" else ""
    results["seconds"] = seconds
    return results


def notes(cfg: DistillConfig, teacher_params: int | None) -> list[str]:
    """Things that are allowed but worth saying before a run starts."""
    out = []
    student = student_stats(cfg.student)["params"]
    if teacher_params and student >= teacher_params:
        out.append(f"The student ({student:,} parameters) is not smaller than the teacher ({teacher_params:,}); "
                   "that is allowed, but it is no longer compression.")
    if cfg.loss == "logit-mse" and cfg.temperature != 1.0:
        out.append("logit-mse matches raw logits, so the temperature has no effect with this loss.")
    return out


# --- background versions for the dashboard ---------------------------------------------------------
def start_teacher(cfg: TeacherConfig, dataset: str | None = None, out=None) -> Job:
    ds = datasets.load(dataset)
    cfg.validate(len(ds.y_train))
    title = f"Teacher {cfg.variant} on {ds.name}, {cfg.epochs} epochs"
    source = dataset or ds.name  # a user's .npz is found again by its path, not by its display name
    return runner().submit("teacher", title, lambda job: train_teacher(cfg, source, out, job.progress),
                           to_dict(cfg), ds.name)


def start_distill(cfg: DistillConfig, teacher_path, dataset: str | None = None, out=None) -> Job:
    ds = datasets.load(dataset)
    cfg.validate(len(ds.y_train))
    if not Path(teacher_path).is_file():
        raise storage.StorageError(f"no teacher model at {teacher_path}; train or pick a teacher first")
    title = (f"Distil {'MLP' if not cfg.student.filters else 'CNN'} student "
             f"(T={cfg.temperature:g}, alpha={cfg.alpha:g}) on {ds.name}")
    config = dict(to_dict(cfg), teacher=str(teacher_path))
    source = dataset or ds.name
    return runner().submit("distill", title, lambda job: distill(cfg, teacher_path, source, out, job.progress),
                           config, ds.name)


def start_demo(teacher_cfg: TeacherConfig, distill_cfg: DistillConfig, dataset: str | None = None) -> Job:
    """Teacher, then distilled student and baseline from that teacher, as ONE background job.

    One job rather than two so the distillation cannot start before its
    teacher exists, and a visitor watches a single progress bar move through
    every phase. Stopping or a failure during the teacher ends the whole run.
    """
    ds = datasets.load(dataset)
    teacher_cfg.validate(len(ds.y_train))
    distill_cfg.validate(len(ds.y_train))
    source = dataset or ds.name

    def work(job: Job) -> dict:
        teacher = train_teacher(teacher_cfg, source, progress=job.progress)
        if teacher["status"] != "finished":
            return teacher
        job.progress.check_stop()
        return dict(distill(distill_cfg, teacher["model"], source, progress=job.progress),
                    teacher_model=teacher["model"])

    title = f"Demo on {ds.name}: teacher ({teacher_cfg.epochs} epochs), then student and baseline"
    return runner().submit("demo", title, work, {"teacher": to_dict(teacher_cfg), "distill": to_dict(distill_cfg)},
                           ds.name)
