"""Does distillation help? Measured over seeds, always beside the baseline.

A single distillation run says little: on 4,000 digits two seeds of the same
student differ by half a point, about what most demos call a "gain". So an
experiment trains, for every seed, the distilled student *and* its
from-scratch twin (same architecture, same initial weights, same batches; only
the teacher's soft targets differ) and reports the mean and the spread of
both, of their difference (the gain) and of the share of the teacher–baseline
gap that distillation closed.

The teacher is trained once per (teacher recipe, dataset) and kept in the
models folder as ``teacher-<hash>.keras``; a later experiment with the same
recipe reuses it, so sweeping T or alpha costs only student trainings. Its
logits on the training set are computed once per experiment.

Two experiments from Hinton, Vinyals & Dean (2015) are built in:

- ``labels_fraction``: the student sees labels for a fraction of the training
  images and learns the rest from the teacher alone (hidden labels are -1).
  The baseline gets the same -1 labels; its hard loss averages over the
  labelled images of each batch, so it learns from exactly the labelled part.
- ``omit_class``: the transfer set holds no example of class K; the student
  learns K only from the teacher's soft targets on other digits. Its bias for K
  is then raised by an amount chosen on the *training* images alone (see
  :func:`class_bias`), never on the test set.

:func:`sweep` repeats the student half over a grid of temperatures, alphas
and widths. Every experiment and sweep is recorded in the run store. The same
grid can also run as an Optuna study that workers on several machines share
(:mod:`kdcore.studies`, built on :func:`grid` and :func:`cell_config`).

A task scored by perplexity (the language model) runs the same way: its
scores are named ``student_perplexity`` and so on, lower is better, and the
gap recovered is measured in log-perplexity. Its soft targets cannot be kept
whole, so instead of logits computed once the task makes them in training
(its top-k cache is built once and shared by the seeds).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

from . import presets, storage, tasks, training
from .config import DistillConfig, from_dict, to_dict
from .dataset import Dataset
from .metric import ACCURACY, Metric
from .metric import get as get_metric
from .progress import Progress, Tagged
from .results import verdict


# --- small helpers -------------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof = 1; 0 for a single seed) of per-seed values."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "values": []}
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return {"mean": float(np.mean(vals)), "std": std, "values": vals}


def seed_list(seeds) -> list[int]:
    """``3`` means seeds 0, 1, 2; a list is taken as given."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 20:
            raise ValueError(f"seeds must be between 1 and 20 (got {seeds})")
        return list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


def resolve(preset) -> tuple[str, dict]:
    """(name, preset dict) from a preset name or a preset dict (tests and custom runs)."""
    if isinstance(preset, str):
        return preset, presets.get(preset)
    return preset.get("name", "custom"), preset


# --- teacher, cached on disk ---------------------------------------------------------------------
def _fingerprint(cfg, ds: Dataset) -> str:
    """Same recipe + same training images (+ test size) → same teacher file."""
    digest = hashlib.sha256(json.dumps({"teacher": to_dict(cfg), "dataset": ds.name,
                                        "n_test": len(ds.y_test)}, sort_keys=True).encode())
    digest.update(ds.y_train.tobytes())
    digest.update(ds.x_train[:: max(1, len(ds.x_train) // 256)].tobytes())
    return digest.hexdigest()[:12]


def cached_teacher(cfg, ds: Dataset, progress: Progress | None = None, task: str | tasks.Task = tasks.DEFAULT) -> dict:
    """The teacher for this recipe and dataset: loaded if trained before, else trained and saved.

    Returns ``{"model", "accuracy", "path", "cached", "status", "reason", "seconds"}`` (``accuracy`` holds the
    task's metric) and, when trained here, its ``history``.
    """
    t = tasks.get(task)
    cfg.validate(len(ds.y_train))
    path = storage.model_path(f"teacher-{_fingerprint(cfg, ds)}")
    if path.is_file():
        try:
            model = storage.load_model(path, t)
            return {"model": model, "accuracy": t.score(model, ds), "path": str(path),
                    "cached": True, "status": "finished", "reason": "",
                    "seconds": storage.read_sidecar(path).get("seconds")}
        except storage.StorageError:
            pass  # a damaged cache file is simply trained again and replaced
    res = t.train_teacher(cfg, ds, progress)
    if res.status == "finished":
        storage.save_model(res.model, path, {"kind": "teacher", "task": t.name, "dataset": ds.name,
                                             "config": to_dict(cfg), f"test_{t.metric.name}": res.score,
                                             "device": res.device, "params": t.teacher_size(cfg, ds)["params"],
                                             "seconds": res.seconds,
                                             "note": "trained by an experiment; reused for the same recipe"})
    return {"model": res.model, "accuracy": res.score, "path": str(path), "cached": False,
            "status": res.status, "reason": res.reason, "seconds": res.seconds, "history": res.history}


def saved_teacher(path, ds: Dataset, task: str | tasks.Task = tasks.DEFAULT) -> dict:
    """A teacher the user trained before (``experiment --teacher FILE``), scored on ``ds``: as :func:`cached_teacher`."""
    t = tasks.get(task)
    model = storage.load_model(path, t)
    meta = storage.read_sidecar(path)
    return {"model": model, "accuracy": t.score(model, ds), "path": str(path), "cached": True,
            "status": "finished", "reason": "", "seconds": meta.get("seconds"),
            "history": meta.get("history")}


def teacher_for(cfg, teacher_ds: Dataset, ds: Dataset, progress: Progress, task) -> dict:
    """:func:`cached_teacher` trained on ``teacher_ds``, scored on the students' test split, which all three share."""
    teacher = cached_teacher(cfg, teacher_ds, progress, task.name)
    if teacher_ds is not ds and teacher["status"] == "finished":
        teacher["accuracy"] = task.score(teacher["model"], ds)
    return teacher


# --- omit one class (Hinton et al. 2015, section 3) --------------------------------------------------
def without_class(ds: Dataset, logits: np.ndarray, omit: int) -> tuple[Dataset, np.ndarray]:
    """The transfer set with every training example of class ``omit`` removed, and the matching logits rows."""
    keep = ds.y_train != omit
    return dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep]), logits[keep]


def class_bias(train_logits: np.ndarray, omit: int, share: float) -> float:
    """The bias to add to logit ``omit`` so the model predicts it on ``share`` of the training images.

    Image i switches to ``omit`` once the bias exceeds its margin
    ``max_{j≠omit} z_ij − z_i,omit``, so the bias is the ``share``-quantile of
    the margins. Only training images and the class's share of the training
    labels enter: the test set plays no part in the choice.
    """
    z = np.asarray(train_logits, dtype="float64")
    others = np.delete(z, omit, axis=1).max(axis=1)
    return float(np.quantile(others - z[:, omit], share))


def per_class_accuracy(logits: np.ndarray, y: np.ndarray) -> list[float]:
    pred = np.asarray(logits).argmax(-1)
    return [float((pred[y == c] == c).mean()) if (y == c).any() else None for c in range(logits.shape[1])]


def _omit_report(student, baseline, ds: Dataset, omit: int) -> dict:
    share = float((ds.y_train == omit).mean())
    s_train = training.predict_logits(student, ds.x_train)
    bias = class_bias(s_train, omit, share)
    s_test = training.predict_logits(student, ds.x_test)
    fixed = s_test.copy()
    fixed[:, omit] += bias
    b_test = training.predict_logits(baseline, ds.x_test)
    return {"bias": bias,
            "student_class": per_class_accuracy(s_test, ds.y_test)[omit],
            "student_class_after_bias": per_class_accuracy(fixed, ds.y_test)[omit],
            "student_accuracy_after_bias": float((fixed.argmax(-1) == ds.y_test).mean()),
            "baseline_class": per_class_accuracy(b_test, ds.y_test)[omit],
            "per_class": {"student": per_class_accuracy(s_test, ds.y_test),
                          "student_after_bias": per_class_accuracy(fixed, ds.y_test),
                          "baseline": per_class_accuracy(b_test, ds.y_test)}}


# --- one experiment ----------------------------------------------------------------------------------
def setup(preset, data: Dataset | None, overrides: dict) -> tuple[str, dict, object, DistillConfig, Dataset, Dataset]:
    """(name, preset, teacher config, distill config, the students' data, the teacher's data), all validated."""
    name, spec = resolve(preset)
    t = tasks.get(spec.get("task"))
    ds = data if data is not None else t.load(spec["dataset"])
    teacher_ds = teacher_data(t, spec.get("teacher_dataset"), ds)
    teacher_cfg = from_dict(t.teacher_config, spec["teacher"]).validate(len(teacher_ds.y_train))
    cfg = from_dict(t.distill_class(), {**spec["distill"], **overrides}, t).validate(len(ds.y_train))
    return name, spec, teacher_cfg, cfg, ds, teacher_ds


def teacher_data(task, name: str | None, data: Dataset) -> Dataset:
    """The dataset the teacher reads: ``name`` (a preset's ``teacher_dataset``), checked to fit ``data``, else ``data``.

    Distillation helps most where the teacher has learnt from more than the
    students have labels for; their transfer set stays ``data``.
    """
    if name is None or name == data.name:
        return data
    teacher_ds = task.load(name)
    task.compatible(teacher_ds, data)
    return teacher_ds


def _omitted(spec: dict, omit_class: int | None, ds: Dataset) -> int | None:
    """The class to leave out of the transfer set: the argument, else the preset's, else none."""
    omit = spec.get("omit_class") if omit_class is None else omit_class
    task = tasks.get(spec.get("task"))
    if omit is not None and task.metric != ACCURACY:  # the left-out class is reported in accuracy
        raise ValueError(f"omit_class is not a setting of task {task.name!r}: it leaves a class out of a classifier's "
                         "transfer set")
    if omit is not None and not (isinstance(omit, int) and not isinstance(omit, bool) and 0 <= omit < len(ds.classes)):
        raise ValueError(f"omit_class must be a class number 0-{len(ds.classes) - 1} (got {omit!r})")
    return omit


def run_experiment(preset, seeds=3, labels_fraction: float | None = None, omit_class: int | None = None,
                   progress: Progress | None = None, data: Dataset | None = None, record: bool = True,
                   teacher: str | None = None) -> dict:
    """Teacher (cached), then for every seed a distilled student and its from-scratch twin.

    ``preset`` is a name from :mod:`kdcore.presets` or a preset dict;
    ``labels_fraction`` and ``omit_class`` override the preset's. ``data``
    replaces the preset's dataset (tests use a small subset). ``teacher`` is
    a saved teacher to distil from instead of the preset's recipe. With
    ``record`` the experiment gets its own run-store row; the dashboard's job
    runner passes ``record=False`` because it keeps the row itself.

    Scores are named after the task's metric (``student_accuracy``,
    ``student_perplexity``…); for perplexity the gap recovered is measured in
    log-perplexity, and a lower score is the better one.
    """
    seeds = seed_list(seeds)
    overrides = {} if labels_fraction is None else {"labels_fraction": labels_fraction}
    name, spec, teacher_cfg, cfg, ds, teacher_ds = setup(preset, data, overrides)
    omit = _omitted(spec, omit_class, ds)
    config = {"preset": name, "teacher": to_dict(teacher_cfg), "distill": to_dict(cfg), "seeds": seeds,
              "omit_class": omit, "task": tasks.get(spec.get("task")).name, "teacher_dataset": teacher_ds.name}
    return run_or_record("experiment", f"Experiment {name} on {ds.name}, {len(seeds)} seeds", config, ds, teacher,
                         lambda progress: _experiment(name, spec, teacher_cfg, cfg, ds, seeds, omit, config, progress,
                                                      teacher, teacher_ds),
                         progress, record, name)


def run_or_record(kind: str, title: str, config: dict, ds: Dataset, teacher, work, progress: Progress | None,
                  record: bool, name: str) -> dict:
    """``work(progress)``, kept in the run store as a run of ``kind`` when ``record`` (a saved ``teacher`` named)."""
    from .jobs import recorded

    if teacher is not None:
        config["teacher_model"] = str(teacher)
    if record:
        return recorded(kind, title, config, ds.name, work, progress)
    return work(progress or Progress(name))


def _cpu(run) -> float | None:
    """CPU seconds of a run's epochs, when its task records them (the language model does)."""
    values = [r.get("cpu_seconds") for r in run.history]
    return round(sum(values), 1) if values and None not in values else None


def _experiment(name, spec, teacher_cfg, cfg, ds, seeds, omit, config, progress: Progress,
                teacher_path: str | None = None, teacher_ds: Dataset | None = None) -> dict:
    t0 = time.perf_counter()
    task = tasks.get(spec.get("task"))
    m = task.metric.name
    results = {"preset": name, "dataset": ds.name, "seeds": seeds, "labels_fraction": cfg.labels_fraction,
               "omit_class": omit, "config": config, "status": "finished", "reason": "", "task": task.name,
               "metric": m, "higher_is_better": task.metric.higher_is_better,
               "teacher_dataset": (teacher_ds or ds).name}
    teacher = (saved_teacher(teacher_path, ds, task.name) if teacher_path is not None
               else teacher_for(teacher_cfg, teacher_ds or ds, ds, progress, task))
    results.update({f"teacher_{m}": teacher["accuracy"], "teacher_cached": teacher["cached"],
                    "teacher_model": teacher["path"], "teacher_seconds": teacher.get("seconds")})
    if teacher.get("history"):
        results["teacher_history"] = teacher["history"]
    progress.result(**{f"teacher_{m}": teacher["accuracy"]}, seeds_done=0, seeds_total=len(seeds))
    if teacher["status"] != "finished":
        results.update(status=teacher["status"], reason=f"teacher: {teacher['reason']}")
        return results
    progress.phase("teacher logits")
    logits = task.teacher_targets(teacher["model"], ds)
    transfer, transfer_logits = (ds, logits) if omit is None else without_class(ds, logits, omit)
    runs, paired = [], None
    for i, seed in enumerate(seeds):
        tagged = Tagged(progress, f"s{seed}")
        seed_cfg = dataclasses.replace(cfg, seed=seed)
        student = task.distill_student(seed_cfg, teacher["model"], transfer, tagged, logits=transfer_logits)
        baseline = task.train_baseline(seed_cfg, transfer, tagged) if student.status == "finished" else student
        if baseline.status != "finished":
            results.update(status=str(baseline.status), reason=f"seed {seed}: {baseline.reason}")
            break
        run = {"seed": seed, "student": student.score, "baseline": baseline.score,
               "student_valid": student.valid_score, "baseline_valid": baseline.valid_score,
               "gain": student.score - baseline.score,
               "gap_recovered": task.metric.gap_recovered(student.score, baseline.score, teacher["accuracy"]),
               "seconds": student.seconds + baseline.seconds}
        cpu = (_cpu(student), _cpu(baseline))
        if None not in cpu:
            run.update(student_cpu_seconds=cpu[0], baseline_cpu_seconds=cpu[1])
        if omit is not None:
            run["omit"] = _omit_report(student.model, baseline.model, ds, omit)
        if len(seeds) == 1:  # one seed's verdict pairs the two models' answers, so it is taken while both live
            paired = task.paired_gain(student.model, baseline.model, ds, seed_cfg)
        runs.append(run)
        progress.result(seeds_done=i + 1, finished_seeds=[dict(r) for r in runs])
    results.update(_summarise(runs, omit, task.metric, paired))
    results["seconds"] = time.perf_counter() - t0
    return results


def _summarise(runs: list[dict], omit: int | None, metric: Metric = ACCURACY, paired=None) -> dict:
    """Mean ± std of every per-seed figure, and the verdict (``paired``: one seed's paired test, see ``verdict``)."""
    m = metric.name
    out = {key: spread([r[key] for r in runs]) for key in ("gain", "gap_recovered")}
    out.update({f"student_{m}": spread([r["student"] for r in runs]),
                f"baseline_{m}": spread([r["baseline"] for r in runs]), "runs": runs})
    out.update(verdict([r["gain"] for r in runs], metric, paired=paired).to_json())
    if omit is not None and runs:
        reports = [r["omit"] for r in runs]
        out["omit"] = {key: spread([rep[key] for rep in reports])
                       for key in ("bias", "student_class", "student_class_after_bias",
                                   "student_accuracy_after_bias", "baseline_class")}
        out["omit"]["per_class"] = {who: np.nanmean([[np.nan if v is None else v for v in rep["per_class"][who]]
                                                     for rep in reports], axis=0).tolist()
                                    for who in ("student", "student_after_bias", "baseline")}
    return out


# --- sweeps -------------------------------------------------------------------------------------------
def width(task, cfg: DistillConfig) -> int:
    """The student's width in ``cfg``: the value of the setting the task's sweeps range over (its ``width_setting``)."""
    return getattr(cfg.student, task.width_field())


def cell_config(task, cfg: DistillConfig, units: int, temperature: float, alpha: float, seed: int) -> DistillConfig:
    """The run of one sweep cell: ``cfg`` with this width (``task``'s width setting), T, alpha and seed."""
    return dataclasses.replace(cfg, seed=int(seed), temperature=float(temperature), alpha=float(alpha),
                               student=dataclasses.replace(cfg.student, **{task.width_field(): int(units)}))


def grid(task, cfg: DistillConfig, n_train: int, temperatures, alphas, widths) -> list[tuple[int, float, float]]:
    """Every (width, T, alpha) cell, each checked before anything trains; an empty grid is refused."""
    cells = [(int(w), float(t), float(a)) for w in widths for t in temperatures for a in alphas]
    if not cells:
        raise ValueError(f"the grid has no cells: give at least one temperature, one alpha and one width "
                         f"(got temperatures {list(temperatures)}, alphas {list(alphas)}, widths {list(widths)})")
    for w, t, a in cells:
        cell_config(task, cfg, w, t, a, cfg.seed).validate(n_train)
    return cells


def sweep(preset, temperatures, alphas, seeds=1, widths=None, progress: Progress | None = None,
          data: Dataset | None = None, record: bool = True):
    """Mean test and valid scores over seeds for every (width, T, alpha) cell, with the width's baseline beside it.

    Returns a pandas DataFrame, one row per cell: ``units, temperature, alpha,
    student, student_std, baseline, gain`` (test), ``valid_student,
    valid_baseline, valid_gain`` (valid: what :func:`best_cell` picks by) and
    ``teacher``. The baseline does not depend on T or alpha, so it is trained
    once per (width, seed).
    """
    import pandas as pd

    from .jobs import recorded

    seeds = seed_list(seeds)
    name, spec, teacher_cfg, cfg, ds, teacher_ds = setup(preset, data, {})
    task = tasks.get(spec.get("task"))
    widths = list(widths) if widths else [width(task, cfg)]
    cells = grid(task, cfg, len(ds.y_train), temperatures, alphas, widths)
    config = {"preset": name, "teacher": to_dict(teacher_cfg), "distill": to_dict(cfg), "seeds": seeds,
              "temperatures": list(temperatures), "alphas": list(alphas), "widths": widths,
              "teacher_dataset": teacher_ds.name}

    def work(progress: Progress) -> dict:
        return _sweep(name, spec, teacher_cfg, cfg, ds, cells, widths, seeds, progress, teacher_ds)

    title = f"Sweep {name} on {ds.name}: {len(cells)} cells × {len(seeds)} seeds"
    results = recorded("sweep", title, config, ds.name, work, progress) if record else work(progress or Progress(name))
    return pd.DataFrame(results["cells"])


def _sweep(name, spec, teacher_cfg, cfg, ds, cells, widths, seeds, progress: Progress,
           teacher_ds: Dataset | None = None) -> dict:
    t0 = time.perf_counter()
    task = tasks.get(spec.get("task"))
    results = {"preset": name, "dataset": ds.name, "status": "finished", "reason": "", "cells": []}
    teacher = teacher_for(teacher_cfg, teacher_ds or ds, ds, progress, task)
    results[f"teacher_{task.metric.name}"] = teacher["accuracy"]
    if teacher["status"] != "finished":
        results.update(status=teacher["status"], reason=f"teacher: {teacher['reason']}")
        return results
    logits = task.teacher_targets(teacher["model"], ds)
    baselines: dict[tuple, object] = {}
    total = len(cells) * len(seeds) + len(widths) * len(seeds)
    done = 0
    for w, t, a in cells:
        students = []
        for seed in seeds:
            cell_cfg = cell_config(task, cfg, w, t, a, seed)
            tagged = Tagged(progress, f"w{w} T{t:g} a{a:g} s{seed}")
            if (w, seed) not in baselines:
                baselines[(w, seed)] = task.train_baseline(cell_cfg, ds, Tagged(progress, f"w{w} s{seed}"))
                progress.check_stop()
                done += 1
            students.append(task.distill_student(cell_cfg, teacher["model"], ds, tagged, logits=logits))
            progress.check_stop()
            done += 1
            progress.result(cells_done=done, cells_total=total)
        bases = [baselines[(w, s)] for s in seeds]
        base, valid_base = (spread([getattr(r, key) for r in bases])["mean"] for key in ("score", "valid_score"))
        stats, valid = (spread([getattr(r, key) for r in students]) for key in ("score", "valid_score"))
        results["cells"].append({"units": int(w), "temperature": t, "alpha": a, "student": stats["mean"],
                                 "student_std": stats["std"], "baseline": base, "gain": stats["mean"] - base,
                                 "valid_student": valid["mean"], "valid_baseline": valid_base,
                                 "valid_gain": valid["mean"] - valid_base,
                                 "teacher": teacher["accuracy"], "metric": task.metric.name})
    results["best"] = best_cell(results["cells"])
    results["seconds"] = time.perf_counter() - t0
    return results


def best_cell(cells: list[dict]) -> dict | None:
    """The sweep's best cell: the largest gain on the VALID split (the lowest change, for a lower-is-better metric).

    The choice never reads the test columns: a recipe picked by its test score
    and reported on it would flatter it by however much luck the pick found
    there. Its test gain is then an honest estimate of the chosen recipe's.
    """
    scored = [c for c in cells if c.get("valid_gain") is not None and np.isfinite(c["valid_gain"])]
    if not scored:
        return None
    sign = 1 if get_metric(scored[0].get("metric")).higher_is_better else -1
    return dict(max(scored, key=lambda c: sign * c["valid_gain"]))


# --- background versions for the dashboard --------------------------------------------------------------
def start_experiment(preset: str, seeds=3, labels_fraction: float | None = None, omit_class: int | None = None):
    """Validate at once (a bad value is refused before queueing), then run in the job runner."""
    from .jobs import runner

    seeds = seed_list(seeds)
    overrides = {} if labels_fraction is None else {"labels_fraction": labels_fraction}
    name, spec, teacher_cfg, cfg, ds, _ = setup(preset, None, overrides)
    _omitted(spec, omit_class, ds)
    title = f"Experiment {name} on {ds.name}, {len(seeds)} seeds"
    config = {"preset": name, "seeds": seeds, "labels_fraction": labels_fraction, "omit_class": omit_class}
    return runner().submit("experiment", title,
                           lambda job: run_experiment(name, seeds, labels_fraction, omit_class, job.progress,
                                                      record=False), config, ds.name)


def start_sweep(preset: str, temperatures, alphas, seeds=1, widths=None):
    from .jobs import runner

    seeds = seed_list(seeds)
    name, spec, teacher_cfg, cfg, ds, _ = setup(preset, None, {})
    title = f"Sweep {name} on {ds.name}"
    config = {"preset": name, "temperatures": list(temperatures), "alphas": list(alphas), "seeds": seeds,
              "widths": list(widths or [])}

    def work(job) -> dict:
        frame = sweep(name, temperatures, alphas, seeds, widths, job.progress, record=False)
        cells = frame.to_dict("records")
        return {"preset": name, "dataset": ds.name, "cells": cells, "best": best_cell(cells)}

    return runner().submit("sweep", title, work, config, ds.name)
