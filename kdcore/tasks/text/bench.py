"""``python -m kdcore bench --task text``: TinyBERT's intermediate epoch, the teacher in the step or cached.

The shared timing machinery (clocks, medians, the machine's facts) is
:mod:`kdcore.bench`'s; this module is what only the text task measures.
"""
from __future__ import annotations

import os

from ... import bench as shared
from .intermediate import CACHE_BUDGET, fit_intermediate, teacher_activations
from .settings import layer_map

def run(dataset=None, epochs: int = 2, repeats: int = 1, preset="text-tinybert") -> dict:
    """TinyBERT's intermediate epoch against a scratch epoch, with the teacher's activations
    computed in every step (``in_step``) or cached once beforehand (``cached``, built apart and
    timed as ``cache_build_s``); ``prediction`` is a prediction-layer (logits-only KD) epoch.

    Shapes are the preset's (default ``text-tinybert``: teacher 4 × 128 × 4, student 2 × 64 × 4).
    Epochs are timed as in :func:`kdcore.bench.run` (first left out, medians). The teacher is untrained: its
    weights do not change what a step costs. ``cache_mb`` is what the cache holds for this training
    set; :data:`kdcore.tasks.text.intermediate.CACHE_BUDGET` is the most the product will hold.
    """
    load_before = os.getloadavg()
    from ... import stages, training

    task, spec, teacher_cfg, cfg, ds = shared.preset_run("text", preset, dataset, "rotten-tomatoes", repeats,
                                                         epochs=epochs, intermediate_epochs=epochs)
    teacher = task.build_teacher(teacher_cfg, ds.tokenizer.size, len(ds.classes))
    mapping = layer_map(cfg.layer_map, cfg.student.layers, teacher_cfg.layers)
    start = shared._now()
    cache_bytes = sum(a.nbytes for a in teacher_activations(teacher, ds.x_train, mapping))
    build = shared._since(start)

    def timed(run) -> list:
        clock = shared._Clock()
        result = run(task.build_student(cfg.student, cfg.seed, ds.tokenizer.size, len(ds.classes)), clock)
        return shared._timed(result, clock)

    runs = {
        "scratch": lambda net, clock: training.fit_baseline(cfg, ds, net, clock),
        "prediction": lambda net, clock: stages.fit_distilled(cfg, teacher, ds, net, clock),
        "in_step": lambda net, clock: fit_intermediate(net, teacher, ds, cfg, clock, cache=False),
        "cached": lambda net, clock: fit_intermediate(net, teacher, ds, cfg, clock, cache=True),
    }
    times = {k: [] for k in runs}
    for _ in range(repeats):  # methods take turns, so a change in the machine's load falls on all of them
        for name, run in runs.items():
            times[name] += timed(run)
    epoch_s, cpu_s = shared._epoch_medians(times)
    ratio = {"in_step_vs_scratch": ("in_step", "scratch"), "cached_vs_scratch": ("cached", "scratch"),
             "cached_vs_in_step": ("cached", "in_step"), "prediction_vs_scratch": ("prediction", "scratch")}
    result = {
        "task": "text", "dataset": ds.name, "train_sentences": int(len(ds.y_train)),
        "preset": preset if isinstance(preset, str) else spec.get("name", "custom"),
        "teacher": f"{teacher_cfg.layers} × {teacher_cfg.hidden} × {teacher_cfg.heads}",
        "student": task.describe_student(cfg.student), "layer_map": mapping, "batch_size": cfg.batch_size,
        "epochs": epochs, "repeats": repeats,
        **shared._epoch_fields(epoch_s, cpu_s),
        "ratios": {k: round(epoch_s[a] / epoch_s[b], 3) for k, (a, b) in ratio.items()},
        "cpu_ratios": {k: round(cpu_s[a] / cpu_s[b], 3) for k, (a, b) in ratio.items()},
        "cache_build_s": round(build[0], 2), "cache_build_cpu_s": round(build[1], 2),
        "cache_mb": round(cache_bytes / 2**20, 1), "cache_budget_mb": round(CACHE_BUDGET / 2**20),
        "machine": shared._machine(load_before),
    }
    # Caching pays when what an epoch saves, times the epochs after the first, exceeds the build.
    saved = cpu_s["in_step"] - cpu_s["cached"]
    result["cache_pays_after_epochs"] = round(build[1] / saved, 2) if saved > 0 else None
    return result


def text(result: dict) -> str:
    cpu = result["cpu_ratios"]
    return "\n".join([
        f"{result['dataset']}, {result['train_sentences']:,} sentences, teacher {result['teacher']}, student "
        f"{result['student']}, batch {result['batch_size']} (s / epoch, CPU s / epoch):",
        *(f"  {k:<10} {v:7.2f} {result['epoch_cpu_s'][k]:7.2f}" for k, v in result["epoch_s"].items()),
        f"CPU: intermediate in the step / scratch {cpu['in_step_vs_scratch']}, cached / scratch "
        f"{cpu['cached_vs_scratch']}, cached / in the step {cpu['cached_vs_in_step']}",
        f"cache built once in {result['cache_build_s']} s ({result['cache_build_cpu_s']} CPU s): "
        f"{result['cache_mb']} MB (the product caches up to {result['cache_budget_mb']} MB); it pays after "
        f"{result['cache_pays_after_epochs']} epochs",
        shared._load_line(result["machine"])])
