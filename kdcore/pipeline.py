"""The whole story of a run, top to bottom: dataset → teacher → logits → student → saved model + record.

Each function takes the task (``kdcore.tasks``) whose data and models it
uses. The CLI calls :func:`kdcore.jobs.recorded` around them, so a command-line run lands
in the run store like a dashboard job; the dashboard calls the ``start_*``
versions, which validate first (so a bad slider value is refused at once,
with its field named) and then hand the same function to the background job
runner, which keeps the run's row itself.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from . import ensemble, params, storage, tasks
from .config import DistillConfig, to_dict
from .jobs import Job, runner
from .progress import Progress, Tagged
from .results import DistillResult, EnsembleResult, Status, TeacherResult


def _save(result, out, default_name: str, meta: dict) -> str:
    """Save a finished model; a stopped or failed run keeps its record but saves no model."""
    if result.status != Status.FINISHED:
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
    if hasattr(job.result, "model"):
        job.result.model = path
    else:  # the save failed, so the job ended with the error and no typed result
        job.result = dict(job.result or {}, model=path)
    storage.run_store().update(job.run_id, model_path=path)
    return path


def train_teacher(cfg, dataset: str | None = None, out=None, progress: Progress | None = None,
                  task: str | tasks.Task = tasks.DEFAULT, group: str = "") -> TeacherResult:
    """Train and save a teacher; ``group`` names the ensemble it belongs to (see :func:`train_teachers`)."""
    t = tasks.get(task)
    ds = t.load(dataset)
    cfg.validate(len(ds.y_train))
    res = t.train_teacher(cfg, ds, progress)
    size = t.teacher_size(cfg, ds)["params"]
    meta = {"kind": "teacher", "task": t.name, "dataset": ds.name, "config": to_dict(cfg),
            f"test_{t.metric.name}": res.score, f"valid_{t.metric.name}": res.valid_score, "params": size,
            "device": res.device, "seconds": res.seconds, **({"group": group} if group else {})}
    path = _save(res, out, "teacher", meta)
    return TeacherResult(path, ds.name, size, res.status, res.reason, res.score, res.seconds, res.device,
                         res.history, t.metric, t.name, dict(res.stages), res.valid_score)


def distill(cfg: DistillConfig, teacher_path, dataset: str | None = None, out=None,
            progress: Progress | None = None, task: str | tasks.Task = tasks.DEFAULT,
            average: str = "probs", more: dict | None = None) -> DistillResult:
    """Distil a student from a saved teacher and, when ``cfg.baseline``, train its from-scratch twin.

    ``teacher_path`` may list several teachers: an ensemble, whose soft targets
    are averaged as ``average`` says (:mod:`kdcore.ensemble`). ``more`` is
    added to the result's record and the student's sidecar (a chain's assistant).
    """
    t = tasks.get(task)
    ds = t.load(dataset)
    cfg.validate(len(ds.y_train))
    teachers = ensemble.Teachers.load(teacher_path, t, cfg, average)
    teacher = teachers.first
    ds, note = t.fit_data(teacher, ds)  # grey data for a colour teacher, say: converted once, for all three models
    if note and progress is not None:
        progress.result(note=note)
    recipe, recipe_notes = t.check_recipe(cfg, teacher, ds)  # a recipe that cannot run is refused before any work
    logits = teachers.targets(t, ds, cfg.temperature)  # an ensemble's average, made once; None for one teacher
    teacher_score = teachers.score(t, ds, cfg.temperature)
    if progress is not None:
        progress.result(**{f"teacher_{t.metric.name}": teacher_score})
    student = t.distill_student(cfg, teacher, ds, progress, logits=logits)
    result = DistillResult("", ds.name, len(ds.y_test), teachers.named, teacher_score, student.score,
                           params={"teacher": teachers.params,
                                   "student": t.student_size(cfg.student, ds)["params"]},
                           history={**student.stages, "student": student.history}, device=student.device, status=student.status,
                           reason=student.reason, seconds=student.seconds, metric=t.metric, task=t.name,
                           note=note, student_valid=student.valid_score,
                           more={**teachers.record(t.metric.name), **(more or {})},
                           recipe=student.recipe or recipe.to_dict(), recipe_notes=recipe_notes)
    if cfg.baseline and student.status == Status.FINISHED:
        if progress is not None:
            progress.result(**{f"student_{t.metric.name}": student.score})
        base = t.train_baseline(cfg, ds, progress)
        result.seconds += base.seconds
        result.status, result.reason = base.status, base.reason
        result.history["baseline"] = base.history
        if base.status == Status.FINISHED:
            result.baseline_score, result.baseline_valid = base.score, base.valid_score
            result.paired = t.paired_gain(student.model, base.model, ds, cfg)  # the verdict's test, while both live
    m = t.metric.name
    meta = {"kind": "student", "task": t.name, "dataset": ds.name, "config": to_dict(cfg),
            f"test_{m}": student.score, f"valid_{m}": student.valid_score, "teacher": teachers.named,
            "teacher_name": teachers.name,
            "params": result.params["student"], "device": student.device, f"baseline_{m}": result.baseline_score,
            "recipe": result.recipe, "recipe_notes": result.recipe_notes, **result.more}
    result.model = _save(student, out, "student", meta) if result.status == Status.FINISHED else ""
    return result


def check_recipe(cfg: DistillConfig, teacher_path, dataset: str | None = None,
                 task: str | tasks.Task = tasks.DEFAULT) -> tuple:
    """(the run's recipe resolved for this teacher and its student, notes), or one-line refusal: what :func:`distill`
    checks first, for a caller that wants the refusal before it records a run (the CLI)."""
    t = tasks.get(task)
    teacher = storage.load_model(teacher_path, t)
    return t.check_recipe(cfg, teacher, t.fit_data(teacher, t.load(dataset))[0])


def notes(cfg: DistillConfig, teacher_params: int | None, task: str | tasks.Task = tasks.DEFAULT,
          teacher_config: dict | None = None) -> list[str]:
    """Things that are allowed but worth saying before a run starts (and the task's own, see ``distill_notes``)."""
    out = list(tasks.get(task).distill_notes(cfg, teacher_config))
    student = tasks.get(task).student_size(cfg.student)["params"]
    if teacher_params and student >= teacher_params:
        out.append(f"The student ({student:,} parameters) is not smaller than the teacher ({teacher_params:,}); "
                   "that is allowed, but it is no longer compression.")
    if cfg.loss == "logit-mse" and cfg.temperature != 1.0:
        out.append("logit-mse matches raw logits, so the temperature has no effect with this loss.")
    return out


# --- background versions for the dashboard ---------------------------------------------------------
def _source(t, dataset: str | None):
    """The dataset, loaded (to validate against it), and how to find it again in the job (a path stays a path)."""
    ds = t.load(dataset)
    return ds, dataset or ds.name


def start_teacher(cfg, dataset: str | None = None, out=None, task: str | tasks.Task = tasks.DEFAULT) -> Job:
    t = tasks.get(task)
    ds, source = _source(t, dataset)
    cfg.validate(len(ds.y_train))
    title = f"Teacher {getattr(cfg, 'variant', t.name)} on {ds.name}, {cfg.epochs} epochs"
    return runner().submit("teacher", title, lambda job: train_teacher(cfg, source, out, job.progress, task),
                           dict(to_dict(cfg), task=t.name), ds.name)


def start_distill(cfg: DistillConfig, teacher_path, dataset: str | None = None, out=None,
                  task: str | tasks.Task = tasks.DEFAULT, average: str = "probs") -> Job:
    """:func:`distill` as a background job; ``teacher_path`` may list an ensemble's teachers."""
    t = tasks.get(task)
    ds, source = _source(t, dataset)
    cfg.validate(len(ds.y_train))
    found = ensemble.check(cfg, t, teacher_path, average)
    teacher = ensemble.named(found)
    of = f" from {len(found)} teachers" if len(found) > 1 else ""
    title = (f"Distil {t.describe_student(cfg.student)}{of} (T={cfg.temperature:g}, alpha={cfg.alpha:g}) "
             f"on {ds.name}")
    config = dict(to_dict(cfg), teacher=teacher, task=t.name, **ensemble.run_settings(found, average))
    return runner().submit("distill", title,
                           lambda job: distill(cfg, teacher, source, out, job.progress, task, average), config,
                           ds.name)


def start_demo(teacher_cfg, distill_cfg: DistillConfig, dataset: str | None = None,
               task: str | tasks.Task = tasks.DEFAULT, teacher_dataset: str | None = None) -> Job:
    """Teacher, then distilled student and baseline from that teacher, as ONE background job.

    One job rather than two so the distillation cannot start before its
    teacher exists, and a visitor watches a single progress bar move through
    every phase. Stopping or a failure during the teacher ends the whole run.
    ``teacher_dataset`` (a preset's) is a larger dataset the teacher alone
    reads; the students and all three scores use ``dataset``.
    """
    t = tasks.get(task)
    ds, source = _source(t, dataset)
    teacher_ds, teacher_source = (ds, source) if teacher_dataset is None else _source(t, teacher_dataset)
    t.compatible(teacher_ds, ds)
    teacher_cfg.validate(len(teacher_ds.y_train))
    distill_cfg.validate(len(ds.y_train))

    def work(job: Job):
        teacher = train_teacher(teacher_cfg, teacher_source, progress=job.progress, task=task)
        if teacher.status != Status.FINISHED:
            return teacher
        job.progress.check_stop()
        result = distill(distill_cfg, teacher.model, source, progress=job.progress, task=task)
        result.teacher_model = teacher.model
        return result

    read = "" if teacher_ds is ds else f" on {teacher_ds.name}"
    title = f"Demo on {ds.name}: teacher ({teacher_cfg.epochs} epochs{read}), then student and baseline"
    return runner().submit("demo", title, work, {"teacher": to_dict(teacher_cfg), "distill": to_dict(distill_cfg),
                                                 "task": t.name, "teacher_dataset": teacher_ds.name}, ds.name)


# --- several runs as one: an ensemble of teachers, a teacher-assistant chain ------------------------
def train_teachers(cfg, n: int, dataset: str | None = None, out=None, progress: Progress | None = None,
                   task: str | tasks.Task = tasks.DEFAULT) -> EnsembleResult:
    """``n`` teachers of one recipe with seeds ``cfg.seed`` … ``cfg.seed + n − 1``: an ensemble, one after another.

    Each is saved as its own .keras (``out`` is the stem: ``<out>-seed<s>.keras``)
    whose sidecar names the ensemble's ``group``, so a distillation can pick
    them as one. A member that stops or fails ends the job; those saved stay.
    """

    params.check("ensemble", n)
    t = tasks.get(task)
    group = Path(out).stem if out else f"ensemble-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(out).parent if out else storage.models_dir()
    result = EnsembleResult(group, [])
    for seed in range(cfg.seed, cfg.seed + n):
        tagged = Tagged(progress, f"s{seed}") if progress is not None else None
        member = train_teacher(replace(cfg, seed=seed), dataset, folder / f"{group}-seed{seed}.keras", tagged, t,
                               group=group)
        result.members.append(member)
        if member.status != Status.FINISHED:
            result.status, result.reason = member.status, f"teacher seed {seed}: {member.reason}"
            break
    return result


def start_teachers(cfg, n: int, dataset: str | None = None, task: str | tasks.Task = tasks.DEFAULT) -> Job:
    """:func:`train_teachers` as one background job."""
    params.check("ensemble", n)
    t = tasks.get(task)
    ds, source = _source(t, dataset)
    cfg.validate(len(ds.y_train))
    title = f"Ensemble of {n} teachers {getattr(cfg, 'variant', t.name)} on {ds.name}, {cfg.epochs} epochs each"
    return runner().submit("teacher", title, lambda job: train_teachers(cfg, n, source, None, job.progress, task),
                           dict(to_dict(cfg), task=t.name, ensemble=n), ds.name)


def chain(cfg: DistillConfig, teacher_path, assistant_width: int, dataset: str | None = None, out=None,
          progress: Progress | None = None, task: str | tasks.Task = tasks.DEFAULT,
          average: str = "probs") -> DistillResult:
    """Teacher → assistant → student (Mirzadeh et al. 2020, "teacher assistant" distillation), in one call.

    A student far smaller than its teacher learns less from it than from a
    middle-sized network that learnt from the teacher first. The assistant is
    the task's student at width ``assistant_width`` (its ``width_setting``),
    distilled from the teacher(s) with ``cfg``'s other settings and no
    baseline; the student is then distilled from the saved assistant, and its
    baseline (when ``cfg.baseline``) is the same student from scratch. The
    result is the student's, with the teacher's score as its teacher's, and
    ``assistant`` (path, score, width) added to its record and its sidecar.
    """

    t = tasks.get(task)
    params.check(t.width_setting, assistant_width, t.name)
    sized = replace(cfg.student, **{t.width_field(): assistant_width})
    cfg.validate()
    first = distill(replace(cfg, student=sized, baseline=False), teacher_path, dataset, None,
                    Tagged(progress, "assistant") if progress is not None else None, t, average)
    if first.status != Status.FINISHED:
        first.reason = f"assistant: {first.reason}"
        return first
    if progress is not None:
        progress.check_stop()
    assistant = {"model": first.model, f"test_{t.metric.name}": first.student_score,
                 t.width_setting: assistant_width, "params": first.params["student"], "teacher": first.teacher,
                 f"teacher_{t.metric.name}": first.teacher_score}
    result = distill(cfg, first.model, dataset, out, progress, t, more={**first.more, "assistant": assistant})
    result.teacher, result.teacher_score = first.teacher, first.teacher_score  # gap recovered: from the teacher
    result.params["teacher"] = first.params["teacher"]
    result.seconds += first.seconds
    return result
