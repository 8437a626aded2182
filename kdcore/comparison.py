"""A methods comparison: which way of distilling teaches this student best, beyond the seed-to-seed noise?

Every method (a recipe of :mod:`kdcore.recipes`, ``kdcore/methods/NAME.yaml``)
distils the same student from the same teacher over the same seeds, and each
seed trains ONE student from scratch that every method is compared with: same
seed, so the same initial weights and the same batches, and only the
distillation terms differ. Per seed that gives a paired gain of each method
over scratch and over plain KD; over seeds, the mean and its 95 % t-interval
(:func:`kdcore.stats.seeds`). Plain KD is the reference every refinement claims
to beat, so it is always run, asked for or not.

Each method has one hyperparameter that matters most (:data:`GRIDS`: KD's
temperature, the weight of AT's or RKD's terms...). It is chosen on seed 0
alone, by the valid split, from at most three values; the chosen value is then
used for every seed, and seed 0's run at that value is its run (the same
settings and seed would train it again bit for bit). Only the chosen runs'
test scores are reported, one per (method, seed): the grid's other runs are
judged by valid and forgotten.

A method that cannot run on the preset's networks (attention transfer on an
MLP student has no feature map to compare) is reported as not applicable,
with the one-line reason the recipe check gave, and the others carry on.
"""
from __future__ import annotations

import dataclasses
import time

from . import recipes, tasks
from .config import to_dict
from .dataset import Dataset
from .experiments import resolve, run_or_record, saved_teacher, seed_list, setup, teacher_for
from .progress import Progress, Tagged
from .results import Status, verdict

REFERENCE = "kd"  # the method every other is also compared with

# Each method's grid: (what varies, its values), searched on seed 0's valid split. ``weight`` multiplies every
# term of the method that reads the teacher (not its labels term), from the weights its YAML file gives (the
# papers'); ``temperature`` and ``hint_epochs`` are the run's settings. Three values each, spaced by 2×, so
# seven methods cost 21 extra trainings on one seed: the whole comparison stays within minutes.
GRIDS: dict[str, tuple[str, tuple]] = {
    "kd": ("temperature", (2.0, 4.0, 8.0)),       # Hinton et al.: T between 2 and 8 on MNIST-sized problems
    "ls": ("temperature", (2.0, 4.0, 8.0)),       # the base temperature of the standardised logits
    "fitnets": ("hint_epochs", (1, 2, 4)),        # how long the hint stage lasts before KD
    "at": ("weight", (0.5, 1.0, 2.0)),
    "rkd": ("weight", (0.5, 1.0, 2.0)),
    "dkd": ("weight", (0.5, 1.0, 2.0)),
    "dist": ("weight", (0.5, 1.0, 2.0)),
}

VS_KD = {"helped": "beats kd", "tie": "no better than kd beyond the interval", "hurt": "worse"}


def method_list(methods) -> list[str]:
    """The methods to compare, plain KD first (added when missing); an unknown one is refused in one line."""
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m and m.strip()]
    if not names:
        raise ValueError(f"methods must name at least one method; shipped: {', '.join(recipes.METHODS)}")
    for name in names:
        if name not in recipes.METHODS:
            raise ValueError(f"unknown method {name!r}; shipped methods: {', '.join(recipes.METHODS)}")
    return list(dict.fromkeys([REFERENCE, *names]))


def grid_of(name: str, grids: dict | None = None) -> tuple[str | None, tuple]:
    """Method ``name``'s (setting, values): ``grids``' when it names the method, else :data:`GRIDS`' (else none)."""
    setting, values = {**GRIDS, **(grids or {})}.get(name, (None, (None,)))
    if setting not in (None, "weight", "temperature", "hint_epochs") or not values:
        raise ValueError(f"the grid of {name} must vary weight, temperature or hint_epochs over at least one "
                         f"value (got {setting!r} over {list(values)!r})")
    return setting, tuple(values)


def method_config(cfg, name: str, setting: str | None = None, value=None):
    """``cfg`` with method ``name``'s recipe and, when ``value`` is given, its grid ``setting`` at that value."""
    recipe = recipes.method(name).to_dict()
    if value is not None and setting == "weight":
        for stage in recipe["stages"]:
            for term in stage["terms"]:
                if term["kind"] == "labels":
                    continue
                if isinstance(term["weight"], str):
                    raise ValueError(f"the grid of {name} scales its terms' weights, but one is the setting "
                                     f"{term['weight']!r}: vary temperature or hint_epochs instead")
                term["weight"] = float(term["weight"]) * float(value)
    elif value is not None:
        cfg = dataclasses.replace(cfg, **{setting: type(getattr(cfg, setting))(value)})
    return dataclasses.replace(cfg, recipe=recipe)


def _checked(preset, methods, seeds, student: dict | None, data: Dataset | None, grids: dict | None):
    """Every input checked, and every grid value a valid setting, before anything trains: (seeds, names, setup)."""
    seeds, names = seed_list(seeds), method_list(methods)
    overrides = {"student": {**resolve(preset)[1]["distill"].get("student", {}), **student}} if student else {}
    prepared = setup(preset, data, overrides)
    cfg, ds = prepared[3], prepared[4]
    for m in names:
        setting, values = grid_of(m, grids)
        for value in values:
            method_config(cfg, m, setting, value).validate(len(ds.y_train))
    return seeds, names, prepared


def run_methods(preset, methods, seeds=3, student: dict | None = None, progress: Progress | None = None,
                data: Dataset | None = None, record: bool = True, teacher: str | None = None,
                grids: dict | None = None) -> dict:
    """Teacher (cached, as :func:`kdcore.experiments.run_experiment`), then per seed one baseline and every method.

    ``methods`` is a list or a comma-separated string of :data:`kdcore.recipes.METHODS`;
    ``student`` overrides settings of the preset's student (``{"filters": 8}``:
    attention transfer needs a feature map); ``data`` replaces the preset's
    dataset (tests); ``teacher`` is a saved teacher file to distil from. With
    ``record`` the comparison gets its own run-store row. ``grids`` replaces
    :data:`GRIDS`' entries for the methods it names.
    """
    seeds, names, (name, spec, teacher_cfg, cfg, ds, teacher_ds) = _checked(preset, methods, seeds, student, data,
                                                                           grids)
    grids = {m: grid_of(m, grids) for m in names}
    task = tasks.get(spec.get("task"))
    config = {"preset": name, "methods": names, "seeds": seeds, "teacher": to_dict(teacher_cfg),
              "distill": to_dict(cfg), "task": task.name, "teacher_dataset": teacher_ds.name,
              "grids": {m: [g[0], list(g[1])] for m, g in grids.items()}}
    return run_or_record("methods", f"Methods {', '.join(names)} on {name}, {len(seeds)} seeds", config, ds, teacher,
                         lambda progress: _compare(name, task, teacher_cfg, cfg, ds, teacher_ds, grids, seeds, config,
                                                   progress, teacher),
                         progress, record, name)


def start_methods(preset: str, methods, seeds=3, student: dict | None = None):
    """Validate at once (an unknown method or a bad value is refused before queueing), then run in the job runner."""
    from .jobs import runner

    seeds, names, (name, _, _, _, ds, _) = _checked(preset, methods, seeds, student, None, None)
    title = f"Methods {', '.join(names)} on {name}, {len(seeds)} seeds"
    config = {"preset": name, "methods": names, "seeds": seeds, "student": dict(student or {})}
    return runner().submit("methods", title,
                           lambda job: run_methods(name, names, seeds, student, job.progress, record=False),
                           config, ds.name)


def _compare(name, task, teacher_cfg, cfg, ds, teacher_ds, grids: dict, seeds, config, progress: Progress,
             teacher_path: str | None = None) -> dict:
    """``grids``: each method's (setting, values), in the order the methods run."""
    names = list(grids)
    t0 = time.perf_counter()
    m = task.metric
    results = {"preset": name, "dataset": ds.name, "teacher_dataset": teacher_ds.name, "task": task.name,
               "metric": m.name, "higher_is_better": m.higher_is_better, "seeds": seeds, "methods": names,
               "labels_fraction": cfg.labels_fraction, "config": config, "status": "finished", "reason": ""}
    teacher = (saved_teacher(teacher_path, ds, task.name) if teacher_path is not None
               else teacher_for(teacher_cfg, teacher_ds, ds, progress, task))
    results.update({f"teacher_{m.name}": teacher["accuracy"], "teacher_cached": teacher["cached"],
                    "teacher_model": teacher["path"], "teacher_seconds": teacher.get("seconds")})
    if teacher["status"] != "finished":
        return {**results, "status": teacher["status"], "reason": f"teacher: {teacher['reason']}"}
    progress.phase("teacher logits")
    logits = task.teacher_targets(teacher["model"], ds)
    # seed 0 trains every grid value, later seeds one run per method; every seed one scratch student
    total = sum(len(values) for _, values in grids.values()) + (len(seeds) - 1) * len(names) + len(seeds)
    done = 0
    chosen: dict[str, dict] = {}  # method → {"value", "grid": [...], "grid_seconds"} or {"reason"} (not applicable)
    runs, baselines, paired = [], {}, {}

    def report():
        progress.result(runs_done=done, runs_total=total, finished_runs=[dict(r) for r in runs])

    def train(method, value, seed, tag):
        run_cfg = dataclasses.replace(method_config(cfg, method, grids[method][0], value), seed=seed)
        return task.distill_student(run_cfg, teacher["model"], ds, Tagged(progress, tag), logits=logits)

    for seed in seeds:
        base_cfg = dataclasses.replace(cfg, seed=seed)
        base = task.train_baseline(base_cfg, ds, Tagged(progress, f"scratch s{seed}"))
        done += 1
        if base.status != Status.FINISHED:
            return {**results, "status": str(base.status), "reason": f"scratch s{seed}: {base.reason}"}
        baselines[seed] = base
        report()
        models = {}
        for method in names:
            if "reason" in chosen.get(method, {}):
                continue
            progress.check_stop()
            if method not in chosen:  # the first seed: the grid, judged on valid
                setting, values = grids[method]
                grid, best, spent = [], None, 0.0
                for value in values:
                    try:
                        run = train(method, value, seed, f"{method} {'' if value is None else f'{value:g} '}s{seed}")
                    except recipes.RecipeError as exc:  # the recipe cannot run on these networks
                        chosen[method] = {"reason": str(exc)}
                        break
                    done += 1
                    spent += run.seconds
                    if run.status != Status.FINISHED:
                        if progress.stop_requested():
                            return {**results, "status": str(run.status), "reason": f"{method}: {run.reason}"}
                        grid.append({"value": value, "valid": None, "reason": run.reason})
                        continue
                    grid.append({"value": value, "valid": run.valid_score})
                    if best is None or m.better(run.valid_score, best[0].valid_score):
                        best = (run, value)
                    report()
                if "reason" in chosen.get(method, {}):
                    done += len(values)
                    continue
                if best is None:
                    chosen[method] = {"reason": f"every run failed: {grid[-1].get('reason', '')}"}
                    continue
                chosen[method] = {"setting": setting, "value": best[1], "grid": grid, "grid_seconds": spent}
                run = best[0]
            else:
                run = train(method, chosen[method]["value"], seed, f"{method} s{seed}")
                done += 1
                if run.status != Status.FINISHED:
                    if progress.stop_requested():
                        return {**results, "status": str(run.status), "reason": f"{method}: {run.reason}"}
                    chosen[method] = {**chosen[method], "reason": f"seed {seed}: {run.reason}"}
                    continue
            models[method] = run.model
            runs.append({"seed": seed, "method": method, "value": chosen[method]["value"], m.name: run.score,
                         f"valid_{m.name}": run.valid_score, "scratch": base.score,
                         "gain_vs_scratch": run.score - base.score, "seconds": round(run.seconds, 2)})
            report()
        if len(seeds) == 1:  # one seed's verdicts pair the models' answers, so they are taken while the models live
            for method, model in models.items():
                paired[method] = {"scratch": task.paired_gain(model, base.model, ds, base_cfg)}
                if REFERENCE in models and method != REFERENCE:
                    paired[method]["kd"] = task.paired_gain(model, models[REFERENCE], ds, base_cfg)
    kd_score = {r["seed"]: r[m.name] for r in runs if r["method"] == REFERENCE}
    for r in runs:
        r["gain_vs_kd"] = r[m.name] - kd_score[r["seed"]] if r["seed"] in kd_score else None
    results.update(scratch=_spread([b.score for b in baselines.values()]),
                   scratch_valid=_spread([b.valid_score for b in baselines.values()]),
                   scratch_seconds=round(sum(b.seconds for b in baselines.values()) / len(baselines), 2),
                   table=[_row(n, chosen.get(n, {}), [r for r in runs if r["method"] == n], m, paired.get(n, {}))
                          for n in names],
                   runs=runs, seconds=round(time.perf_counter() - t0, 1))
    return results


def _spread(values) -> dict:
    """Mean and its 95 % t-interval over seeds (no interval from one seed)."""
    from . import stats

    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "ci95": None, "values": []}
    if len(vals) < 2:
        return {"mean": vals[0], "ci95": None, "values": vals}
    iv = stats.seeds(vals)
    return {"mean": iv.gain, "ci95": [iv.low, iv.high], "values": vals}


def _row(name: str, chosen: dict, runs: list[dict], m, paired: dict) -> dict:
    """One method's line of the table: score, gains over scratch and over kd with their intervals, verdicts, time."""
    row = {"method": name, "description": recipes.method(name).description, "setting": chosen.get("setting"),
           "value": chosen.get("value"), "grid": chosen.get("grid", []), "grid_seconds": chosen.get("grid_seconds")}
    if not runs:
        return {**row, "applicable": False, "reason": chosen.get("reason", "not run")}
    score = _spread([r[m.name] for r in runs])
    vs_scratch = verdict([r["gain_vs_scratch"] for r in runs], m, paired=paired.get("scratch"))
    row.update(applicable=True, reason=chosen.get("reason", ""), mean=score["mean"], ci95=score["ci95"],
               values=score["values"], valid=_spread([r[f"valid_{m.name}"] for r in runs])["mean"],
               gain_vs_scratch={"mean": vs_scratch.gain, "ci95": vs_scratch.ci95 and list(vs_scratch.ci95)},
               verdict_vs_scratch=vs_scratch.outcome,
               seconds=round(sum(r["seconds"] for r in runs) / len(runs), 2))
    if name != REFERENCE:
        vs_kd = verdict([r["gain_vs_kd"] for r in runs if r["gain_vs_kd"] is not None], m, paired=paired.get("kd"))
        row.update(gain_vs_kd={"mean": vs_kd.gain, "ci95": vs_kd.ci95 and list(vs_kd.ci95)},
                   verdict_vs_kd=VS_KD.get(vs_kd.outcome, "no verdict (one seed, no paired test)"))
    return row


def table_rows(result: dict) -> list[dict]:
    """The comparison's table as text cells, one dict per method: what the CLI prints and the page shows."""
    from . import metric

    m = metric.of_record(result)
    rows = []
    for row in result["table"]:
        if not row["applicable"]:
            rows.append({"method": row["method"], "chosen": "", f"test {m.name} (95 % CI)": "not applicable",
                         "gain vs scratch": "", "vs kd": row["reason"], "s/seed": ""})
            continue
        kd = f"{_gain(row['gain_vs_kd'], m)}: {row['verdict_vs_kd']}" if "gain_vs_kd" in row else "(reference)"
        rows.append({"method": row["method"], "chosen": _choice(row), f"test {m.name} (95 % CI)": _mean_ci(row, m),
                     "gain vs scratch": _gain(row["gain_vs_scratch"], m), "vs kd": kd,
                     "s/seed": f"{row['seconds']:.0f}"})
    return rows


def table_text(result: dict) -> str:
    """The comparison as a plain-text table, a method that could not run on a line of its own with the reason."""
    from . import metric

    m = metric.of_record(result)
    lines = [f"{result['preset']} on {result['dataset']} (teacher read {result['teacher_dataset']}), "
             f"seeds {result['seeds']}: teacher {m.format(result.get(f'teacher_{m.name}'))}, from scratch "
             f"{_mean_ci(result['scratch'], m)} (test {m.name}{m.direction})"]
    rows = table_rows(result)
    shown = [r for r in rows if r[f"test {m.name} (95 % CI)"] != "not applicable"]
    header = list(rows[0]) if rows else []
    cells = [header] + [list(r.values()) for r in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    lines += [f"{r['method']}: not applicable: {r['vs kd']}" for r in rows if r not in shown]
    return "\n".join(lines + [f"{result['seconds']:.0f} s in all"])


def table_markdown(result: dict) -> str:
    """The comparison as a markdown table (docs/results.md's), not-applicable methods as rows with their reason."""
    rows = table_rows(result)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"`{v}`" if k == "method" else v.replace("|", "\\|") for k, v in r.items()) + " |"
              for r in rows]
    return "\n".join(lines)


def _choice(row: dict) -> str:
    """The chosen grid value as a setting: ``T=4``, ``weight ×2``, ``hint_epochs=2`` (empty without a grid)."""
    if row.get("value") is None:
        return ""
    value = f"{row['value']:g}"
    return {"temperature": f"T={value}", "weight": f"weight ×{value}"}.get(row["setting"],
                                                                           f"{row['setting']}={value}")


def _mean_ci(spread: dict, m) -> str:
    """A score's mean and 95 % interval: "97.1% (96.5% to 97.7%)"."""
    if spread.get("mean") is None:
        return "n/a"
    ci = spread.get("ci95")
    return m.format(spread["mean"]) + ("" if not ci else f" ({m.format(ci[0])} to {m.format(ci[1])})")


def _gain(gain: dict, m) -> str:
    """A paired gain and its 95 % interval: "+1.2 points (+0.3 to +2.1 points)"."""
    ci = gain.get("ci95")
    return m.format_change(gain.get("mean")) + ("" if not ci else f" ({m.format_interval(*ci)})")
